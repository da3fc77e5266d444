"""Merge the accepted patches into the integration branch in one pass, keeping what holds together.

Every accepted branch is merged (a conflict leaves it out), then one run checks the union of the
merged branches' fixed tests and the baseline-passing tests their changes can affect (the import
graph of the changed files; every baseline-passing test with `full`). Only when that run shows a
failure are the merges bisected: the first merge whose prefix of the branch breaks one of the
failing tests is taken back out, the later ones merged again, and the union checked once more.
"""

from __future__ import annotations

from pathlib import Path

from orchestrator.events import AgentUpdate, Emit, Log, PhaseStarted, Stop
from orchestrator.git import GitRepo
from orchestrator.models import AgentResult, RunSpec, SuiteRun
from orchestrator.suite.config import in_worktree
from orchestrator.suite.runner import run_suite
from orchestrator.verify.affected import regression_set


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
    """Merge every accepted branch, check them together once, take out what breaks.

    Returns the integration branch, or None when nothing merged (no branch is left); `results`
    are updated in place (`merged`, `reason`).
    """
    branch = integration_branch(session)
    repo.drop_branch(branch)  # a resumed run starts the integration over
    emit(PhaseStarted(phase="integrate", detail=branch))
    with repo.worktree(branch, base) as worktree:
        merger = _Merger(repo, worktree, base, spec, baseline, emit, full, stop)
        merged = merger.merge_all([r for r in results if r.status == "accepted"])
        while merged and (broken := merger.check(merged)):
            culprit = merger.first_breaking(merged, broken)
            _drop(culprit, f"regression after merge: {', '.join(broken[:3])}", emit)
            merged = merger.without(merged, culprit)
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
        return None
    return branch


class _Merger:
    """The integration worktree: merges, the commit after each, and the checking runs."""

    def __init__(
        self,
        repo: GitRepo,
        worktree: Path,
        base: str,
        spec: RunSpec,
        baseline: SuiteRun,
        emit: Emit,
        full: bool,
        stop: Stop | None,
    ) -> None:
        self.repo, self.worktree, self.base = repo, worktree, base
        self.spec = in_worktree(spec, worktree)
        self.emit, self.full, self.stop = emit, full, stop
        self.collected = baseline.collected or [r.nodeid for r in baseline.results]
        self.passed = {r.nodeid for r in baseline.results if r.outcome in ("passed", "xpassed")}
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

    def check(self, merged: list[AgentResult]) -> list[str]:
        """One run of the merged branches' fixed tests and what their changes can affect."""
        fixed = [t for r in merged for t in r.fixed]
        if self.full:
            affected = self.passed
        else:
            changed = sorted({f for r in merged for f in r.files_changed})
            before = {p: t for p in changed if (t := self.repo.file_at(self.base, p)) is not None}
            affected = regression_set(self.worktree, changed, self.collected, before) & self.passed
        files = {t.split("::")[0] for t in fixed}
        wanted = affected | set(fixed) | {n for n in self.passed if n.split("::")[0] in files}
        known = set(self.collected)
        check = [n for n in self.collected if n in wanted] + [t for t in fixed if t not in known]
        label = f"integrate {len(merged)} branch{'es' if len(merged) != 1 else ''}"
        return self._failing(self.commits[merged[-1].branch], list(dict.fromkeys(check)), label)

    def first_breaking(self, merged: list[AgentResult], broken: list[str]) -> AgentResult:
        """The first merge after which one of `broken` fails (that should pass by then)."""
        lo, hi = 0, len(merged) - 1  # the whole prefix breaks; find the shortest that does
        while lo < hi:
            mid = (lo + hi) // 2
            due = self.passed | {t for r in merged[: mid + 1] for t in r.fixed}
            tests = [t for t in broken if t in due]
            label = f"integrate: bisect after {merged[mid].category}"
            if tests and self._failing(self.commits[merged[mid].branch], tests, label):
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

    def _failing(self, commit: str, tests: list[str], label: str) -> list[str]:
        """The tests that fail at `commit`; the branch is left there (the last check leaves it
        at the last merge)."""
        self.repo.git("reset", "-q", "--hard", commit, cwd=self.worktree)
        run = run_suite(self.spec.model_copy(update={"select": tests}), self.emit, label, self.stop)
        return [r.nodeid for r in run.results if r.failing]


def _drop(result: AgentResult, reason: str, emit: Emit) -> None:
    result.merged = False
    result.reason = reason
    emit(Log(level="warning", message=f"{result.branch} not integrated: {reason}"))


def _message(result: AgentResult) -> str:
    return (
        f"Merge {result.branch}: {result.category}, {len(result.fixed)} tests fixed\n\n"
        f"{result.explanation}"
    )
