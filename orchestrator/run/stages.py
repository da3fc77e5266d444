"""The stages of `orchestrate run` as plain functions; `graph.py` wires them into LangGraph.

Each stage reads the run's context and what earlier stages stored, and stores or returns its own
product. Nothing here knows about LangGraph; nothing in the graph knows about pytest or git.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel

from orchestrator.errors import ModelError, UsageError
from orchestrator.events import LeftCategory, Log, PhaseStarted, PlanReady
from orchestrator.git import run_git
from orchestrator.handoff import HandoffView, staleness
from orchestrator.isolation import diagnose as isolate
from orchestrator.models import AgentResult, TriageReport, Usage
from orchestrator.run.context import RunContext
from orchestrator.run.integrate import FINAL_LABEL, integrate
from orchestrator.run.lanes import run_lane
from orchestrator.run.plan import Plan, lanes, plan
from orchestrator.specialists import GUESSER, load
from orchestrator.suite.config import in_worktree, sequential
from orchestrator.suite.docker import containers_from_failures, uncredited
from orchestrator.suite.runner import run_suite
from orchestrator.triage import triage


class Lane(BaseModel):
    """One fan-out branch: the categories whose orders run one after another, from `base`."""

    categories: list[str]
    base: str


def preflight(ctx: RunContext) -> str:
    """Check the repository and return the base commit every agent starts from."""
    repo = ctx.repo
    ctx.emit(PhaseStarted(phase="preflight", detail=str(repo.root)))
    ctx.watchdog.check()  # before any test runs: what is broken now was left so by earlier runs
    if ctx.options.base:  # continuing a handoff: from its integration branch
        return repo.rev(ctx.options.base)
    if uncommitted(ctx):
        base = repo.snapshot_uncommitted("orchestrate: snapshot of uncommitted changes")
        ctx.emit(Log(message=f"uncommitted changes snapshotted into base commit {base[:10]}"))
        return base
    return repo.head


def uncommitted(ctx: RunContext) -> list[str]:
    """Tracked files with uncommitted changes; refused unless --include-uncommitted.

    Untracked files never count: worktrees are made from a commit, so they cannot leak in.
    Handoffs earlier runs left in the handoff dir are not uncommitted work either.
    """
    repo = ctx.repo
    handoffs = Path(ctx.options.handoff_dir or repo.root / "handoffs").resolve()
    files = [
        f
        for f in repo.dirty_files(untracked=False)
        if not (repo.root / f).resolve().is_relative_to(handoffs)
    ]
    if files and not ctx.options.include_uncommitted and not ctx.options.base:
        shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
        raise UsageError(
            f"uncommitted changes to tracked files ({shown}): commit or stash them, "
            "or pass --include-uncommitted to run on a snapshot of them"
        )
    return files


@contextmanager
def checkout(ctx: RunContext, rev: str, label: str) -> Iterator[Path]:
    """A throwaway worktree at `rev` for a suite run; removed afterwards, no branch left."""
    branch = f"orchestrate/{ctx.options.session}/scratch-{label}"
    try:
        with ctx.repo.worktree(branch, rev) as path:
            yield path
    finally:
        ctx.repo.drop_branch(branch)


def baseline(ctx: RunContext, base: str) -> None:
    ctx.emit(PhaseStarted(phase="baseline", detail=ctx.spec.command_line()))
    with checkout(ctx, base, "baseline") as path, ctx.watchdog.window("baseline"):
        spec = sequential(in_worktree(ctx.spec, path))  # isolation bisects in its order
        spec = spec.model_copy(update={"record_leaks": ctx.options.isolation})  # its evidence
        run = run_suite(spec, ctx.emit, "baseline", ctx.controls.stop)
    ctx.store.save("baseline", run)


def diagnose(ctx: RunContext, base: str) -> None:
    """Triage the baseline, with isolation diagnostics unless switched off."""
    run = ctx.baseline
    isolation = None
    if ctx.options.isolation and run.failing():
        ctx.emit(PhaseStarted(phase="isolation"))
        with checkout(ctx, base, "isolation") as path:
            isolation = isolate(
                in_worktree(ctx.spec, path),
                run,
                reruns=ctx.options.reruns,
                emit=ctx.emit,
                stop=ctx.controls.stop,
            )
    ctx.emit(PhaseStarted(phase="triage"))
    previous = ctx.store.get("previous", HandoffView)
    known = previous.state.environment if previous and previous.state else None
    report = triage(
        run,
        ctx.repo.root,
        ctx.spec.command_line(),
        isolation=isolation,
        previous_packages=known.packages if known else None,
    )
    _watch_failing_containers(ctx, report)
    if report.environment and report.environment.changes:
        changes = "; ".join(c.describe() for c in report.environment.changes[:8])
        ctx.emit(Log(message=f"dependencies changed: {changes}"))
    if ctx.model:
        _guess_unknown(ctx, report)
    if previous is not None:
        report_staleness(ctx, previous, report)
    ctx.store.save("report", report)


def _watch_failing_containers(ctx: RunContext, report: TriageReport) -> None:
    """Containers named in the failures join the watchdog, so no run waits for someone to press play."""
    found = [n for n in containers_from_failures(report.failures) if n not in ctx.watchdog.names]
    if found:
        ctx.watchdog.watch(found)
        ctx.watchdog.check(after="baseline")  # the baseline's failures found them broken


def _guess_unknown(ctx: RunContext, report: TriageReport) -> None:
    """One cheap model call names the `unknown` group; marked as the model's guess. Its spend
    is the session's (stored: the report counts it)."""
    guess_category = load(GUESSER)
    spent: list[Usage] = []

    def counted(usage: Usage) -> None:
        spent.append(usage)
        ctx.spend.add(usage)
        ctx.store.save("guess_usage", sum(spent, Usage()))

    for category in report.categories:
        if category.id != "unknown":
            continue
        failures = [f for f in report.failures if f.nodeid in set(category.tests)]
        try:
            guess = guess_category(failures, on_usage=counted)
        except ModelError as exc:
            ctx.emit(Log(level="warning", message=f"model could not name the unknown group: {exc}"))
            return
        category.title = f"{guess['title']} (model's guess)"
        category.root_cause = f"{guess['root_cause']} (model's guess)"


