"""Bisection: find the test that breaks (or makes pass) a victim among those that ran before it.

Like detect-test-pollution: run half of the suspects, then the victim; if it reacts the culprit is
in that half, else in the other; repeat. Halves sit on one power-of-two grid over the execution
order, so victims whose suspects coincide share a run. A single culprit is confirmed by one last
run; when none exists, a QuickXplain-style search looks for a minimal set within a run budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from orchestrator.isolation.session import Session
from orchestrator.models import IsolationFinding, TestResult


@dataclass
class Search:
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


def solve(session: Session, searches: list[Search]) -> list[IsolationFinding]:
    """Bisect all searches together, confirm each single culprit, fall back to ddmin-style search."""
    active = [s for s in searches if s.end > s.start]
    _descend(session, active)
    _confirm(session, [s for s in active if not s.verified])
    findings = []
    for s in searches:
        if s.end <= s.start:
            findings.append(_finding(session, s, [], "unresolved", "no test ran before it"))
        elif s.verified:
            findings.append(_finding(session, s, s.suspects))
        else:
            findings.append(_minimize(session, s))
    return findings


def _descend(session: Session, searches: list[Search]) -> None:
    """Halve every search level by level; searches probing the same half share one run."""
    while active := [s for s in searches if len(s.suspects) > 1]:
        size = max(s.hi - s.lo for s in active)
        groups: dict[tuple[str, ...], list[Search]] = {}
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


def _probe(session: Session, probe: tuple[str, ...], group: list[Search]) -> None:
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


def _confirm(session: Session, searches: list[Search]) -> None:
    """One run per inferred culprit (shared by its victims): culprit then victims must react."""
    groups: dict[str, list[Search]] = {}
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


def _minimize(session: Session, s: Search) -> IsolationFinding:
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
                session, s, [], "unresolved", "the tests before it no longer break it: flaky?"
            )
        culprits = sorted(find([], suspects), key=position.__getitem__)
    except _OutOfBudget:
        return _finding(session, s, [], "unresolved", f"no culprit set found within {budget} runs")
    cache.clear()
    if not reacts(culprits):
        return _finding(session, s, [], "unresolved", "the culprits found do not reproduce: flaky?")
    return _finding(session, s, culprits, "pair" if len(culprits) > 1 else None)


def _finding(
    session: Session,
    s: Search,
    culprits: list[str],
    kind: str | None = None,
    note: str = "",
) -> IsolationFinding:
    return IsolationFinding(
        victim=s.victim,
        kind=kind or ("polluter" if s.breaks else "state_setter"),
        culprits=culprits,
        leaks=session.leaks_of(culprits),
        runs=s.runs,
        note="; ".join(filter(None, [s.note, note])),
    )
