"""One lane of agent work: each order gets its worktree and branch, attempts, verification, feedback.

Orders in one lane would touch the same files, so they run one after another and each starts from
the previous accepted patch of its lane (its branch then merges cleanly after the earlier one).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from orchestrator.categories import MODEL_AGENT
from orchestrator.errors import Cancelled, OrchestrateError
from orchestrator.events import AgentUpdate, Log
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
from orchestrator.specialists import Specialist, load_specialist
from orchestrator.suite.config import in_worktree
from orchestrator.suite.runner import run_suite
from orchestrator.verify import verify

FEEDBACK_CHARS = 6000
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
    specialists = _specialist_chain(order, ctx, worktree)
    usage = Usage()
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
        update("proposing")
        proposal: Proposal = specialist.propose(order, worktree, feedback)
        if proposal.usage:
            usage = usage + proposal.usage
            result.usage = usage
        result.explanation = proposal.explanation
        commit = (
            None if proposal.declined else ctx.repo.commit_all(worktree, _message(order, proposal))
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
        feedback.append(
            f"Attempt {attempt} was rejected: {verdict.reason}\n{verdict.output}"[:FEEDBACK_CHARS]
        )
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


def _specialist_chain(order: WorkOrder, ctx: RunContext, worktree: Path) -> list[Specialist]:
    """The deterministic specialist first, then the model (when one is configured)."""
    chain = []
    if order.agent != MODEL_AGENT:
        chain.append(load_specialist(order.agent))
    if ctx.model:
        budget = ctx.options.budget_usd
        chain.append(
            load_specialist(
                MODEL_AGENT,
                prompt=order.agent if order.agent != MODEL_AGENT else "unknown",
                model=ctx.model,
                **({} if budget is None else {"budget_usd": budget}),
                run_tests=_test_runner(order, ctx, worktree),
            )
        )
    return chain


def _test_runner(order: WorkOrder, ctx: RunContext, worktree: Path) -> Callable[[], str]:
    """The model's only way to run anything: the order's tests, through our runner."""

    def run_tests() -> str:
        spec = in_worktree(ctx.spec, worktree).model_copy(update={"select": order.tests})
        run = run_suite(spec, stop=ctx.controls.token(order.key))
        lines = [
            f"{r.nodeid}: {r.outcome}" + (f" - {r.message[:300]}" if r.message else "")
            for r in run.results
        ]
        return "\n".join(lines) or "no tests ran"

    return run_tests


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
