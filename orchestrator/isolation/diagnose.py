"""Re-run failing tests to tell order-dependence from real failures, and name who causes it.

A victim passes alone but fails in the suite: some earlier test left state behind. Which failures
pass alone is decided in at most two runs of the failures (plus a few alone); each victim is then
bisected over the tests that ran before it (search.py), every run counted against a budget of
ceil(log2 N) + 2.
"""

from __future__ import annotations

import time

from orchestrator.errors import UsageError
from orchestrator.events import Emit, Stop, ignore
from orchestrator.isolation.search import Search, solve
from orchestrator.isolation.session import RESTART_MARKERS, Session, process_start
from orchestrator.models import (
    Isolation,
    IsolationFinding,
    IsolationResult,
    RunSpec,
    SuiteRun,
    TestResult,
)


def diagnose(
    spec: RunSpec,
    baseline: SuiteRun,
    *,
    reruns: int = 0,
    emit: Emit = ignore,
    max_victims: int = 50,
    seed: int | None = None,
    stop: Stop | None = None,
) -> IsolationResult:
    """Which failures pass alone, who pollutes them, which are flaky; `seed` adds a shuffled probe."""
    started = time.monotonic()
    session = Session(spec, emit, stop, baseline)
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
    spec: RunSpec,
    victim: str,
    order: list[str] | None = None,
    emit: Emit = ignore,
    stop: Stop | None = None,
    seed: int | None = None,
) -> IsolationFinding:
    """Find the test that breaks `victim` among those before it in `order` (the suite's order,
    shuffled with `seed`, or `spec.order` first)."""
    session = Session(spec, emit, stop)
    baseline = None
    if order is None:
        why = "baseline for bisect" + (f", shuffled with seed {seed}" if seed is not None else "")
        baseline = session.baseline = session.run(None, why, record_leaks=True, seed=seed)
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
    replay = _replay(seed, spec.order)
    if baseline is not None and not baseline.by_id()[victim].failing:
        return IsolationFinding(
            victim=victim,
            kind="unresolved",
            runs=session.runs,
            note=f"passes alone and in this order{replay}: it fails only in another order; "
            "bisect in that order with --shuffle SEED (the seed the failing run printed) or "
            "--shuffle FILE (its node ids, one a line)",
        )
    index = order.index(victim)
    start = process_start(baseline.results, index) if baseline else 0
    search = Search(victim, order, start, index, breaks=True, runs=session.runs)
    finding = solve(session, [search])[0]
    if finding.kind == "unresolved" and seed is None and not spec.order:
        finding.note += "; if it failed in a shuffled run, bisect with --shuffle SEED"
    return finding


def _replay(seed: int | None, order: list[str] | None) -> str:
    if seed is not None:
        return f" (shuffled with seed {seed})"
    return " (the order file's)" if order else " (file order)"


def shuffled_run(spec: RunSpec, seed: int) -> SuiteRun:
    """The whole suite in a seeded random order: hidden order-dependence shows up here."""
    return _shuffled(Session(spec, ignore), seed)


def order_probe(spec: RunSpec, baseline: SuiteRun, seed: int) -> list[IsolationFinding]:
    """Tests that passed in the baseline but fail shuffled, each bisected to its culprit."""
    return _order_probe(Session(spec, ignore, baseline=baseline), baseline, seed)


def _shuffled(session: Session, seed: int) -> SuiteRun:
    return session.run(None, f"whole suite shuffled with seed {seed}", seed=seed)


def _rerunnable(baseline: SuiteRun) -> list[str]:
    """Failing tests worth re-running: not hangs (each costs a timeout), not collection errors."""
    return [
        r.nodeid
        for r in baseline.failing()
        if r.outcome != "timeout" and r.when != "collect" and r.exc_type not in RESTART_MARKERS
    ]


# --- which failures pass alone, which are flaky ---------------------------------------------------


def _sort_failures(
    session: Session, baseline: SuiteRun, failing: list[str], reruns: int, result: IsolationResult
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


def _alone_verdicts(session: Session, failing: list[str], still: list[str]) -> dict[str, Isolation]:
    """Verdicts for tests that failed again among the failures, at most two runs plus a few alone.

    The first failing test ran alone already. For the others one reversed run swaps what ran
    before them: a test failing in both orders fails alone (unless two different failing tests
    each break it); one that passes reversed is run alone to decide.
    """
    verdicts: dict[str, Isolation] = {t: "fails_alone" for t in still}
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


# --- victims of the baseline, and of a shuffled order ---------------------------------------------


def _find_polluters(
    session: Session, baseline: SuiteRun, victims: list[str], max_victims: int
) -> list[IsolationFinding]:
    order = [r.nodeid for r in baseline.results]
    searches = []
    for victim in victims[:max_victims]:
        index = order.index(victim)
        start = process_start(baseline.results, index)
        session.log(f"bisecting {victim} over {index - start} earlier tests")
        searches.append(Search(victim, order, start, index, breaks=True))
    findings = solve(session, searches)
    for victim in victims[max_victims:]:
        findings.append(
            IsolationFinding(
                victim=victim,
                kind="unresolved",
                note=f"not bisected: over max_victims={max_victims}",
            )
        )
    return findings


def _order_probe(session: Session, baseline: SuiteRun, seed: int) -> list[IsolationFinding]:
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
    return solve(session, searches)


def _setter_search(baseline: SuiteRun, victim: str) -> Search:
    order = [r.nodeid for r in baseline.results]
    index = order.index(victim)
    return Search(victim, order, process_start(baseline.results, index), index, breaks=False)


def _polluter_search(shuffled: SuiteRun, victim: str) -> Search:
    order = [r.nodeid for r in shuffled.results]
    index = order.index(victim)
    return Search(victim, order, process_start(shuffled.results, index), index, breaks=True)
