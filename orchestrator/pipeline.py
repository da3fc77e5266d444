"""The stages of `orchestrate run` as plain functions; `graph.py` wires them into LangGraph.

Every stage reads the run's options and what earlier stages produced, and returns its own
product. Nothing here knows about LangGraph; nothing in the graph knows about pytest or git.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from orchestrator.config import command_line, in_worktree, run_spec
from orchestrator.events import Controls, Emit, Log, PhaseStarted, RunFinished, ignore
from orchestrator.gitops import GitRepo
from orchestrator.models import AgentResult, RunReport, RunSpec, SuiteRun, TriageReport, Usage


class RunOptions(BaseModel):
    """What the user asked for; stored with the checkpoints so `--resume` needs nothing else."""

    repo: str
    session: str
    test_cmd: str | None = None
    ignores: list[str] = Field(default_factory=list)
    deselect: list[str] = Field(default_factory=list)
    timeout_s: float | None = None
    agents: list[str] | None = None
    parallel: int = 2
    max_attempts: int = 3
    verify: Literal["targeted", "full"] = "targeted"
    integrate: bool = True
    isolation: bool = True
    reruns: int = 0
    include_uncommitted: bool = False
    model: str | None = None
    budget_usd: float | None = None
    handoff_dir: str | None = None
    from_handoff: str | None = None


def new_session() -> str:
    return dt.datetime.now().strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


@dataclass
class RunContext:
    """What a run needs that is not state: the emitter, the controls, the open repository."""

    options: RunOptions
    emit: Emit = ignore
    controls: Controls = field(default_factory=Controls)

    @cached_property
    def repo(self) -> GitRepo:
        return GitRepo(self.options.repo)

    @cached_property
    def spec(self) -> RunSpec:
        o = self.options
        return run_spec(
            self.repo.root,
            test_cmd=o.test_cmd,
            ignores=o.ignores,
            deselect=o.deselect,
            timeout_s=o.timeout_s,
            record_leaks=o.isolation,
        )

    @cached_property
    def watchdog(self):
        """Keeps the suite's containers running during the run ([tool.orchestrator] containers)."""
        from orchestrator.config import load_config
        from orchestrator.docker import Watchdog

        return Watchdog(load_config(self.repo.root).containers)

    @property
    def model(self) -> str | None:
        """The model agents may use, or None when no API key is configured."""
        if not os.environ.get("ANTHROPIC_API_KEY"):
            return None
        from agents.llm import DEFAULT_MODEL

        return self.options.model or os.environ.get("ORCHESTRATOR_MODEL") or DEFAULT_MODEL


def preflight(ctx: RunContext) -> str:
    """Check the repository and return the base commit every agent starts from."""
    repo = ctx.repo
    ctx.emit(PhaseStarted(phase="preflight", detail=str(repo.root)))
    report_repairs(ctx, ctx.watchdog.check())
    # Handoffs earlier runs left (untracked, in the handoff dir) are not uncommitted work.
    handoffs = Path(ctx.options.handoff_dir or repo.root / "handoffs").resolve()
    if any(not (repo.root / f).resolve().is_relative_to(handoffs) for f in repo.dirty_files()):
        if not ctx.options.include_uncommitted:
            repo.require_clean()
        base = repo.snapshot_uncommitted("orchestrate: snapshot of uncommitted changes")
        ctx.emit(Log(message=f"uncommitted changes snapshotted into base commit {base[:10]}"))
        return base
    return repo.head


@contextmanager
def checkout(ctx: RunContext, rev: str, label: str):
    """A throwaway worktree at `rev` for a suite run; removed afterwards, no branch left."""
    branch = f"orchestrate/{ctx.options.session}/scratch-{label}"
    try:
        with ctx.repo.worktree(branch, rev) as path:
            yield path
    finally:
        ctx.repo.drop_branch(branch)


