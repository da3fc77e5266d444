"""Re-run failing tests to tell order-dependence from real failures, and name who causes it.

A victim passes alone but fails in the suite: some earlier test left state behind. Runs go where
they can teach. Which failures pass alone is decided in at most two runs of a sample (a few
failures per signature, and every failure whose message names something an earlier test leaked);
a signature whose sample all fails alone is taken to fail alone, the others are run in full.
Each victim's likely polluters (earlier tests whose recorded leak its failure names) are then
tried first, one run per candidate shared by its victims; the rest are bisected over the tests
that ran before them (search.py), every run counted against a budget of ceil(log2 N) + 2.
"""

from __future__ import annotations

import re
import time

from orchestrator.errors import UsageError
from orchestrator.events import Emit, Stop, ignore
from orchestrator.isolation.search import Search, solve
from orchestrator.isolation.session import RESTART_MARKERS, Session, process_start, process_starts
from orchestrator.models import (
    Isolation,
    IsolationFinding,
    IsolationResult,
    Leak,
    RunSpec,
    SuiteRun,
    TestResult,
)
from orchestrator.triage import signature

SAMPLE = 3  # failures run per signature before the rest of it is taken to fail alone
CANDIDATES = 3  # likely polluters tried per victim before bisecting it


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
    """Fill `result.alone` and the flaky findings; return the victims (pass alone, fail in the suite).

    Without reruns only a sample of each signature runs; a signature whose sample shows any
    order-dependence is run in full. Reruns (flaky detection) run every failure.
    """
    if reruns:
        return _sort_some(session, baseline, failing, reruns, result)
    groups = _by_signature(baseline, failing)
    picked = set(_named_leaks(baseline, failing)) | _sampled(groups)
    sample = [t for t in failing if t in picked]
    victims = _sort_some(session, baseline, sample, 0, result)
    rest = [
        t
        for members in groups.values()
        if any(result.alone.get(m) != "fails_alone" for m in members if m in sample)
        for t in members
        if t not in sample
    ]
    inferred = [t for t in failing if t not in sample and t not in rest]
    for t in inferred:
        result.alone[t] = "fails_alone"
    if inferred:
        session.log(
            f"{len(inferred)} failures not re-run: their signature's sample all fails alone"
        )
    if rest:
        victims += _sort_some(session, baseline, rest, 0, result)
    found = set(victims)
    return [t for t in failing if t in found]


def _by_signature(baseline: SuiteRun, failing: list[str]) -> dict[str, list[str]]:
    by_id = baseline.by_id()
    groups: dict[str, list[str]] = {}
    for t in failing:
        groups.setdefault(signature(by_id[t]), []).append(t)
    return groups


def _sampled(groups: dict[str, list[str]]) -> set[str]:
    """The first, middle and last failures of each signature (in the suite's order)."""
    picked: set[str] = set()
    for members in groups.values():
        if len(members) <= SAMPLE:
            picked |= set(members)
        else:
            step = (len(members) - 1) / (SAMPLE - 1)
            picked |= {members[round(i * step)] for i in range(SAMPLE)}
    return picked


def _sort_some(
    session: Session, baseline: SuiteRun, failing: list[str], reruns: int, result: IsolationResult
) -> list[str]:
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
    findings = _confirm_candidates(session, baseline, victims[:max_victims])
    found = {f.victim for f in findings}
    searches = []
    for victim in [v for v in victims[:max_victims] if v not in found]:
        index = order.index(victim)
        start = process_start(baseline.results, index)
        session.log(f"bisecting {victim} over {index - start} earlier tests")
        searches.append(Search(victim, order, start, index, breaks=True))
    findings += solve(session, searches)
    for victim in victims[max_victims:]:
        findings.append(
            IsolationFinding(
                victim=victim,
                kind="unresolved",
                note=f"not bisected: over max_victims={max_victims}",
            )
        )
    return findings


# --- likely polluters first: the recorded leaks the failures name -----------------------------------


def _named_leaks(baseline: SuiteRun, failing: list[str]) -> dict[str, list[str]]:
    """Failing test -> the earlier tests (same process) whose recorded leak its failure names (an
    environment variable, a rebound attribute, a file): the first named first, then the nearest."""
    results = baseline.results
    index = {r.nodeid: i for i, r in enumerate(results)}
    starts = process_starts(results)
    leakers = [
        (i, words) for i, r in enumerate(results) if r.leaks and (words := _leak_words(r.leaks))
    ]
    found: dict[str, list[str]] = {}
    for t in failing:
        at = index[t]
        text = " ".join(filter(None, [results[at].message, results[at].longrepr]))
        if not text:
            continue
        start = starts[at]
        mentions = [
            (pos, at - i, i)
            for i, words in leakers
            if start <= i < at and (pos := _first_mention(text, words)) is not None
        ]
        named = [results[i].nodeid for _, _, i in sorted(mentions)]
        if named:
            found[t] = named[:CANDIDATES]
    return found


def _first_mention(text: str, words: set[str]) -> int | None:
    """Where the failure first names one of the words (the assertion names its cause before a
    dump of the state does), or None."""
    found = [m.start() for w in words if (m := re.search(rf"\b{re.escape(w)}\b", text))]
    return min(found) if found else None


def _leak_words(leaks: list[Leak]) -> set[str]:
    """What a failure would say if this leak broke it."""
    words: set[str] = set()
    for leak in leaks:
        if leak.kind in ("env", "attr") and leak.key:
            words |= {leak.key, leak.key.rsplit(".", 1)[-1]}
        elif leak.kind == "files":
            words |= {name.rsplit("/", 1)[-1] for name in leak.names}
    return {w for w in words if len(w) >= 3}


def _confirm_candidates(
    session: Session, baseline: SuiteRun, victims: list[str]
) -> list[IsolationFinding]:
    """Each likely polluter run once before the victims naming its leak; a victim that fails
    after it alone has its polluter (it passes alone), without bisecting."""
    named = _named_leaks(baseline, victims)
    findings: list[IsolationFinding] = []
    tries = dict.fromkeys(named, 0)
    for _ in range(CANDIDATES):
        rounds: dict[str, list[str]] = {}
        for victim, candidates in named.items():
            if victim not in {f.victim for f in findings} and len(candidates) > tries[victim]:
                rounds.setdefault(candidates[tries[victim]], []).append(victim)
        for culprit, group in rounds.items():
            outcomes = session.outcomes(
                [culprit, *group], f"likely polluter {culprit} (its leak is named)", True
            )
            for victim in group:
                tries[victim] += 1
                if victim in outcomes and outcomes[victim].failing:
                    findings.append(
                        IsolationFinding(
                            victim=victim,
                            kind="polluter",
                            culprits=[culprit],
                            leaks=session.leaks_of([culprit]),
                            runs=tries[victim],
                            note="its recorded leak is named in the failure; confirmed in one run",
                        )
                    )
    if findings:
        session.log(f"{len(findings)} victims matched to a polluter by the leak they name")
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
