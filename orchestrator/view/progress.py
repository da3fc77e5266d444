"""What a viewer knows of a run: the event stream folded in one place, plus the words both viewers use.

Pure on purpose (no Textual, no I/O, no threads): the plain log and the TUI each apply every event
to their own `RunProgress` and render from it, so the two can never disagree on a count.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from orchestrator.events import (
    AgentStep,
    AgentUpdate,
    LeftCategory,
    PhaseStarted,
    PlanReady,
    RunFinished,
    RunStarted,
    SuiteFinished,
    SuiteStarted,
    TestFinished,
    TestStarted,
    _Event,
)
from orchestrator.models import FAILING, Category, Counts, Usage

BEFORE_LABEL = "baseline"  # the suite run whose counts are "before"
NOW_LABEL = "final"  # the whole-suite run on the integration branch


@dataclass
class SuiteProgress:
    """One running suite: how far it is and the test it is running now."""

    label: str
    total: int | None
    done: int = 0
    passed: int = 0
    failed: int = 0
    current: str = ""
    against: Against | None = None  # for a suite judged against the baseline


@dataclass
class Against:
    """A verification, integration or final run measured against the baseline's failures."""

    fixed: int = 0  # failed at baseline, passes now
    already: int = 0  # failed at baseline, fails now
    new: int = 0  # did not fail at baseline, fails now

    def describe(self) -> str:
        """`3 fixed, 11 already failing, 0 new`."""
        return f"{self.fixed} fixed, {self.already} already failing, {self.new} new"


def judged(label: str) -> bool:
    """The suites whose failures are read against the baseline's."""
    return label.startswith(("verify ", "integrate ")) or label == NOW_LABEL


@dataclass
class AgentProgress:
    """One agent's latest update, with the latest diff, output and usage it ever reported.

    Kept apart because later updates often carry none of them and must not erase them.
    """

    update: AgentUpdate
    diff: str | None = None
    verify_output: str | None = None
    usage: Usage | None = None
    steps: list[str] = field(default_factory=list)  # a model agent's latest steps


STEPS_KEPT = 8


@dataclass
class RunProgress:
    """The state both viewers show, folded from the event stream by `apply`."""

    run: RunStarted | None = None
    phase: PhaseStarted | None = None
    suites: dict[str, SuiteProgress] = field(default_factory=dict)  # running, in start order
    before: Counts | None = None
    now: Counts | None = None
    categories: list[Category] = field(default_factory=list)  # the plan
    left: list[LeftCategory] = field(default_factory=list)  # what no agent takes, and why
    failure_text: dict[str, str] = field(default_factory=dict)
    agents: dict[str, AgentProgress] = field(default_factory=dict)  # by category
    finished: RunFinished | None = None
    baseline_failing: set[str] | None = None  # known once the baseline has run in view
    finished_suites: dict[str, SuiteProgress] = field(default_factory=dict)  # the latest per label
    _baseline_seen: set[str] = field(default_factory=set)

    def apply(self, event: _Event) -> bool:
        """Fold in one event; False when it is no news, so a viewer does not repeat a line.

        Only an AgentUpdate with its agent's status and attempt unchanged is no news; what else
        it carries (fixed counts, diff, usage) is still folded in.
        """
        match event:
            case RunStarted():
                self.run = event
            case PhaseStarted():
                self.phase = event
            case SuiteStarted():
                against = (
                    Against() if judged(event.label) and self.baseline_failing is not None else None
                )
                self.suites[event.label] = SuiteProgress(event.label, event.total, against=against)
            case TestStarted():
                if suite := self.suites.get(event.label):
                    suite.current = event.nodeid
            case TestFinished():
                if suite := self.suites.get(event.label):
                    suite.done += 1
                    suite.passed += event.outcome in ("passed", "xpassed")
                    suite.failed += event.outcome in FAILING
                    self._judge(suite, event)
                if event.label == BEFORE_LABEL and event.outcome in FAILING:
                    self._baseline_seen.add(event.nodeid)
            case SuiteFinished():
                if event.label in self.suites:
                    self.finished_suites[event.label] = self.suites.pop(event.label)
                if event.label == BEFORE_LABEL and self.baseline_failing is None:
                    self.baseline_failing = set(self._baseline_seen)
                if event.label == BEFORE_LABEL and self.before is None:
                    self.before = event.counts
                elif event.label == NOW_LABEL:
                    self.now = event.counts
            case PlanReady():
                self.categories = event.categories
                self.left = event.left
                self.failure_text = event.failure_text
            case AgentUpdate():
                return self._apply_agent(event)
            case AgentStep():
                agent = self.agents.get(event.category)
                if agent is not None:
                    agent.steps = [*agent.steps, f"#{event.attempt} {event.text}"][-STEPS_KEPT:]
            case RunFinished():
                self.finished = event
                self.before, self.now = event.before, event.after
                self.suites.clear()
        return True

    def _judge(self, suite: SuiteProgress, event: TestFinished) -> None:
        if suite.against is None or self.baseline_failing is None:
            return
        was_failing = event.nodeid in self.baseline_failing
        if event.outcome in FAILING:
            if was_failing:
                suite.against.already += 1
            else:
                suite.against.new += 1
        elif was_failing and event.outcome in ("passed", "xpassed"):
            suite.against.fixed += 1

    def is_new_failure(self, event: TestFinished) -> bool:
        """A failure in a judged suite that the baseline did not have (unknown: True)."""
        return self.baseline_failing is None or event.nodeid not in self.baseline_failing

    def _apply_agent(self, event: AgentUpdate) -> bool:
        agent = self.agents.get(event.category)
        if agent is None:
            self.agents[event.category] = agent = AgentProgress(event)
            news = True
        else:
            news = (agent.update.status, agent.update.attempt) != (event.status, event.attempt)
            agent.update = event
        if event.diff is not None:
            agent.diff = event.diff
        if event.verify_output is not None:
            agent.verify_output = event.verify_output
        if event.usage is not None:
            agent.usage = event.usage
        return news

    @property
    def usage(self) -> Usage | None:
        """The agents' usage so far, summed; None before any agent reported some."""
        reported = [agent.usage for agent in self.agents.values() if agent.usage is not None]
        return sum(reported, Usage()) if reported else None


