"""What a run is asked to do (`RunOptions`, checkpointed) and what it runs with (`RunContext`, not).

The context travels to every graph node as LangGraph's runtime context: the emitter, the
controls, the open repository, the suite's `RunSpec` and the session's store of artifacts.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, Field

from orchestrator.events import Controls, Emit, Log, ignore
from orchestrator.git import GitRepo
from orchestrator.models import Repair, RunSpec, SuiteRun, TriageReport, Usage
from orchestrator.run.store import SessionStore
from orchestrator.secrets import scrub
from orchestrator.specialists import DEFAULT_MODEL
from orchestrator.suite.config import load_config, run_spec
from orchestrator.suite.docker import Watchdog
from orchestrator.suite.sandbox import notice as sandbox_notice


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
    budget_usd: float | None = None  # per model agent, over all of its attempts
    session_budget_usd: float | None = None  # every model call of the session
    max_turns: int | None = None  # per model attempt
    escalate_model: str | None = None  # the last attempt's model
    models: dict[str, str] = Field(default_factory=dict)  # category -> model (--model-for)
    handoff_dir: str | None = None
    from_handoff: str | None = None
    base: str | None = None  # the revision agents start from (default HEAD; a handoff's branch)
    pytest_args: list[str] = Field(default_factory=list)  # after `--`: passed to every pytest run
    shuffle_seed: int | None = None  # the baseline and final runs in this seeded order
    order: list[str] | None = None  # or in this order (node ids first, the rest after)
    sandbox: Literal["auto", "required", "off"] = "auto"  # every test run confined (suite/sandbox)
    network: Literal["loopback", "none", "host"] | None = None


class RepairLog(BaseModel):
    """The watchdog's repairs of one session, as stored with its artifacts."""

    repairs: list[Repair] = Field(default_factory=list)


class Spend:
    """The session's model spend, every call of every lane as it happens, against its budget."""

    def __init__(self, budget_usd: float | None = None) -> None:
        self.budget_usd = budget_usd
        self.total = Usage()
        self._lock = threading.Lock()

    def add(self, usage: Usage) -> None:
        with self._lock:
            self.total = self.total + usage

    def left(self) -> float | None:
        """Dollars left in the session budget; None when there is none."""
        with self._lock:
            return None if self.budget_usd is None else self.budget_usd - self.total.cost_usd


def new_session() -> str:
    return dt.datetime.now().strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


@dataclass
class RunContext:
    """What a run needs that is not state: the emitter, the controls, the open repository."""

    options: RunOptions
    emit: Emit = ignore
    controls: Controls = field(default_factory=Controls)
    spend: Spend = field(init=False)  # every model call of this process's run

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
            sandbox=o.sandbox,
            network=o.network,
        )
        notice = sandbox_notice(o.sandbox)
        if notice:
            self.emit(Log(level="warning", message=notice))
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
        self.spend = Spend(self.options.session_budget_usd)
        viewer = self.emit

        def emit(event: Any) -> None:
            self.watchdog.observe(event)  # it names the tests a container broke under
            if isinstance(event, Log):  # the log is written to terminals and files: no secrets
                event = event.model_copy(update={"message": scrub(event.message)})
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
