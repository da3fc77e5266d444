"""Merge accepted patches one by one into the integration branch, keeping only what holds together."""

from __future__ import annotations

from orchestrator.events import AgentUpdate, Emit, Log, PhaseStarted, Stop
from orchestrator.git import GitRepo
from orchestrator.models import AgentResult, RunSpec, SuiteRun
from orchestrator.suite.config import in_worktree
from orchestrator.suite.runner import run_suite


def integration_branch(session: str) -> str:
    """`orchestrate/<session>/integration`: git cannot hold `orchestrate/<session>` as a branch
    next to the agents' `orchestrate/<session>/<category>` branches."""
    return f"orchestrate/{session}/integration"


def integrate(
    repo: GitRepo,
    *,
    session: str,
    base: str,
    results: list[AgentResult],
    spec: RunSpec,
    baseline: SuiteRun,
    emit: Emit,
    full: bool = False,
    stop: Stop | None = None,
) -> str | None:
    """Merge each accepted branch; a conflict or a regression after a merge takes it back out.

    After each merge the union of the merged branches' fixed tests and the baseline-passing tests
    they could affect (those in the test files they touched or fixed; all of them with `full`) are
    re-run. Returns the integration branch, or None when nothing merged (no branch is left);
    `results` are updated in place (`merged`, `reason`).
    """
    branch = integration_branch(session)
    repo.drop_branch(branch)  # a resumed run starts the integration over
    emit(PhaseStarted(phase="integrate", detail=branch))
    passed_at_baseline = [r.nodeid for r in baseline.results if r.outcome in ("passed", "xpassed")]
    merged_fixed: list[str] = []
    touched: set[str] = set()
    with repo.worktree(branch, base) as worktree:
        for result in [r for r in results if r.status == "accepted"]:
            if not repo.merge(worktree, result.branch, _message(result)):
                _drop(
                    result,
                    "merge conflict with the integration branch; the branch stays for review",
                    emit,
                )
                continue
            files = touched | set(result.files_changed) | {n.split("::")[0] for n in result.fixed}
            check = list(
                dict.fromkeys(
                    merged_fixed
                    + result.fixed
                    + [n for n in passed_at_baseline if full or n.split("::")[0] in files]
                )
            )
            run = run_suite(
                in_worktree(spec, worktree).model_copy(update={"select": check}),
                emit,
                label=f"integrate {result.category}",
                stop=stop,
            )
            broken = [r.nodeid for r in run.results if r.failing]
            if broken:
                repo.git("reset", "-q", "--hard", "HEAD~1", cwd=worktree)
                _drop(result, f"regression after merge: {', '.join(broken[:3])}", emit)
                continue
            result.merged = True
            merged_fixed += result.fixed
            touched = files
            emit(
                AgentUpdate(
                    category=result.item or result.category,
                    agent=result.agent,
                    status="merged",
                    attempt=result.attempts,
                    fixed=len(result.fixed),
                    target=result.target,
                    branch=result.branch,
                )
            )
    if not any(r.merged for r in results):
        repo.drop_branch(branch)
        emit(Log(message="nothing merged: no integration branch was made"))
        return None
    return branch


def _drop(result: AgentResult, reason: str, emit: Emit) -> None:
    result.merged = False
    result.reason = reason
    emit(Log(level="warning", message=f"{result.branch} not integrated: {reason}"))


def _message(result: AgentResult) -> str:
    return (
        f"Merge {result.branch}: {result.category}, {len(result.fixed)} tests fixed\n\n"
        f"{result.explanation}"
    )