def baseline(ctx: RunContext, base: str) -> SuiteRun:
    from orchestrator.runner import run_suite

    ctx.emit(PhaseStarted(phase="baseline", detail=command_line(ctx.spec)))
    with checkout(ctx, base, "baseline") as path:
        return run_suite(in_worktree(ctx.spec, path), ctx.emit, label="baseline")


def diagnose(ctx: RunContext, base: str, run: SuiteRun) -> TriageReport:
    """Triage the baseline, with isolation diagnostics unless switched off."""
    from orchestrator.triage import triage

    isolation = None
    if ctx.options.isolation and run.failing():
        from orchestrator.isolation import diagnose as isolate

        ctx.emit(PhaseStarted(phase="isolation"))
        with checkout(ctx, base, "isolation") as path:
            isolation = isolate(
                in_worktree(ctx.spec, path), run, reruns=ctx.options.reruns, emit=ctx.emit
            )
    ctx.emit(PhaseStarted(phase="triage"))
    report = triage(run, ctx.repo.root, command_line(ctx.spec), isolation=isolation)
    _watch_failing_containers(ctx, report)
    if ctx.model:
        _guess_unknown(ctx, report)
    return report


def report_repairs(ctx: RunContext, repairs) -> None:
    for r in repairs:
        level = "error" if r.action == "failed" else "warning" if r.action != "none" else "info"
        ctx.emit(
            Log(
                level=level,
                message=f"docker: {r.container} was {r.was}: {r.action} {r.detail}".rstrip(),
            )
        )


def _watch_failing_containers(ctx: RunContext, report: TriageReport) -> None:
    """Containers named in the failures join the watchdog, so no run waits for someone to press play."""
    from orchestrator.docker import containers_from_failures

    found = [n for n in containers_from_failures(report.failures) if n not in ctx.watchdog.names]
    if found:
        ctx.watchdog.names += found
        report_repairs(ctx, ctx.watchdog.check())


def _guess_unknown(ctx: RunContext, report: TriageReport) -> None:
    """One cheap model call names the `unknown` group; marked as the model's guess."""
    from agents.llm import guess_category
    from orchestrator.errors import ModelError

    for category in report.categories:
        if category.id != "unknown":
            continue
        failures = [f for f in report.failures if f.nodeid in set(category.tests)]
        try:
            guess = guess_category(failures)
        except ModelError as exc:
            ctx.emit(Log(level="warning", message=f"model could not name the unknown group: {exc}"))
            return
        category.title = f"{guess['title']} (model's guess)"
        category.root_cause = f"{guess['root_cause']} (model's guess)"


def final_run(ctx: RunContext, rev: str) -> SuiteRun:
    from orchestrator.runner import run_suite

    ctx.emit(PhaseStarted(phase="final", detail=rev))
    with checkout(ctx, rev, "final") as path:
        return run_suite(in_worktree(ctx.spec, path), ctx.emit, label="final")


def total_usage(results: list[AgentResult]) -> Usage | None:
    usages = [r.usage for r in results if r.usage]
    if not usages:
        return None
    total = Usage()
    for usage in usages:
        total = total + usage
    return total


def finish(ctx: RunContext, report: RunReport) -> None:
    merged = [a.branch for a in report.agents if a.merged]
    ctx.emit(
        RunFinished(
            before=report.before,
            after=report.after,
            merged=merged,
            remaining=report.remaining,
            handoff=report.handoff,
            integration_branch=report.integration_branch,
        )
    )


def announce_plan(ctx: RunContext, report: TriageReport, result) -> None:
    """Tell the viewer the plan, and say once, plainly, what no agent will take and why."""
    from orchestrator.events import PlanReady

    by_id = {c.id: c for c in report.categories}  # in the plan's order (a handoff's come first)
    ctx.emit(PlanReady(categories=[by_id[o.category] for o in result.orders]))
    reasons: dict[str, list[str]] = {}
    for category, why in result.left.items():
        reasons.setdefault(why, []).append(category)
    for why, categories in reasons.items():  # one plain line per reason, e.g. "no model"
        ctx.emit(Log(level="warning", message=f"left: {', '.join(categories)}: {why}"))


