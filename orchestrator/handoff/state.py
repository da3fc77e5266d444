"""What a handoff holds: our exact state (`HandoffState`), and what any handoff was understood to
say (`HandoffView`, the contract's `handoff show` object)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from orchestrator.models import (
    AgentResult,
    Category,
    Counts,
    Environment,
    IsolationFinding,
    Model,
    Priority,
    Repair,
    SlowTest,
    Usage,
)

STATE_MARKER = "<!-- orchestrate:state -->"  # our handoffs end with this and a JSON block


class PlannedAgent(Model):
    """One step of the next session's plan."""

    agent: str
    category: str
    target: int
    priority: Priority
    tests: list[str] = Field(default_factory=list)


class HandoffState(Model):
    """Everything one run hands over to the next."""

    session: str
    date: dt.date
    repo: str
    base_commit: str = ""
    integration_branch: str | None = None
    agent_branches: list[str] = Field(default_factory=list)
    test_command: str
    ignores: list[str] = Field(default_factory=list)
    deselect: list[str] = Field(default_factory=list)  # slow tests left out of the suite
    before: Counts
    after: Counts
    previous: Counts | None = None  # the `after` of the handoff this session resumed from
    agents: list[AgentResult] = Field(default_factory=list)
    remaining: list[Category] = Field(default_factory=list)
    isolation: list[IsolationFinding] = Field(default_factory=list)
    flaky: list[str] = Field(default_factory=list)
    slow_tests: list[SlowTest] = Field(default_factory=list)
    repairs: list[Repair] = Field(default_factory=list)  # what the docker watchdog restored
    usage: Usage | None = None
    next_plan: list[PlannedAgent] = Field(default_factory=list)  # in priority order
    interrupted: bool = False
    interrupted_reason: str | None = None
    resume: str | None = None  # the command that continues an interrupted session
    after_measured: bool = True  # False when the run stopped before its final suite run
    notes: str = ""
    sandbox: str = ""  # how the tests ran: "bubblewrap, network loopback", or why unconfined
    # the target's installed packages at this run and what had changed: the next run compares
    environment: Environment | None = None


class PreviousCounts(Model):
    total: int | None = None
    passed: int | None = None
    failed: int | None = None
    errors: int | None = None
    skipped: int | None = None
    duration_s: float | None = None


class ViewCategory(Model):
    title: str
    category: str | None = None
    count: int | None = None
    tests: list[str] = Field(default_factory=list)
    affected_files: list[str] = Field(default_factory=list)


class HandoffView(Model):
    """The contract's `handoff show` object, plus extensions."""

    source: Literal["orchestrate", "free-form"]
    test_command: str | None = None
    ignores: list[str] = Field(default_factory=list)
    deselect: list[str] = Field(default_factory=list)
    previous: PreviousCounts = Field(default_factory=PreviousCounts)
    categories: list[ViewCategory] = Field(default_factory=list)
    commands: list[str] = Field(default_factory=list)
    unread: list[str] = Field(default_factory=list)
    # extensions
    state: HandoffState | None = None
    working_directory: str | None = None
    branch: str | None = None
    command_dir: str | None = None  # where the suite command runs (a `cd DIR` before it)
    slow_tests: list[str] = Field(default_factory=list)
    pass_rate: float | None = None  # 0..1
    warnings: list[str] = Field(default_factory=list)

    def contract_json(self) -> dict:
        """Exactly the contract's object (extensions left out)."""
        return self.model_dump(
            mode="json",
            include={
                "source",
                "test_command",
                "ignores",
                "deselect",
                "previous",
                "categories",
                "commands",
                "unread",
            },
        )
