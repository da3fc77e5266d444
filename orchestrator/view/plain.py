"""The plain progress log: one line per event worth a line, for pipes, CI and `--no-tui`."""

from __future__ import annotations

import sys
import threading
from typing import TextIO

from orchestrator.events import (
    AgentStep,
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
from orchestrator.models import FAILING
from orchestrator.view.progress import (
    RunProgress,
    clock_time,
    fmt_breakdown,
    fmt_counts,
    fmt_list,
    fmt_phase,
    fmt_remaining,
    fmt_status,
)


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
        self._progress = RunProgress()

    def __call__(self, event: _Event) -> None:
        with self._lock:
            if not self._progress.apply(event):
                return  # no news: an agent's status repeated
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
                return [f"== {fmt_phase(event)}"]
            case SuiteStarted():
                size = f"{event.total} tests" if event.total is not None else "started"
                return [f"suite {event.label}: {size}"]
            case TestFinished():
                return self._test_lines(event)
            case SuiteFinished():
                suite = self._progress.finished_suites.get(event.label)
                if suite is not None and suite.against is not None:
                    return [
                        f"suite {event.label} done: {suite.against.describe()} "
                        f"({fmt_breakdown(event.counts)})"
                    ]
                return [f"suite {event.label} done: {fmt_breakdown(event.counts)}"]
            case PlanReady():
                lines = [f"plan: {len(event.categories)} categories"]
                for c in event.categories:
                    lines.append(f"  {c.key:<20} {c.count:>5}  {c.priority:<8}  {c.agent or '-'}")
                return lines
            case AgentUpdate():
                return [_agent_line(event)]
            case AgentStep():
                return [f"  {event.category} ({event.agent}) #{event.attempt}: {event.text}"]
            case Log():
                return [f"{event.level}: {event.message}"]
            case RunFinished():
                return _finished_lines(event)
        return []

    def _test_lines(self, event: TestFinished) -> list[str]:
        lines = []
        suite = self._progress.suites.get(event.label)
        judged = suite is not None and suite.against is not None
        # a judged suite names only its new failures: those already failing are counted at its end
        if event.outcome in FAILING and (not judged or self._progress.is_new_failure(event)):
            lines.append(f"  {event.outcome.upper()} {event.nodeid} ({event.label})")
        if suite and suite.total and suite.total >= self._progress_min:
            done, total, step = suite.done, suite.total, self._progress_step
            if done * 100 // total // step > (done - 1) * 100 // total // step:
                lines.append(
                    f"suite {suite.label}: {done}/{total} ({done * 100 // total}%), "
                    f"{suite.failed} failing"
                )
        return lines


def _agent_line(update: AgentUpdate) -> str:
    line = f"agent {update.category} ({update.agent}): {fmt_status(update.status)}"
    if update.attempt:
        line += f", attempt {update.attempt}"
    if update.target:
        line += f", fixed {update.fixed}/{update.target}"
    if update.branch:
        line += f" [{update.branch}]"
    if update.reason:
        line += f": {update.reason}"
    return line


def _finished_lines(event: RunFinished) -> list[str]:
    lines = [
        f"finished: {fmt_counts(event.before)} -> {fmt_counts(event.after)}",
        f"merged: {fmt_list(event.merged)}",
    ]
    if event.integration_branch:
        lines.append(f"integration branch: {event.integration_branch}")
    lines += [f"remaining: {fmt_remaining(event.remaining)}", f"handoff: {event.handoff}"]
    return lines
