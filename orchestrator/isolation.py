"""Re-run failing tests to tell order-dependence from real failures, and name who causes it.

A victim passes alone but fails in the suite: some earlier test left state behind. We find it
the way detect-test-pollution does, by bisecting the tests that ran before the victim: run half
of them, then the victim; if it fails the polluter is in that half, else in the other; repeat.
Halves sit on one power-of-two grid over the execution order, so victims whose candidates
coincide share a run, and every pytest run is counted against a budget of ceil(log2 N) + 2.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from orchestrator.errors import UsageError
from orchestrator.events import Emit, Log, ignore
from orchestrator.models import IsolationFinding, IsolationResult, RunSpec, SuiteRun, TestResult
from orchestrator.runner import run_suite

NO_LEAK = "no leaked process state recorded (a DB row or external state?)"
RESTART_MARKERS = ("orchestrate.Timeout", "orchestrate.Crash")  # the runner began a new process


# --- public surface ------------------------------------------------------------------------------


def diagnose(
    spec: RunSpec,
    baseline: SuiteRun,
    *,
    reruns: int = 0,
    emit: Emit = ignore,
    max_victims: int = 50,
    seed: int | None = None,
) -> IsolationResult:
    """Which failures pass alone, who pollutes them, which are flaky; `seed` adds a shuffled probe."""
    started = time.monotonic()
    session = _Session(spec, emit)
    result = IsolationResult()
    failing = _rerunnable(baseline)
    if failing:
        victims = _sort_failures(session, baseline, failing, reruns, result)
        result.findings += _find_polluters(session, baseline, victims, max_victims)
    if seed is not None:
        result.findings += _order_probe(session, baseline, seed)
    result.runs = session.runs
    result.duration_s = round(time.monotonic() - started, 3)
    return result


def bisect(
    spec: RunSpec, victim: str, order: list[str] | None = None, emit: Emit = ignore
) -> IsolationFinding:
    """Find the test that breaks `victim` among those before it in `order` (the suite's order)."""
    session = _Session(spec, emit)
    baseline = None
    if order is None:
        baseline = session.run(None, "baseline for bisect", record_leaks=True)
        order = [r.nodeid for r in baseline.results]
    if victim not in order:
        raise UsageError(f"{victim} was not collected in {spec.repo}: check the node id")
    alone = session.outcomes([victim], f"{victim} alone")
    if victim not in alone:
        raise UsageError(f"{victim} was not collected in {spec.repo}: check the node id")
    if alone[victim].failing:
        return IsolationFinding(
            victim=victim,
            kind="unresolved",
            runs=session.runs,
            note="fails alone: not order-dependent",
        )
    index = order.index(victim)
    start = _process_start(baseline.results, index) if baseline else 0
    search = _Search(victim, order, start, index, breaks=True, runs=session.runs)
    return _solve(session, [search], _Leaks(baseline, session))[0]


def shuffled_run(spec: RunSpec, seed: int) -> SuiteRun:
    """The whole suite in a seeded random order: hidden order-dependence shows up here."""
    return _shuffled(_Session(spec, ignore), seed)


def order_probe(spec: RunSpec, baseline: SuiteRun, seed: int) -> list[IsolationFinding]:
    """Tests that passed in the baseline but fail shuffled, each bisected to its culprit."""
    return _order_probe(_Session(spec, ignore), baseline, seed)


# --- running ----------------------------------------------------------------------------------


@dataclass
class _Session:
    """Runs pytest for isolation and counts every run: the budget is the point."""

    spec: RunSpec
    emit: Emit
    runs: int = 0
    leaks: dict[str, list[str]] = field(default_factory=dict)  # seen in our own small runs

    def run(
        self,
        select: list[str] | None,
        why: str,
        record_leaks: bool = False,
        seed: int | None = None,
    ) -> SuiteRun:
        self.runs += 1
        self.emit(Log(message=f"isolation run {self.runs}: {why}"))
        spec = self.spec.model_copy(
            update={
                "select": list(dict.fromkeys(select)) if select is not None else None,
                "shuffle_seed": seed,
                "record_leaks": record_leaks,
            }
        )
        suite = run_suite(spec, ignore, label="isolation")
        for r in suite.results:
            if r.leaks:
                self.leaks.setdefault(r.nodeid, r.leaks)
        return suite

    def outcomes(
        self, select: list[str], why: str, record_leaks: bool = False
    ) -> dict[str, TestResult]:
        return self.run(select, why, record_leaks).by_id()

    def log(self, message: str) -> None:
        self.emit(Log(message=f"isolation: {message}"))


def _shuffled(session: _Session, seed: int) -> SuiteRun:
    return session.run(None, f"whole suite shuffled with seed {seed}", seed=seed)


def _rerunnable(baseline: SuiteRun) -> list[str]:
    """Failing tests worth re-running: not hangs (each costs a timeout), not collection errors."""
    return [
        r.nodeid
        for r in baseline.failing()
        if r.outcome != "timeout" and r.when != "collect" and r.exc_type not in RESTART_MARKERS
    ]


def _process_start(results: list[TestResult], index: int) -> int:
    """Where the process that ran `results[index]` began: a hang or crash restarts pytest."""
    for i in range(index - 1, -1, -1):
        if results[i].exc_type in RESTART_MARKERS:
            return i + 1
    return 0


# --- which failures pass alone, which are flaky ---------------------------------------------------


def _sort_failures(
    session: _Session, baseline: SuiteRun, failing: list[str], reruns: int, result: IsolationResult
) -> list[str]:
    """Fill `result.alone` and the flaky findings; return the victims (pass alone, fail in the suite)."""
    repeats = [session.outcomes(failing, f"the {len(failing)} failing tests together")]
    for i in range(reruns):
        repeats.append(session.outcomes(failing, f"failing tests again ({i + 1} of {reruns})"))
    _record_flaky(failing, baseline, repeats, result)
    first = repeats[0]
    steady = [t for t in failing if t not in result.flaky]
    passing = [t for t in steady if t in first and not first[t].failing]
    still = [t for t in steady if t not in passing]
    for t in passing:
        result.alone[t] = "passes_alone"
    for t, verdict in _alone_verdicts(session, failing, still).items():
        result.alone[t] = verdict
    session.log(f"{len(passing)} of {len(failing)} failures pass alone")
    return [t for t in steady if result.alone.get(t) == "passes_alone"]


def _record_flaky(
    failing: list[str],
    baseline: SuiteRun,
    repeats: list[dict[str, TestResult]],
    result: IsolationResult,
) -> None:
    """A test whose outcome changes between identical runs is flaky, not order-dependent."""
    if len(repeats) < 2:
        return
    for t in failing:
        outcomes = [run[t].failing if t in run else None for run in repeats]
        if len(set(outcomes)) > 1:
            failed = 1 + sum(1 for o in outcomes if o)
            result.flaky.append(t)
            result.findings.append(
                IsolationFinding(
                    victim=t,
                    kind="flaky",
                    runs=len(repeats),
                    note=f"failed {failed} of {len(repeats) + 1} identical runs (baseline included)",
                )
            )


def _alone_verdicts(session: _Session, failing: list[str], still: list[str]) -> dict[str, str]:
    """Verdicts for tests that failed again among the failures, at most two runs plus a few alone.

    The first failing test ran alone already. For the others one reversed run swaps what ran
    before them: a test failing in both orders fails alone (unless two different failing tests
    each break it); one that passes reversed is run alone to decide.
    """
    verdicts = {t: "fails_alone" for t in still}
    unsure = [t for t in still if t != failing[0]]
    if not unsure:
        return verdicts
    reversed_run = session.outcomes(still[::-1], "failing tests in reverse order")
    for t in unsure:
        if t in reversed_run and not reversed_run[t].failing:
            alone = session.outcomes([t], f"{t} alone")
            if t in alone and not alone[t].failing:
                verdicts[t] = "passes_alone"
    return verdicts


# --- bisection ----------------------------------------------------------------------------------


@dataclass
class _Search:
    """One victim's bisection: a node [lo, hi) of a power-of-two grid over `order`.

    The suspects are order[start:end] within the node. `breaks` says what the culprit does:
    True, its presence makes the victim fail (polluter); False, makes it pass (state setter).
    """

    victim: str
    order: list[str]
    start: int
    end: int
    breaks: bool
    runs: int = 0
    lo: int = 0
    hi: int = 0
    verified: bool = False  # the victim was seen to react to exactly the current suspects
    note: str = ""

    def __post_init__(self) -> None:
        self.hi = 1 << max(0, math.ceil(math.log2(max(len(self.order), 1))))

    @property
    def suspects(self) -> list[str]:
        return self.order[max(self.lo, self.start) : min(self.hi, self.end)]

    def reacts(self, result: TestResult | None) -> bool:
        if result is None:
            return False
        return result.failing if self.breaks else result.outcome == "passed"


def _solve(
    session: _Session, searches: list[_Search], leaks: dict[str, list[str]]
) -> list[IsolationFinding]:
    """Bisect all searches together, confirm each single culprit, fall back to ddmin-style search."""
    active = [s for s in searches if s.end > s.start]
    _descend(session, active)
    _confirm(session, [s for s in active if not s.verified])
    findings = []
    for s in searches:
        if s.end <= s.start:
            findings.append(_finding(s, [], leaks, "unresolved", "no test ran before it"))
        elif s.verified:
            findings.append(_finding(s, s.suspects, leaks))
        else:
            findings.append(_minimize(session, s, leaks))
    return findings


def _descend(session: _Session, searches: list[_Search]) -> None:
    """Halve every search level by level; searches probing the same half share one run."""
    while active := [s for s in searches if len(s.suspects) > 1]:
        size = max(s.hi - s.lo for s in active)
        groups: dict[tuple[str, ...], list[_Search]] = {}
        for s in active:
            if s.hi - s.lo != size:
                continue
            mid = s.lo + size // 2
            if mid >= s.end:  # every suspect is in the left half: no run needed
                s.hi = mid
            elif mid <= s.start:
                s.lo = mid
            else:
                probe = tuple(s.order[max(s.lo, s.start) : mid])
                groups.setdefault(probe, []).append(s)
        for probe, group in groups.items():
            _probe(session, probe, group)


def _probe(session: _Session, probe: tuple[str, ...], group: list[_Search]) -> None:
    """Run the suspected half, then the victims: reacting victims keep it, the others the rest."""
    victims = [s.victim for s in group if s.victim not in probe]
    size = len(probe)
    outcomes = session.outcomes(
        [*probe, *victims],
        f"{size} suspects before {len(victims)} victim(s)",
        record_leaks=size == 1,
    )
    for s in group:
        s.runs += 1
        mid = s.lo + (s.hi - s.lo) // 2
        if s.victim not in probe and s.reacts(outcomes.get(s.victim)):
            s.hi, s.verified = mid, True
        else:
            s.lo, s.verified = mid, False


def _confirm(session: _Session, searches: list[_Search]) -> None:
    """One run per inferred culprit (shared by its victims): culprit then victims must react."""
    groups: dict[str, list[_Search]] = {}
    for s in searches:
        groups.setdefault(s.suspects[0], []).append(s)
    for culprit, group in groups.items():
        outcomes = session.outcomes(
            [culprit, *(s.victim for s in group)], f"confirm {culprit}", record_leaks=True
        )
        for s in group:
            s.runs += 1
            s.verified = s.reacts(outcomes.get(s.victim))


class _OutOfBudget(Exception):
    """The ddmin fallback spent its runs."""


def _minimize(session: _Session, s: _Search, leaks: dict[str, list[str]]) -> IsolationFinding:
    """No single culprit: find a minimal set (QuickXplain over halves) within a run budget."""
    suspects = s.order[s.start : s.end]
    position = {t: i for i, t in enumerate(suspects)}
    budget = s.runs + 3 * math.ceil(math.log2(max(len(suspects), 2))) + 4
    cache: dict[tuple[str, ...], bool] = {}

    def reacts(tests: list[str]) -> bool:
        key = tuple(sorted(set(tests), key=position.__getitem__))
        if key not in cache:
            if s.runs >= budget:
                raise _OutOfBudget
            s.runs += 1
            outcomes = session.outcomes([*key, s.victim], f"ddmin {len(key)} suspects")
            cache[key] = s.reacts(outcomes.get(s.victim))
        return cache[key]

    def find(context: list[str], tests: list[str]) -> list[str]:
        if len(tests) == 1:
            return tests
        half = len(tests) // 2
        left, right = tests[:half], tests[half:]
        if reacts(context + left):
            return find(context, left)
        if reacts(context + right):
            return find(context, right)
        found_right = find(context + left, right)
        return find(context + found_right, left) + found_right

    session.log(f"no single culprit for {s.victim}: searching for a combination")
    try:
        if not reacts(suspects):
            return _finding(
                s, [], leaks, "unresolved", "the tests before it no longer break it: flaky?"
            )
        culprits = sorted(find([], suspects), key=position.__getitem__)
    except _OutOfBudget:
        return _finding(s, [], leaks, "unresolved", f"no culprit set found within {budget} runs")
    cache.clear()
    if not reacts(culprits):
        return _finding(s, [], leaks, "unresolved", "the culprits found do not reproduce: flaky?")
    return _finding(s, culprits, leaks, "pair" if len(culprits) > 1 else None)


def _finding(
    s: _Search,
    culprits: list[str],
    leaks: dict[str, list[str]],
    kind: str | None = None,
    note: str = "",
) -> IsolationFinding:
    kind = kind or ("polluter" if s.breaks else "state_setter")
    leak = "; ".join(_leak_text(c, leaks) for c in culprits) if culprits else None
    return IsolationFinding(
        victim=s.victim,
        kind=kind,
        culprits=culprits,
        leak=leak,
        runs=s.runs,
        note="; ".join(filter(None, [s.note, note])),
    )


def _leak_text(culprit: str, leaks: dict[str, list[str]]) -> str:
    """State the culprit left behind; env, attributes, cwd and files say more than imports."""
    lines = [line for line in leaks.get(culprit) or [] if not line.startswith("PYTEST_")]
    strong = [line for line in lines if not line.startswith("modules newly imported")]
    return "; ".join((strong or lines)[:3]) or NO_LEAK


# --- victims of the baseline, and of a shuffled order ---------------------------------------------


def _find_polluters(
    session: _Session, baseline: SuiteRun, victims: list[str], max_victims: int
) -> list[IsolationFinding]:
    order = [r.nodeid for r in baseline.results]
    searches = []
    for victim in victims[:max_victims]:
        index = order.index(victim)
        start = _process_start(baseline.results, index)
        session.log(f"bisecting {victim} over {index - start} earlier tests")
        searches.append(_Search(victim, order, start, index, breaks=True))
    findings = _solve(session, searches, _Leaks(baseline, session))
    for victim in victims[max_victims:]:
        findings.append(
            IsolationFinding(
                victim=victim,
                kind="unresolved",
                note=f"not bisected: over max_victims={max_victims}",
            )
        )
    return findings


class _Leaks(dict):
    """Leaks from the baseline first, else those seen in our own small runs (filled while searching)."""

    def __init__(self, baseline: SuiteRun | None, session: _Session) -> None:
        super().__init__()
        self.baseline = {r.nodeid: r.leaks for r in baseline.results} if baseline else {}
        self.session = session

    def get(self, key: str, default=None):
        return self.baseline.get(key) or self.session.leaks.get(key) or default


def _order_probe(session: _Session, baseline: SuiteRun, seed: int) -> list[IsolationFinding]:
    shuffled = _shuffled(session, seed)
    before = baseline.by_id()
    suspects = [
        r.nodeid
        for r in shuffled.results
        if r.failing
        and r.nodeid in before
        and before[r.nodeid].outcome == "passed"
        and r.exc_type not in RESTART_MARKERS
    ]
    session.log(f"{len(suspects)} tests pass in suite order but fail shuffled (seed {seed})")
    searches = []
    for victim in suspects:
        alone = session.outcomes([victim], f"{victim} alone")
        if victim in alone and alone[victim].failing:
            searches.append(_setter_search(baseline, victim))  # something earlier set it up
        else:
            searches.append(_polluter_search(shuffled, victim))
        searches[-1].runs = 1
        searches[-1].note = f"shuffled with seed {seed} (replay: ORCHESTRATE_SHUFFLE={seed})"
    return _solve(session, searches, _Leaks(baseline, session))


def _setter_search(baseline: SuiteRun, victim: str) -> _Search:
    order = [r.nodeid for r in baseline.results]
    index = order.index(victim)
    return _Search(victim, order, _process_start(baseline.results, index), index, breaks=False)


def _polluter_search(shuffled: SuiteRun, victim: str) -> _Search:
    order = [r.nodeid for r in shuffled.results]
    index = order.index(victim)
    return _Search(victim, order, _process_start(shuffled.results, index), index, breaks=True)
