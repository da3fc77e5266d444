"""What a run is asked to do (`RunOptions`, checkpointed) and what it runs with (`RunContext`, not).

The context travels to every graph node as LangGraph's runtime context: the emitter, the
controls, the open repository, the suite's `RunSpec` and the session's store of artifacts.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, Field

from orchestrator.events import Controls, Emit, Log, ignore
from orchestrator.git import GitRepo
from orchestrator.models import Repair, RunSpec, SuiteRun, TriageReport
from orchestrator.run.store import SessionStore
from orchestrator.specialists import DEFAULT_MODEL
from orchestrator.suite.config import load_config, run_spec
from orchestrator.suite.docker import Watchdog


class RunOptions(BaseModel):
    """What the user asked for; stored with the checkpoints so `--resume` needs nothing else."""

    repo: str
    session: str
    test_cmd: str | None = None
    ignores: list[str] = Field(default_factory=list)
    deselect: list[str] = Field(default_factory=list)
    timeout_s: float | None = None
    agents: list[str] | None = None
    parallel: int = 2
    max_attempts: int = 3
    verify: Literal["targeted", "full"] = "targeted"
    integrate: bool = True
    isolation: bool = True
    reruns: int = 0
    include_uncommitted: bool = False
    model: str | None = None
    budget_usd: float | None = None
    handoff_dir: str | None = None
    from_handoff: str | None = None
    base: str | None = None  # the revision agents start from (default HEAD; a handoff's branch)
    pytest_args: list[str] = Field(default_factory=list)  # after `--`: passed to every pytest run
    shuffle_seed: int | None = None  # the baseline and final runs in this seeded order
    order: list[str] | None = None  # or in this order (node ids first, the rest after)


class RepairLog(BaseModel):
    """The watchdog's repairs of one session, as stored with its artifacts."""

    repairs: list[Repair] = Field(default_factory=list)


def new_session() -> str:
    return dt.datetime.now().strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


@dataclass
class RunContext:
    """What a run needs that is not state: the emitter, the controls, the open repository."""

    options: RunOptions
    emit: Emit = ignore
    controls: Controls = field(default_factory=Controls)

    @cached_property
    def repo(self) -> GitRepo:
        return GitRepo(self.options.repo)

    @cached_property
    def spec(self) -> RunSpec:
        o = self.options
        spec = run_spec(
            self.repo.root,
            test_cmd=o.test_cmd,
            ignores=o.ignores,
            deselect=o.deselect,
            timeout_s=o.timeout_s,
            record_leaks=o.isolation,
        )
        return spec.model_copy(
            update={
                "shuffle_seed": o.shuffle_seed,
                "order": o.order,
                "extra_args": [*spec.extra_args, *o.pytest_args],
            }
        )

    @cached_property
    def store(self) -> SessionStore:
        return SessionStore(self.repo.state_dir / "sessions" / self.options.session)

    def __post_init__(self) -> None:
        viewer = self.emit

        def emit(event: Any) -> None:
            self.watchdog.observe(event)  # it names the tests a container broke under
            viewer(event)

        self.emit = emit

    @cached_property
    def watchdog(self) -> Watchdog:
        """Keeps the suite's containers running during the run ([tool.orchestrator] containers)."""
        return Watchdog(load_config(self.repo.root).containers, on_repair=self._repaired)

    def _repaired(self, repair: Repair) -> None:
        """Every repair is said at once and kept with the session (the handoff reports it)."""
        level = "error" if repair.action == "failed" else "warning"
        self.emit(Log(level=level, message=f"docker: {repair.describe()}"))
        self.store.save("repairs", RepairLog(repairs=[*self.repairs, repair]))

    @property
    def repairs(self) -> list[Repair]:
        """The watchdog's repairs this session (a resumed one's earlier runs included)."""
        log = self.store.get("repairs", RepairLog)
        return log.repairs if log else []

    @property
    def model(self) -> str | None:
        """The model agents may use, or None when no API key is configured."""
        if not os.environ.get("ANTHROPIC_API_KEY"):
            return None
        return self.options.model or os.environ.get("ORCHESTRATOR_MODEL") or DEFAULT_MODEL

    @property
    def baseline(self) -> SuiteRun:
        return self.store.load("baseline", SuiteRun)

    @property
    def report(self) -> TriageReport:
        return self.store.load("report", TriageReport)
