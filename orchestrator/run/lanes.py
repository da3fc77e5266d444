"""One lane of agent work: each order gets its worktree and branch, attempts, verification, feedback.

Orders in one lane would touch the same files, so they run one after another and each starts from
the previous accepted patch of its lane (its branch then merges cleanly after the earlier one).
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from orchestrator.categories import MODEL_AGENT
from orchestrator.errors import Cancelled, ModelBusy, OrchestrateError
from orchestrator.events import AgentStep, AgentUpdate, Log
from orchestrator.models import (
    AgentResult,
    IsolationFinding,
    Proposal,
    Repair,
    Usage,
    Verdict,
    WorkOrder,
)
from orchestrator.run.context import RunContext
from orchestrator.secrets import scrub
from orchestrator.specialists import Specialist, load_specialist
from orchestrator.suite import sandbox
from orchestrator.suite.config import in_worktree, load_config
from orchestrator.suite.runner import collect, run_suite
from orchestrator.verify import verify

FEEDBACK_CHARS = 6000
OVERLOAD_WAITS_S = [30.0, 120.0, 300.0]  # an overloaded API: the lane waits, then goes on
OUTPUT_CHARS = 20_000  # what one test run or command shows the model
MAX_SUSPECTS = 50  # tests that may have broken a container, rerun in each verification


def branch_name(session: str, category: str) -> str:
    return f"orchestrate/{session}/{category}"


def run_lane(orders: list[WorkOrder], ctx: RunContext, base: str) -> list[AgentResult]:
    """Run the lane's orders in turn; a later order builds on the last accepted patch."""
    results = []
    start = base
    for order in orders:
        result = run_order(order, ctx, start)
        results.append(result)
        if result.status == "accepted" and result.commit:
            start = result.commit
    return results


def run_order(order: WorkOrder, ctx: RunContext, start: str) -> AgentResult:
    branch = branch_name(ctx.options.session, order.key)
    result = AgentResult(
        agent=order.agent,
        category=order.category,
        item=order.item,
        branch=branch,
        status="no_patch",
        target=order.target,
    )
    update = _updater(ctx, order, result)
    if ctx.controls.stop_requested:  # a stop dispatches nothing new, not even a worktree
        raise Cancelled("the run was stopped")
    ctx.repo.drop_branch(branch)  # left by an interrupted attempt of this session
    try:
        with ctx.repo.worktree(branch, start) as worktree:
            _attempts(order, ctx, worktree, start, result, update)
    except Cancelled:
        if ctx.controls.stop_requested:  # a stopped run is interrupted (and resumable)
            update("cancelled", reason="the run was stopped")
            raise
        _cancelled(result)  # only this agent was cancelled
    except OrchestrateError as exc:
        result.status, result.reason = "error", str(exc)
    except Exception as exc:  # an agent is untrusted code: its crash is reported, the run goes on
        result.status, result.reason = "error", f"{type(exc).__name__}: {exc}"
    if result.reason == CANCELLED:
        update("cancelled", reason=result.reason, diff=result.diff or None)
    else:
        update(result.status, reason=result.reason, diff=result.diff or None)
    return result


CANCELLED = "cancelled by the user"


def _cancelled(result: AgentResult) -> None:
    """A cancelled agent ends as an error in the contract's terms and is never merged."""
    result.status, result.reason, result.commit = "error", CANCELLED, None


