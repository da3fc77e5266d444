"""Merge the accepted patches into the integration branch in one pass, keeping what holds together.

Every accepted branch is merged (a conflict leaves it out), then the whole suite runs once on the
result: that run is the integration check and the run's "after" at once. Only when it shows a
failure (a test that passed at baseline, or one a merged branch fixed) are the merges bisected:
the first merge whose prefix of the branch breaks one of the failing tests is taken back out, the
later ones merged again, and the whole suite run once more. The bisection runs only the failing
tests when they fail on their own; a failure that needs the whole suite (a merge that leaks
state into later tests) is bisected with whole-suite runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orchestrator.events import AgentUpdate, Emit, Log, PhaseStarted, Stop
from orchestrator.git import GitRepo
from orchestrator.models import AgentResult, RunSpec, SuiteRun
from orchestrator.suite.config import in_worktree
from orchestrator.suite.runner import run_suite

FINAL_LABEL = "final"  # the whole-suite run on the integration branch


def integration_branch(session: str) -> str:
    """`orchestrate/<session>/integration`: git cannot hold `orchestrate/<session>` as a branch
    next to the agents' `orchestrate/<session>/<category>` branches."""
    return f"orchestrate/{session}/integration"


@dataclass
class Integration:
    """The integration branch (None when nothing merged) and the whole suite's run on it."""

    branch: str | None
    final: SuiteRun | None


def integrate(
    repo: GitRepo,
    *,
    session: str,
    base: str,
    results: list[AgentResult],
    spec: RunSpec,
    baseline: SuiteRun,
    emit: Emit,
    stop: Stop | None = None,
) -> Integration:
    """Merge every accepted branch, run the whole suite on them once, take out what breaks.

    `results` are updated in place (`merged`, `reason`); no branch is left when nothing merged.
    """
    branch = integration_branch(session)
    repo.drop_branch(branch)  # a resumed run starts the integration over
    emit(PhaseStarted(phase="integrate", detail=branch))
    final = None
    with repo.worktree(branch, base) as worktree:
        merger = _Merger(repo, worktree, spec, baseline, emit, stop)
        merged = merger.merge_all([r for r in results if r.status == "accepted"])
        while merged:
            emit(PhaseStarted(phase="final", detail=branch))
            final = merger.run(merger.commits[merged[-1].branch], None, FINAL_LABEL)
            broken = merger.broken(merged, final)
            if not broken:
                break
            emit(PhaseStarted(phase="integrate", detail=f"{len(broken)} tests broke: bisecting"))
            culprit = merger.first_breaking(merged, broken)
            _drop(culprit, f"regression after merge: {', '.join(broken[:3])}", emit)
            merged, final = merger.without(merged, culprit), None
        for result in merged:
            result.merged = True
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
        return Integration(branch=None, final=None)
    return Integration(branch=branch, final=final)


class _Merger:
    """The integration worktree: merges, the commit after each, and the checking runs."""

    def __init__(
        self,
        repo: GitRepo,
        worktree: Path,
        spec: RunSpec,
        baseline: SuiteRun,
        emit: Emit,
        stop: Stop | None,
    ) -> None:
        self.repo, self.worktree, self.base = repo, worktree, repo.rev("HEAD", cwd=worktree)
        self.spec = in_worktree(spec, worktree)
        self.emit, self.stop = emit, stop
        self.passed = {r.nodeid for r in baseline.results if r.outcome in ("passed", "xpassed")}
        self.collected = baseline.collected
        self.commits: dict[str, str] = {}  # branch -> the integration commit that merged it

    def merge_all(self, results: list[AgentResult]) -> list[AgentResult]:
        merged = []
        for result in results:
            if self.repo.merge(self.worktree, result.branch, _message(result)):
                self.commits[result.branch] = self.repo.rev("HEAD", cwd=self.worktree)
                merged.append(result)
            else:
                _drop(
                    result,
                    "merge conflict with the integration branch; the branch stays for review",
                    self.emit,
                )
        return merged

    def broken(self, merged: list[AgentResult], run: SuiteRun) -> list[str]:
        """The tests failing or gone in `run` that passed at baseline or a merged branch fixed
        (verification collects only what a patch can reach: the whole suite's run sees the rest)."""
        due = self.passed | {t for r in merged for t in r.fixed}
        failing = self._failing(run, None)
        ids = dict.fromkeys([*self.collected, *(r.nodeid for r in run.results)])
        return [n for n in ids if n in failing and n in due]

    def first_breaking(self, merged: list[AgentResult], broken: list[str]) -> AgentResult:
        """The first merge after which one of `broken` fails (that should pass by then)."""
        head = self.commits[merged[-1].branch]
        alone = self._failing(self.run(head, broken, "integrate: failing alone?"), broken)
        tests = [t for t in broken if t in alone] or None  # None: they fail only in the suite
        lo, hi = 0, len(merged) - 1  # the whole prefix breaks; find the shortest that does
        while lo < hi:
            mid = (lo + hi) // 2
            due = self.passed | {t for r in merged[: mid + 1] for t in r.fixed}
            label = f"integrate: bisect after {merged[mid].category}"
            run = self.run(self.commits[merged[mid].branch], tests, label)
            failing = self._failing(run, tests)
            if failing & due & set(broken):
                hi = mid
            else:
                lo = mid + 1
        return merged[lo]

    def without(self, merged: list[AgentResult], culprit: AgentResult) -> list[AgentResult]:
        """The branch rebuilt without `culprit`: reset before it, the later ones merged again."""
        at = merged.index(culprit)
        before = self.commits[merged[at - 1].branch] if at else self.base
        self.repo.git("reset", "-q", "--hard", before, cwd=self.worktree)
        return merged[:at] + self.merge_all(merged[at + 1 :])

    def run(self, commit: str, tests: list[str] | None, label: str) -> SuiteRun:
        """`tests` (None: the whole suite) at `commit`; the branch is left there, as it was."""
        self.repo.git("reset", "-q", "--hard", commit, cwd=self.worktree)
        with self.repo.preserved(self.worktree):
            spec = self.spec.model_copy(update={"select": tests})
            return run_suite(spec, self.emit, label, self.stop)

    def _failing(self, run: SuiteRun, tests: list[str] | None) -> set[str]:
        """The tests of `run` that failed, and those of `tests` (None: of the baseline) it no
        longer has."""
        present = {r.nodeid for r in run.results}
        gone = {n for n in (self.collected if tests is None else tests) if n not in present}
        return gone | {r.nodeid for r in run.results if r.failing}


def _drop(result: AgentResult, reason: str, emit: Emit) -> None:
    result.merged = False
    result.reason = reason
    emit(Log(level="warning", message=f"{result.branch} not integrated: {reason}"))


def _message(result: AgentResult) -> str:
    return (
        f"Merge {result.branch}: {result.category}, {len(result.fixed)} tests fixed\n\n"
        f"{result.explanation}"
    )
