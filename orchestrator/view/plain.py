"""The plain progress log: one line per event worth a line, for pipes, CI and `--no-tui`."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from orchestrator.events import (
    AgentUpdate,
    Log,
    PhaseStarted,
    PlanReady,
    RunFinished,
    RunStarted,
    SuiteFinished,
    SuiteStarted,
    TestFinished,
    _Event,
)
from orchestrator.models import FAILING, Counts


def fmt_counts(counts: Counts) -> str:
    """`1200/1300 passed (92.3%)`: the one way both viewers show a pass rate."""
    return f"{counts.passed}/{counts.total} passed ({counts.pass_rate:.1%})"


def fmt_breakdown(counts: Counts) -> str:
    """`1300 tests: 1200 passed, 80 failed, 10 errors, 10 skipped in 93.2s`."""
    return (
        f"{counts.total} tests: {counts.passed} passed, {counts.failed} failed, "
        f"{counts.errors} errors, {counts.skipped} skipped in {counts.duration_s:.1f}s"
    )


def clock_time(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at))


class PlainLog:
    """Renders the event stream as timestamped plain lines on a text stream (default stderr).

    Passing tests print nothing; failures print one line each, and suites of at least
    `progress_min` tests print a progress line every `progress_step` percent.
    Callable from any thread.
    """

    def __init__(
        self, stream: TextIO | None = None, *, progress_step: int = 10, progress_min: int = 100
    ) -> None:
        self._stream = stream
        self._progress_step = progress_step
        self._progress_min = progress_min
        self._lock = threading.Lock()
        self._totals: dict[str, int | None] = {}  # suite label -> expected tests
        self._done: dict[str, int] = {}  # suite label -> finished tests
        self._failing: dict[str, int] = {}  # suite label -> failing tests so far
        self._agents: dict[str, tuple[str, int]] = {}  # category -> (status, attempt)

    def __call__(self, event: _Event) -> None:
        with self._lock:
            lines = self._lines(event)
            if not lines:
                return
            stream = self._stream or sys.stderr
            stamp = clock_time(event.at)
            for line in lines:
                stream.write(f"{stamp} {line}\n")
            stream.flush()

    def _lines(self, event: _Event) -> list[str]:
        match event:
            case RunStarted():
                model = f", model {event.model}" if event.model else ""
                return [f"run {event.session}: {event.repo} at {event.base_commit[:10]}{model}"]
            case PhaseStarted():
                detail = f": {event.detail}" if event.detail else ""
                return [f"== {event.phase}{detail}"]
            case SuiteStarted():
                self._totals[event.label] = event.total
                self._done[event.label] = 0
                self._failing[event.label] = 0
                size = f"{event.total} tests" if event.total is not None else "started"
                return [f"suite {event.label}: {size}"]
            case TestFinished():
                return self._test_lines(event)
            case SuiteFinished():
                return [f"suite {event.label} done: {fmt_breakdown(event.counts)}"]
            case PlanReady():
                lines = [f"plan: {len(event.categories)} categories"]
                for c in event.categories:
                    lines.append(f"  {c.id:<20} {c.count:>5}  {c.priority:<8}  {c.agent or '-'}")
                return lines
            case AgentUpdate():
                return self._agent_lines(event)
            case Log():
                return [f"{event.level}: {event.message}"]
            case RunFinished():
                return _finished_lines(event)
        return []

    def _test_lines(self, event: TestFinished) -> list[str]:
        label = event.label
        done = self._done.get(label, 0) + 1
        self._done[label] = done
        lines = []
        if event.outcome in FAILING:
            self._failing[label] = self._failing.get(label, 0) + 1
            lines.append(f"  {event.outcome.upper()} {event.nodeid} ({label})")
        total = self._totals.get(label)
        if total and total >= self._progress_min:
            step = self._progress_step
            if done * 100 // total // step > (done - 1) * 100 // total // step:
                failing = self._failing.get(label, 0)
                lines.append(
                    f"suite {label}: {done}/{total} ({done * 100 // total}%), {failing} failing"
                )
        return lines

    def _agent_lines(self, event: AgentUpdate) -> list[str]:
        state = (event.status, event.attempt)
        if self._agents.get(event.category) == state:
            return []
        self._agents[event.category] = state
        line = f"agent {event.category} ({event.agent}): {event.status.replace('_', ' ')}"
        if event.attempt:
            line += f", attempt {event.attempt}"
        if event.target:
            line += f", fixed {event.fixed}/{event.target}"
        if event.branch:
            line += f" [{event.branch}]"
        if event.reason:
            line += f": {event.reason}"
        return [line]


def _finished_lines(event: RunFinished) -> list[str]:
    remaining = ", ".join(f"{c.id} ({c.count})" for c in event.remaining) or "nothing"
    lines = [
        f"finished: {fmt_counts(event.before)} -> {fmt_counts(event.after)}",
        f"merged: {', '.join(event.merged) or 'nothing'}",
    ]
    if event.integration_branch:
        lines.append(f"integration branch: {event.integration_branch}")
    lines += [f"remaining: {remaining}", f"handoff: {event.handoff}"]
    return lines
