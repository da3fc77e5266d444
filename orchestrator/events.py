"""The typed event stream every stage emits; the TUI and the plain log only render these."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Annotated, Literal, Protocol

from pydantic import BaseModel, Field, TypeAdapter

from orchestrator.models import Category, Counts, Outcome, Usage


class _Event(BaseModel):
    at: float = Field(default_factory=time.time)


class RunStarted(_Event):
    kind: Literal["run_started"] = "run_started"
    repo: str
    session: str
    base_commit: str
    model: str | None = None


class PhaseStarted(_Event):
    """A pipeline stage began: preflight, baseline, triage, isolation, plan, agents, integrate, final, handoff."""

    kind: Literal["phase_started"] = "phase_started"
    phase: str
    detail: str = ""


class SuiteStarted(_Event):
    kind: Literal["suite_started"] = "suite_started"
    label: str  # "baseline", "verify model_defaults", ...
    total: int | None = None


class TestStarted(_Event):
    __test__ = False
    kind: Literal["test_started"] = "test_started"
    label: str
    nodeid: str


class TestFinished(_Event):
    __test__ = False
    kind: Literal["test_finished"] = "test_finished"
    label: str
    nodeid: str
    outcome: Outcome
    duration_s: float = 0.0


class SuiteFinished(_Event):
    kind: Literal["suite_finished"] = "suite_finished"
    label: str
    counts: Counts


class LeftCategory(BaseModel):
    """A category no agent takes this run: why, and what would take it (a key, a container, a person)."""

    category: Category
    reason: str
    needs: str


class PlanReady(_Event):
    kind: Literal["plan_ready"] = "plan_ready"
    categories: list[Category]  # the work orders' categories, in the order they run
    left: list[LeftCategory] = Field(default_factory=list)
    failure_text: dict[str, str] = Field(default_factory=dict)  # category key -> a failure's text


AgentState = Literal[
    "queued",
    "proposing",
    "verifying",
    "accepted",
    "rejected",
    "no_patch",
    "error",
    "merged",
    "cancelled",
]


class AgentUpdate(_Event):
    kind: Literal["agent_update"] = "agent_update"
    category: str
    agent: str
    status: AgentState
    attempt: int = 0
    fixed: int = 0
    target: int = 0
    branch: str = ""
    reason: str | None = None
    diff: str | None = None
    verify_output: str | None = None
    usage: Usage | None = None


class AgentStep(_Event):
    """One step of a model agent: a tool call, what it said, why it stopped."""

    kind: Literal["agent_step"] = "agent_step"
    category: str
    agent: str
    attempt: int = 0
    text: str


class Log(_Event):
    kind: Literal["log"] = "log"
    level: Literal["info", "warning", "error"] = "info"
    message: str


class RunFinished(_Event):
    kind: Literal["run_finished"] = "run_finished"
    before: Counts
    after: Counts
    merged: list[str]  # branches merged into the integration branch
    remaining: list[Category]
    handoff: str
    integration_branch: str | None = None


Event = Annotated[
    RunStarted
    | PhaseStarted
    | SuiteStarted
    | TestStarted
    | TestFinished
    | SuiteFinished
    | PlanReady
    | AgentUpdate
    | AgentStep
    | Log
    | RunFinished,
    Field(discriminator="kind"),
]
EventAdapter: TypeAdapter[Event] = TypeAdapter(Event)

Emit = Callable[[_Event], None]


def ignore(_event: _Event) -> None:
    """The emitter for callers that do not watch progress."""


class Stop(Protocol):
    """A stop token: every pytest run watches one and is killed within a poll when it is set."""

    def is_set(self) -> bool: ...


class Controls:
    """The few commands that flow back from a viewer to the core: stop the run, cancel one agent.

    `stop` is the run's one stop token, passed down to every pytest run; `token(category)` is the
    token of one agent's runs, set by a stop of the run or a cancel of that agent.
    """

    def __init__(self) -> None:
        self.stop = threading.Event()
        self._cancelled: set[str] = set()
        self._lock = threading.Lock()

    def request_stop(self) -> None:
        self.stop.set()

    @property
    def stop_requested(self) -> bool:
        return self.stop.is_set()

    def cancel(self, category: str) -> None:
        with self._lock:
            self._cancelled.add(category)

    def is_cancelled(self, category: str) -> bool:
        with self._lock:
            return self.stop_requested or category in self._cancelled

    def token(self, category: str) -> Stop:
        return _AgentStop(self, category)


class _AgentStop:
    def __init__(self, controls: Controls, category: str) -> None:
        self._controls = controls
        self._category = category

    def is_set(self) -> bool:
        return self._controls.is_cancelled(self._category)