def category_of(progress: RunProgress, key: str) -> Category | None:
    """The plan's category (an order's or one left) by its key."""
    for c in [*progress.categories, *(left.category for left in progress.left)]:
        if c.key == key:
            return c
    return None


def summary_lines(done: RunFinished) -> list[str]:
    """How a finished run is told at its end: on the TUI and on the terminal after it closes."""
    merged = done.merged
    if done.integration_branch and "/" in done.integration_branch:  # the session's own prefix
        prefix = done.integration_branch.rsplit("/", 1)[0] + "/"
        merged = [b.removeprefix(prefix) for b in merged]
    lines = [
        f"Pass rate: {fmt_counts(done.before)} → {fmt_counts(done.after)}",
        f"Merged: {fmt_list(merged)}",
    ]
    if done.integration_branch:
        lines.append(f"Integration branch: {done.integration_branch}")
    return [*lines, f"Left: {fmt_remaining(done.remaining)}", f"Handoff: {done.handoff}"]


def fmt_counts(counts: Counts) -> str:
    """`1200/1300 passed (92.3%)`: the one way both viewers show a pass rate."""
    return f"{counts.passed}/{counts.total} passed ({counts.pass_rate:.1%})"


def fmt_phase(phase: PhaseStarted) -> str:
    """`baseline: whole suite`, or just `baseline` when the phase has no detail."""
    return f"{phase.phase}: {phase.detail}" if phase.detail else phase.phase


def fmt_status(status: str) -> str:
    """`no patch`: an agent state as words."""
    return status.replace("_", " ")


def fmt_list(items: Iterable[str]) -> str:
    """`a, b`, or `nothing`: how both viewers list merged branches and categories left."""
    return ", ".join(items) or "nothing"


def fmt_remaining(categories: Iterable[Category]) -> str:
    """`uuid_type (2), test_isolation (1)`: the categories left, each with its failing tests."""
    return fmt_list(f"{c.id} ({c.count})" for c in categories)


def clock_time(at: float) -> str:
    """`14:03:27`: the local time stamped on every log line."""
    return time.strftime("%H:%M:%S", time.localtime(at))


def fmt_breakdown(counts: Counts) -> str:
    """`1300 tests: 1200 passed, 80 failed, 10 errors, 10 skipped in 93.2s`."""
    return (
        f"{counts.total} tests: {counts.passed} passed, {counts.failed} failed, "
        f"{counts.errors} errors, {counts.skipped} skipped in {counts.duration_s:.1f}s"
    )
