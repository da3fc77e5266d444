"""The pytest runs isolation makes: each one counted, each one's leaks remembered."""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.events import Emit, Log, Stop
from orchestrator.models import Leak, RunSpec, SuiteRun, TestResult
from orchestrator.suite.config import sequential
from orchestrator.suite.runner import run_suite

RESTART_MARKERS = ("orchestrate.Timeout", "orchestrate.Crash")  # the runner began a new process


@dataclass
class Session:
    """Runs pytest for isolation and counts every run: the budget is the point."""

    spec: RunSpec
    emit: Emit
    stop: Stop | None = None
    baseline: SuiteRun | None = None  # its recorded leaks are the first evidence
    runs: int = 0
    seen: dict[str, list[Leak]] = field(default_factory=dict)  # leaks seen in our own small runs

    def run(
        self,
        select: list[str] | None,
        why: str,
        record_leaks: bool = False,
        seed: int | None = None,
    ) -> SuiteRun:
        self.runs += 1
        self.emit(Log(message=f"isolation run {self.runs}: {why}"))
        spec = sequential(self.spec).model_copy(
            update={
                "select": list(dict.fromkeys(select)) if select is not None else None,
                "shuffle_seed": seed,
                "record_leaks": record_leaks,
            }
        )
        suite = run_suite(spec, label="isolation", stop=self.stop)
        for r in suite.results:
            if r.leaks:
                self.seen.setdefault(r.nodeid, r.leaks)
        return suite

    def outcomes(
        self, select: list[str], why: str, record_leaks: bool = False
    ) -> dict[str, TestResult]:
        return self.run(select, why, record_leaks).by_id()

    def log(self, message: str) -> None:
        self.emit(Log(message=f"isolation: {message}"))

    def leaks_of(self, tests: list[str]) -> dict[str, list[Leak]]:
        """What each test left behind: as the baseline recorded it, else as our runs saw it."""
        recorded = {r.nodeid: r.leaks for r in self.baseline.results} if self.baseline else {}
        found = {t: recorded.get(t) or self.seen.get(t) or [] for t in tests}
        return {t: leaks for t, leaks in found.items() if leaks}


def process_start(results: list[TestResult], index: int) -> int:
    """Where the process that ran `results[index]` began: a hang or crash restarts pytest."""
    return process_starts(results[: index + 1])[index]


def process_starts(results: list[TestResult]) -> list[int]:
    """`process_start` of every result, in one pass."""
    starts, start = [], 0
    for i, result in enumerate(results):
        starts.append(start)
        if result.exc_type in RESTART_MARKERS:
            start = i + 1
    return starts