def _attempts(
    order: WorkOrder,
    ctx: RunContext,
    worktree: Path,
    start: str,
    result: AgentResult,
    update: Callable[..., None],
) -> None:
    feedback: list[str] = []
    specialists = _specialist_chain(order, ctx, worktree, result)
    for attempt in range(1, ctx.options.max_attempts + 1):
        if ctx.controls.stop_requested:
            raise Cancelled("the run was stopped")
        if ctx.controls.is_cancelled(order.key):
            _cancelled(result)
            return
        if not specialists:
            return
        specialist = specialists[0]
        result.agent, result.attempts = specialist.name, attempt
        if attempt == ctx.options.max_attempts and hasattr(specialist, "escalate"):
            specialist.escalate()  # the last attempt may use a stronger model
        update("proposing")
        proposal = _propose(specialist, order, worktree, feedback, ctx)
        if proposal.usage:  # a model agent reports each call as it happens instead
            result.usage = proposal.usage if result.usage is None else result.usage + proposal.usage
        result.explanation = scrub(proposal.explanation)
        commit = (
            None
            if proposal.declined
            else ctx.repo.commit_all(worktree, _message(order, proposal), proposal.files)
        )
        if commit is None:
            result.status = "no_patch"
            result.reason = (
                proposal.explanation if proposal.declined else "the agent changed nothing"
            )
            ctx.emit(Log(message=f"{order.key}: {specialist.name} made no patch: {result.reason}"))
            specialists.pop(0)  # the next in the chain (the model) gets its turn
            continue
        update("verifying")
        with ctx.watchdog.window(f"verify {order.key}") as repairs:
            verdict = verify(
                repo=ctx.repo,
                worktree=worktree,
                base=start,
                order=_with_repair_suspects(order, ctx.repairs),
                baseline=ctx.baseline,
                spec=in_worktree(ctx.spec, worktree),
                mode=ctx.options.verify,
                emit=ctx.emit,
                stop=ctx.controls.token(order.key),
            )
        verdict = _uncredited(verdict, repairs)
        _record(result, verdict, ctx, start, commit)
        if ctx.controls.is_cancelled(order.key):  # a cancel that came as verification ended
            if ctx.controls.stop_requested:
                raise Cancelled("the run was stopped")
            _cancelled(result)
            return
        if verdict.accepted:
            update("accepted", verify_output=verdict.output, diff=result.diff)
            return
        feedback.append(_feedback(attempt, verdict, result.diff))
        update("rejected", reason=verdict.reason, verify_output=verdict.output)
        ctx.repo.git("reset", "-q", "--hard", start, cwd=worktree)
        if len(specialists) > 1:
            specialists.pop(0)


def _with_repair_suspects(order: WorkOrder, repairs: list[Repair]) -> WorkOrder:
    """Verification also runs the baseline tests that may have left a container broken (the
    watchdog's suspects): a victim then passes only if the patch, not a repair, keeps it up."""
    suspects = [s for r in repairs if "baseline" in r.during for s in r.suspects]
    suspects = list(dict.fromkeys(suspects))[:MAX_SUSPECTS]
    if not suspects or not order.tests:
        return order
    finding = IsolationFinding(
        victim=order.tests[0],
        kind="unresolved",
        culprits=suspects,
        note="ran before the docker watchdog repaired a container in the baseline",
    )
    return order.model_copy(update={"findings": [*order.findings, finding]})


def _uncredited(verdict: Verdict, repairs: list[Repair]) -> Verdict:
    """A verification the docker watchdog had to repair a container in proves no fix."""
    if not repairs or not verdict.fixed:
        return verdict
    reason = (
        f"not a fix: the docker watchdog repaired a container during verification "
        f"({repairs[0].describe()}); the tests passed thanks to the repair"
    )
    return verdict.model_copy(
        update={
            "accepted": False,
            "fixed": [],
            "still_failing": verdict.fixed + verdict.still_failing,
            "reason": reason,
            "output": f"{reason}\n\n{verdict.output}",
        }
    )


def _record(
    result: AgentResult, verdict: Verdict, ctx: RunContext, start: str, commit: str
) -> None:
    result.fixed, result.regressions = verdict.fixed, verdict.regressions
    result.files_changed = ctx.repo.changed_files(start, commit)
    result.diff = ctx.repo.diff(start, commit)
    result.commit = commit
    result.status = "accepted" if verdict.accepted else "rejected"
    result.reason = None if verdict.accepted else verdict.reason