def report_staleness(ctx: RunContext, previous: HandoffView, report: TriageReport) -> None:
    """Before planning from a handoff, say what changed since it was written."""
    base = previous.state.base_commit if previous.state else ""
    since = None
    if base:
        proc = run_git(ctx.repo.root, "rev-list", "--count", f"{base}..HEAD", check=False)
        since = int(proc.stdout) if proc.returncode == 0 else None
    failing = {f.nodeid for f in report.failures}
    lines = staleness(previous, repo_head=ctx.repo.head, commits_since=since, failing_now=failing)
    for line in lines or [
        "the handoff matches the repository: nothing changed since it was written"
    ]:
        ctx.emit(Log(message=f"since the handoff: {line}"))


def plan_lanes(ctx: RunContext, base: str) -> list[Lane]:
    """The work orders (stored), announced; the lanes they run in (a handoff's categories first)."""
    ctx.emit(PhaseStarted(phase="plan"))
    report = ctx.report
    previous = ctx.store.get("previous", HandoffView)
    first = [c.category for c in previous.categories if c.category] if previous else []
    result = plan(
        report,
        agents=set(ctx.options.agents) if ctx.options.agents else None,
        model_available=ctx.model is not None,
        first=first,
    )
    ctx.store.save("plan", result)
    announce_plan(ctx, report, result)
    return [Lane(categories=[o.key for o in lane], base=base) for lane in lanes(result.orders)]


def announce_plan(ctx: RunContext, report: TriageReport, result: Plan) -> None:
    """Tell the viewer the plan, what no agent will take, why, and what would take it."""
    by_key = {c.key: c for c in report.categories}  # in the plan's order (a handoff's come first)
    left = [
        LeftCategory(category=by_key[key], reason=why, needs=_needs(by_key[key].id, why))
        for key, why in result.left.items()
        if key in by_key
    ]
    ctx.emit(
        PlanReady(
            categories=[by_key[o.key] for o in result.orders],
            left=left,
            failure_text=_failure_text(report),
        )
    )
    reasons: dict[str, list[str]] = {}
    for category, why in result.left.items():
        reasons.setdefault(why, []).append(category)
    for why, categories in reasons.items():  # one plain line per reason, e.g. "no model"
        ctx.emit(Log(level="warning", message=f"left: {', '.join(categories)}: {why}"))
    ctx.emit(PhaseStarted(phase="agents", detail=f"{len(result.orders)} work orders"))


def _needs(category: str, why: str) -> str:
    """What would take a category left this run, in a few words."""
    if "--agents" in why:
        return "a run with it in --agents"
    if category == "docker_lifecycle":
        return "a running container, or a person"
    if category == "timeout":
        return "a key (ANTHROPIC_API_KEY), or a person: a hang waits on something absent"
    if "ANTHROPIC_API_KEY" in why:
        return "a key (ANTHROPIC_API_KEY), or a person"
    return "a person"


FAILURE_CHARS = 2000


def _failure_text(report: TriageReport) -> dict[str, str]:
    """The first failure's text per category (traceback trimmed), for the viewer's detail."""
    by_id = {f.nodeid: f for f in report.failures}
    texts = {}
    for c in report.categories:
        first = next((by_id[t] for t in c.tests if t in by_id), None)
        if first is not None:
            text = first.longrepr or first.message or ""
            texts[c.key] = f"{first.nodeid}\n{text[-FAILURE_CHARS:]}"
    return texts


def agents(ctx: RunContext, lane: Lane) -> list[AgentResult]:
    orders = {o.key: o for o in ctx.store.load("plan", Plan).orders}
    return run_lane([orders[c] for c in lane.categories], ctx, lane.base)


def integration(ctx: RunContext, base: str, results: list[AgentResult]) -> str | None:
    """Merge what was accepted into the integration branch and store the whole suite's run on
    it as the "after" (the baseline stands without a branch, or with integration off)."""
    if not ctx.options.integrate:
        ctx.store.save("after", ctx.baseline)
        return None
    with ctx.watchdog.window(FINAL_LABEL) as repairs:
        done = integrate(
            ctx.repo,
            session=ctx.options.session,
            base=base,
            results=results,
            spec=ctx.spec,
            baseline=ctx.baseline,
            emit=ctx.emit,
            stop=ctx.controls.stop,
        )
    after = uncredited(done.final, ctx.baseline, repairs) if done.final else ctx.baseline
    ctx.store.save("after", after)
    return done.branch
