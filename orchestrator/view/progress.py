"""What a viewer knows of a run: the event stream folded in one place, plus the words both viewers use.

Pure on purpose (no Textual, no I/O, no threads): the plain log and the TUI each apply every event
to their own `RunProgress` and render from it, so the two can never disagree on a count.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from orchestrator.events import (
    AgentUpdate,
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


@dataclass
class AgentProgress:
    """One agent's latest update, with the latest diff, output and usage it ever reported.

    Kept apart because later updates often carry none of them and must not erase them.
    """

    update: AgentUpdate
    diff: str | None = None
    verify_output: str | None = None
    usage: Usage | None = None


@dataclass
class RunProgress:
    """The state both viewers show, folded from the event stream by `apply`."""

    run: RunStarted | None = None
    phase: PhaseStarted | None = None
    suites: dict[str, SuiteProgress] = field(default_factory=dict)  # running, in start order
    before: Counts | None = None
    now: Counts | None = None
    categories: list[Category] = field(default_factory=list)  # the plan
    agents: dict[str, AgentProgress] = field(default_factory=dict)  # by category
    finished: RunFinished | None = None

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
                self.suites[event.label] = SuiteProgress(event.label, event.total)
            case TestStarted():
                if suite := self.suites.get(event.label):
                    suite.current = event.nodeid
            case TestFinished():
                if suite := self.suites.get(event.label):
                    suite.done += 1
                    suite.passed += event.outcome in ("passed", "xpassed")
                    suite.failed += event.outcome in FAILING
            case SuiteFinished():
                self.suites.pop(event.label, None)
                if event.label == BEFORE_LABEL and self.before is None:
                    self.before = event.counts
                elif event.label == NOW_LABEL:
                    self.now = event.counts
            case PlanReady():
                self.categories = event.categories
            case AgentUpdate():
                return self._apply_agent(event)
            case RunFinished():
                self.finished = event
                self.before, self.now = event.before, event.after
                self.suites.clear()
        return True

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