def _propose(
    specialist: Specialist, order: WorkOrder, worktree: Path, feedback: list[str], ctx: RunContext
) -> Proposal:
    """One attempt; an overloaded API (after the SDK's own retries) makes the lane wait and go
    on with the same conversation, rather than give up for the rest of the session."""
    waits = list(OVERLOAD_WAITS_S)
    while True:
        try:
            return specialist.propose(order, worktree, feedback)
        except ModelBusy as exc:
            if not waits:
                raise
            wait = waits.pop(0)
            ctx.emit(Log(level="warning", message=f"{order.key}: {exc}; retrying in {wait:.0f} s"))
            if ctx.controls.stop.wait(wait) or ctx.controls.is_cancelled(order.key):
                raise Cancelled("the run was stopped") from None


def _feedback(attempt: int, verdict: Verdict, diff: str) -> str:
    """The verdict and the rejected diff: the next user turn of the same conversation."""
    text = f"Attempt {attempt} was rejected by the verifier: {verdict.reason}\n\n{verdict.output}"
    text = text[:FEEDBACK_CHARS]
    if diff:
        text += f"\n\nThe rejected diff (now reverted):\n```diff\n{diff[:FEEDBACK_CHARS]}\n```"
    return text


def _specialist_chain(
    order: WorkOrder, ctx: RunContext, worktree: Path, result: AgentResult
) -> list[Specialist]:
    """The deterministic specialist first, then the model (when one is configured)."""
    chain = []
    if order.agent != MODEL_AGENT:
        chain.append(load_specialist(order.agent))
    if ctx.model:
        chain.append(_model_agent(order, ctx, worktree, result))
    return chain


def _model_agent(
    order: WorkOrder, ctx: RunContext, worktree: Path, result: AgentResult
) -> Specialist:
    """The model agent of one order, for all its attempts: its routing, limits, tools, spend."""
    o, config = ctx.options, load_config(ctx.repo.root)
    model = o.models.get(order.category) or config.models.get(order.category) or ctx.model
    limits = {"budget_usd": o.budget_usd, "max_turns": o.max_turns}

    def on_usage(usage: Usage) -> None:  # every call, as it happens: an erroring lane's too
        result.usage = usage if result.usage is None else result.usage + usage
        ctx.spend.add(usage)

    def emit(text: str) -> None:
        step = AgentStep(
            category=order.key, agent=MODEL_AGENT, attempt=result.attempts, text=scrub(text)
        )
        ctx.emit(step)

    def on_transcript(_attempt: int, data: dict) -> None:
        directory = ctx.store.directory / "transcripts"
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{order.key}-attempt-{result.attempts}.json"
        path.write_text(scrub(json.dumps(data, indent=1, default=str)), encoding="utf-8")

    return load_specialist(
        MODEL_AGENT,
        prompt=order.category,
        codemod=order.agent if order.agent != MODEL_AGENT else None,
        model=model,
        escalate_model=o.escalate_model or config.escalate_model,
        site_dirs=site_dirs(tuple(ctx.spec.command), ctx.spec.repo),
        run_tests=_test_runner(order, ctx, worktree),
        run_command=_command_runner(ctx, worktree) if sandbox.available() else None,
        emit=emit,
        on_usage=on_usage,
        session_left=ctx.spend.left if o.session_budget_usd is not None else None,
        on_transcript=on_transcript,
        **{k: v for k, v in limits.items() if v is not None},
    )


def _test_runner(
    order: WorkOrder, ctx: RunContext, worktree: Path
) -> Callable[[list[str] | None, str | None], str]:
    """The model's test runs, through our runner: node ids, paths or -k; pytest's own reports."""

    def run_tests(tests: list[str] | None, k: str | None) -> str:
        spec = in_worktree(ctx.spec, worktree)
        stop = ctx.controls.token(order.key)
        select = list(tests or order.tests)
        if k or any("::" not in t for t in select):  # paths and -k: pytest picks, we run those
            args = [*spec.extra_args, *select, *(["-k", k] if k else [])]
            select = collect(spec.model_copy(update={"extra_args": args}), stop)
            if not select:
                return "no tests selected"
        with ctx.repo.preserved(worktree):  # what the tests did to the worktree is undone
            run = run_suite(spec.model_copy(update={"select": select}), stop=stop)
        return _relative(failure_report(run.results), worktree)

    return run_tests