def remaining_categories(report: TriageReport, after: SuiteRun, repo: Path) -> list:
    """Baseline categories narrowed to what still fails, plus new failures triaged on their own."""
    from orchestrator.triage import triage

    failing = {r.nodeid for r in after.failing()}
    remaining = []
    for category in report.categories:
        tests = [t for t in category.tests if t in failing]
        if tests:
            remaining.append(category.model_copy(update={"tests": tests, "count": len(tests)}))
    known = {t for c in report.categories for t in c.tests}
    new = [r for r in after.results if r.failing and r.nodeid not in known]
    if new:
        extra = triage(SuiteRun(command=after.command, cwd=after.cwd, results=new), repo, "")
        remaining += [c.model_copy(update={"title": c.title + " (new)"}) for c in extra.categories]
    return remaining


def handoff_state(ctx: RunContext, state: dict, *, interrupted: str | None = None):
    """The HandoffState of a run, finished or not, from whatever the graph state holds."""
    from orchestrator.handoff import HandoffState, PlannedAgent
    from orchestrator.models import Counts

    before_run = SuiteRun.model_validate(state["baseline"]) if state.get("baseline") else None
    after_run = SuiteRun.model_validate(state["after"]) if state.get("after") else before_run
    report = TriageReport.model_validate(state["report"]) if state.get("report") else None
    results = [
        AgentResult.model_validate(r) for r in state.get("integrated") or state.get("results") or []
    ]
    remaining = (
        remaining_categories(report, after_run, ctx.repo.root) if report and after_run else []
    )
    previous = (state.get("previous") or {}).get("previous")
    return HandoffState(
        session=ctx.options.session,
        date=dt.date.today(),
        repo=str(ctx.repo.root),
        base_commit=state.get("base", ""),
        integration_branch=state.get("integration_branch"),
        agent_branches=[r.branch for r in results if r.commit],
        test_command=" ".join(ctx.spec.command),
        ignores=ctx.spec.ignores,
        deselect=ctx.spec.deselect,
        before=before_run.counts() if before_run else Counts(),
        after=after_run.counts() if after_run else Counts(),
        previous=Counts(**{k: v for k, v in previous.items() if v is not None})
        if previous
        else None,
        agents=[r.model_copy(update={"diff": ""}) for r in results],
        remaining=remaining,
        isolation=report.isolation if report else [],
        flaky=report.flaky if report else [],
        slow_tests=report.slow_tests if report else [],
        usage=total_usage(results),
        next_plan=[
            PlannedAgent(
                agent=c.agent or "llm",
                category=c.id,
                target=c.count,
                priority=c.priority,
                tests=c.tests,
            )
            for c in remaining
        ],
        interrupted=interrupted is not None,
        interrupted_reason=interrupted,
    )


def write_handoff(ctx: RunContext, handoff) -> Path:
    from orchestrator.handoff import write_handoff as write

    directory = (
        Path(ctx.options.handoff_dir) if ctx.options.handoff_dir else ctx.repo.root / "handoffs"
    )
    path = write(handoff, directory)
    ctx.emit(Log(message=f"handoff written: {path}"))
    return path


def report_staleness(ctx: RunContext, previous: dict, report: TriageReport) -> None:
    """Before planning from a handoff, say what changed since it was written."""
    from orchestrator.gitops import run_git
    from orchestrator.handoff import HandoffView, staleness

    view = HandoffView.model_validate(previous)
    base = view.state.base_commit if view.state else ""
    since = None
    if base:
        proc = run_git(ctx.repo.root, "rev-list", "--count", f"{base}..HEAD", check=False)
        since = int(proc.stdout) if proc.returncode == 0 else None
    failing = {f.nodeid for f in report.failures}
    lines = staleness(view, repo_head=ctx.repo.head, commits_since=since, failing_now=failing)
    for line in lines or [
        "the handoff matches the repository: nothing changed since it was written"
    ]:
        ctx.emit(Log(message=f"since the handoff: {line}"))