def failure_report(results: list) -> str:
    """pytest's own report of each failure, after one line of counts and the passing tests."""
    failing = [r for r in results if r.failing]
    passed = [r.nodeid for r in results if not r.failing]
    lines = [f"{len(results)} tests: {len(passed)} passed or skipped, {len(failing)} failing"]
    if passed:
        lines.append("passed: " + ", ".join(passed[:30]) + (" ..." if len(passed) > 30 else ""))
    for r in failing:
        lines += [f"\n{r.outcome.upper()} {r.nodeid}", (r.longrepr or r.message or "")[-4000:]]
    return "\n".join(lines)[-OUTPUT_CHARS:] if results else "no tests ran"


def _relative(text: str, worktree: Path) -> str:
    for root in {str(worktree.resolve()), str(worktree)}:
        text = text.replace(root + os.sep, "").replace(root, ".")
    return text


def _command_runner(ctx: RunContext, worktree: Path) -> Callable[[str, float], str]:
    """The model's `run` tool: a shell command in the sandbox (no network, no secrets, only the
    worktree writable), killed with its whole process group at its timeout; output capped."""
    python = Path(ctx.spec.command[0])
    bin_dirs = [str(python.parent)] if python.is_absolute() else []

    def run(command: str, timeout_s: float) -> str:
        env = sandbox.scrubbed_env(os.environ)
        env.update(ctx.spec.env)
        env["PATH"] = os.pathsep.join([*bin_dirs, env.get("PATH", "/usr/bin:/bin")])
        paths = in_worktree(ctx.spec, worktree).pythonpath
        env["PYTHONPATH"] = os.pathsep.join(paths)
        argv = sandbox.confined(
            ["/bin/sh", "-c", command],
            workdir=worktree,
            env=env,
            network="none",
            readable=[p for p in (python.parent.parent, ctx.repo.root) if p.is_absolute()],
        )
        proc = subprocess.Popen(
            argv,
            cwd=worktree,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            out, _ = proc.communicate(timeout=timeout_s)
            status = f"exit code {proc.returncode}"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            status = f"killed at its {timeout_s:.0f} s timeout"
        text = out.decode("utf-8", errors="replace")
        if len(text) > OUTPUT_CHARS:
            half = OUTPUT_CHARS // 2
            text = f"{text[:half]}\n[... {len(text) - OUTPUT_CHARS} characters left out ...]\n{text[-half:]}"
        return _relative(f"{status}\n{text}", worktree)

    return run


@functools.lru_cache(maxsize=8)
def site_dirs(command: tuple[str, ...], cwd: str) -> list[str]:
    """The site-packages of the suite's interpreter: the model reads the installed packages."""
    if "-m" in command and command.index("-m") + 1 < len(command):
        python = list(command[: command.index("-m")])
    elif command and command[-1].endswith("pytest"):
        python = [*command[:-1], "python"]
    else:
        python = [sys.executable]
    code = "import json, site, sys; print(json.dumps([p for p in sys.path if p.endswith('-packages')]))"
    try:
        proc = subprocess.run(
            [*python, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=60
        )
        found = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else []
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        return []
    return [str(p) for p in found if isinstance(p, str)]


def _message(order: WorkOrder, proposal: Proposal) -> str:
    return (
        f"fix({order.category}): {order.title} ({order.target} tests)\n\n"
        f"{proposal.explanation}\n\nRoot cause: {order.root_cause}\n"
    )


def _updater(ctx: RunContext, order: WorkOrder, result: AgentResult) -> Callable[..., None]:
    def update(status: str, **extra) -> None:
        ctx.emit(
            AgentUpdate(
                category=order.key,
                agent=result.agent,
                status=status,
                attempt=result.attempts,
                fixed=len(result.fixed),
                target=order.target,
                branch=result.branch,
                usage=result.usage,
                **extra,
            )
        )

    return update
