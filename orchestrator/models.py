"""The shared vocabulary: every value that crosses a stage boundary is one of these models.

Field names of the models that appear in `../shared/spec/contract.md` keep the contract's names.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, Field

from orchestrator.contract import AGENT_FIELDS, CATEGORY_FIELDS, FAILURE_FIELDS
from orchestrator.environment import Environment as Environment  # re-exported: the vocabulary
from orchestrator.environment import PackageChange as PackageChange

Outcome = Literal["passed", "failed", "error", "skipped", "xfailed", "xpassed", "timeout"]
Priority = Literal["critical", "high", "medium", "low"]
Isolation = Literal["passes_alone", "fails_alone"]
AgentStatus = Literal["accepted", "rejected", "no_patch", "error"]

PRIORITIES: tuple[Priority, ...] = ("critical", "high", "medium", "low")  # most urgent first
LeakKind = Literal["env", "attr", "cwd", "files", "modules"]

FAILING: frozenset[str] = frozenset({"failed", "error", "timeout"})


class Model(BaseModel):
    model_config = {"extra": "forbid"}


# --- running the suite ---------------------------------------------------------------------


class Frame(Model):
    """One traceback entry; `path` is repo-relative when inside the repo, else absolute."""

    path: str
    line: int
    func: str = ""


class Leak(Model):
    """State a test changed and did not restore, as the stream plugin recorded it."""

    kind: LeakKind
    key: str = ""  # env: the variable; attr: "package.module.attribute"
    old: str | None = None  # env: the value before (None: unset); attr: its repr (None: added)
    new: str | None = None  # env: the value after (None: removed); cwd: the new directory
    names: list[str] = Field(
        default_factory=list
    )  # files: left in the repo root; modules: imported

    def describe(self) -> str:
        """The one English rendering of a leak (logs, handoffs, prompts)."""
        if self.kind == "env":
            if self.old is None:
                return f"{self.key}={self.new!r} left in os.environ"
            if self.new is None:
                return f"{self.key} removed from os.environ (was {self.old!r})"
            return f"{self.key} changed in os.environ from {self.old!r} to {self.new!r}"
        if self.kind == "attr":
            if self.old is None:
                return f"{self.key} added (= {self.new})"
            return f"{self.key} rebound (was {self.old}, now {self.new})"
        if self.kind == "cwd":
            return f"cwd changed from {self.old} to {self.new} and not restored"
        if self.kind == "files":
            return "files left in the repo root: " + ", ".join(self.names[:5])
        return "modules newly imported: " + ", ".join(self.names[:5])


NO_LEAK = "no leaked process state recorded (a DB row or external state?)"


def describe_leaks(culprits: list[str], leaks: dict[str, list[Leak]]) -> str | None:
    """What the culprits left behind, in words: up to three leaks each, imports only when alone."""
    if not culprits:
        return None
    parts = []
    for culprit in culprits:
        found = leaks.get(culprit) or []
        strong = [leak for leak in found if leak.kind != "modules"]
        parts.append("; ".join(leak.describe() for leak in (strong or found)[:3]) or NO_LEAK)
    return "; ".join(parts)


class Repair(Model):
    """What the docker watchdog found one container in, what it did, and under which tests."""

    container: str
    was: Literal["paused", "exited", "missing", "running", "unknown"]
    action: Literal["unpaused", "started", "none", "failed"]
    detail: str = ""
    at: float = 0.0  # when it was found broken (time.time())
    during: list[str] = Field(default_factory=list)  # the suite runs underway (their labels)
    # The tests that started since it was last seen running: one of them broke it and did not
    # restore it (the first is the likeliest when tests run one at a time).
    suspects: list[str] = Field(default_factory=list)

    @property
    def acted(self) -> bool:
        return self.action != "none"

    def describe(self) -> str:
        """The one English rendering of a repair (logs, handoffs)."""
        text = f"{self.container} was {self.was}: {self.action}"
        if self.detail:
            text += f" ({self.detail})"
        if self.during:
            text += f" during {', '.join(self.during)}"
        if self.suspects:
            more = len(self.suspects) - 3
            named = ", ".join(self.suspects[:3]) + (f" and {more} more" if more > 0 else "")
            text += f"; left so by one of: {named}"
        return text


class TestResult(Model):
    """The final outcome of one test (all of its phases folded into one)."""

    __test__ = False  # not a pytest test class

    nodeid: str
    outcome: Outcome
    duration_s: float = 0.0
    when: str | None = None  # the phase that decided a failure: setup, call, teardown, collect
    exc_type: str | None = None  # qualified, e.g. "sqlalchemy.exc.IntegrityError"
    message: str | None = None  # the exception's message, trimmed
    frames: list[Frame] = Field(default_factory=list)  # outermost first
    longrepr: str | None = None  # pytest's report text, trimmed (for people and models)
    leaks: list[Leak] = Field(default_factory=list)  # state this test changed and did not restore

    @property
    def failing(self) -> bool:
        return self.outcome in FAILING


class Counts(Model):
    """The contract's `baseline`/`before`/`after` object."""

    total: int = 0
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    duration_s: float = 0.0

    @property
    def pass_rate(self) -> float:
        return self.passed / self.total if self.total else 0.0


class SuiteRun(Model):
    """One whole-suite (or subset) run, results in execution order."""

    command: list[str]
    cwd: str
    results: list[TestResult] = Field(default_factory=list)
    collected: list[str] = Field(default_factory=list)  # in the order pytest meant to run them
    duration_s: float = 0.0
    restarts: int = 0  # times the suite was resumed after a hang or a crash
    shuffle_seed: int | None = None
    environment: Environment | None = None  # whole-suite runs: what the interpreter had installed

    def counts(self) -> Counts:
        c = Counts(total=len(self.results), duration_s=round(self.duration_s, 3))
        for r in self.results:
            if r.outcome in ("passed", "xpassed"):
                c.passed += 1
            elif r.outcome in ("failed", "timeout"):
                c.failed += 1
            elif r.outcome == "error":
                c.errors += 1
            else:
                c.skipped += 1
        return c

    def by_id(self) -> dict[str, TestResult]:
        return {r.nodeid: r for r in self.results}

    def failing(self) -> list[TestResult]:
        return [r for r in self.results if r.failing]


class RunSpec(Model):
    """How to run the target's suite: everything the runner needs, nothing it must guess."""

    repo: str  # the directory pytest runs in
    command: list[str]  # e.g. ["/repo/.venv/bin/python", "-m", "pytest"] or ["uv", "run", "pytest"]
    ignores: list[str] = Field(default_factory=list)
    deselect: list[str] = Field(default_factory=list)
    timeout_s: float = 60.0  # per test
    select: list[str] | None = None  # run exactly these node ids (or files' tests), in this order
    # With `select`: collect beyond it (the run's `collected`): the whole suite, or only
    # `collect_paths` (files) when given.
    collect_all: bool = False
    collect_paths: list[str] | None = None
    shuffle_seed: int | None = None
    order: list[str] | None = None  # run these first, in this order (a replayed order)
    extra_args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)  # added to the environment
    pythonpath: list[str] = Field(default_factory=list)  # first on sys.path: the worktree shadows
    record_leaks: bool = False  # ask the plugin for per-test leaked state (isolation evidence)
    collect_only: bool = False
    # The sandbox every run goes through (suite/sandbox.py): auto (when available), required, off.
    sandbox: Literal["auto", "required", "off"] = "auto"
    network: Literal["loopback", "none", "host"] = "loopback"
    pass_env: list[str] = Field(default_factory=list)  # secret-looking variables the suite needs
    writable: list[str] = Field(default_factory=list)  # outside the worktree, inside the sandbox

    def command_line(self) -> str:
        return command_line(self.command, self.ignores, self.deselect)


def command_line(
    command: Sequence[str], ignores: Sequence[str] = (), deselect: Sequence[str] = ()
) -> str:
    """The suite command as a person would type it; the one rendering, quoted, so paths with
    spaces survive a copy and paste."""
    options = [*(f"--ignore={p}" for p in ignores), *(f"--deselect={n}" for n in deselect)]
    return shlex.join([*command, *options])


# --- triage ----------------------------------------------------------------------------------


class Failure(Model):
    """A failing test as the contract reports it, plus what later stages need."""

    nodeid: str
    outcome: Literal["failed", "error"]
    category: str
    signature: str
    message: str
    file: str | None = None
    line: int | None = None
    isolation: Isolation | None = None
    polluter: str | None = None
    duration_s: float = 0.0
    # extensions
    message_category: str | None = None  # what the message alone says, when isolation overrode it
    exc_type: str | None = None
    leak: str | None = None  # what the polluter left behind, in words (the finding's `leak`)
    longrepr: str | None = None


class Category(Model):
    id: str
    title: str
    count: int
    tests: list[str]
    affected_files: list[str]
    root_cause: str
    fix_strategy: str
    agent: str | None
    priority: Priority
    # extensions
    pattern: str = ""  # a real message from one of the failures
    signatures: list[str] = Field(default_factory=list)
    # One plan item of the category: its id, or `id-<cause>` when the category's failures have
    # different causes (two packages, two contract changes, two unknown signatures).
    item: str = ""
    cause: str = ""  # what its spec names the cause (the package, the contract), when it does

    @property
    def key(self) -> str:
        return self.item or self.id


class SlowTest(Model):
    nodeid: str
    duration_s: float


class IsolationFinding(Model):
    """What re-running told us about one failing (or order-dependent) test."""

    victim: str
    kind: Literal["polluter", "state_setter", "pair", "unresolved", "flaky"]
    culprits: list[str] = Field(
        default_factory=list
    )  # one test, or those that only together break it
    leaks: dict[str, list[Leak]] = Field(default_factory=dict)  # culprit -> what it left behind
    runs: int = 0
    note: str = ""

    @property
    def leak(self) -> str | None:
        """What the culprits left behind, in words; None when no culprit was found."""
        return describe_leaks(self.culprits, self.leaks)


class IsolationResult(Model):
    """Everything re-running taught us: who passes alone, polluters, flaky tests, the cost."""

    alone: dict[str, Isolation] = Field(default_factory=dict)  # failing nodeid -> verdict
    findings: list[IsolationFinding] = Field(default_factory=list)
    flaky: list[str] = Field(default_factory=list)
    runs: int = 0  # pytest runs spent
    duration_s: float = 0.0


class TriageReport(Model):
    repo: str
    test_command: str
    baseline: Counts
    failures: list[Failure]
    categories: list[Category]
    slow_tests: list[SlowTest]
    # extensions
    flaky: list[str] = Field(default_factory=list)
    isolation: list[IsolationFinding] = Field(default_factory=list)
    shuffle_seed: int | None = None
    environment: Environment | None = None

    def contract_json(self) -> dict:
        """The contract's object, plus `environment` (our extension; null when not seen)."""
        return {
            "repo": self.repo,
            "test_command": self.test_command,
            "baseline": self.baseline.model_dump(),
            "failures": [f.model_dump(include=FAILURE_FIELDS) for f in self.failures],
            # `item` (extension): the plan item, the id unless a category has several causes
            "categories": [
                {**c.model_dump(include=CATEGORY_FIELDS), "item": c.key} for c in self.categories
            ],
            "slow_tests": [s.model_dump() for s in self.slow_tests],
            "environment": (
                self.environment.model_dump(exclude={"modules"}) if self.environment else None
            ),
        }


# --- planning, agents, verification ------------------------------------------------------------


class WorkOrder(Model):
    """One category's work, handed to one specialist."""

    category: str
    title: str
    tests: list[str]
    affected_files: list[str]
    root_cause: str
    fix_strategy: str
    priority: Priority
    agent: str  # specialist name
    target: int  # how many tests should pass after the fix
    failures: list[Failure] = Field(default_factory=list)
    findings: list[IsolationFinding] = Field(default_factory=list)
    notes: str = ""  # from the last handoff
    item: str = ""  # the category's plan item (`Category.item`) when it has several
    cause: str = ""  # the item's cause (`Category.cause`): the package, the contract
    environment: Environment | None = None  # the packages involved, for specialists and the model

    @property
    def key(self) -> str:
        """The order's name in branches, lanes and events: its item, else its category."""
        return self.item or self.category


class Proposal(Model):
    """What a specialist returns: it edited files in the worktree (or declined)."""

    explanation: str
    declined: bool = False
    usage: Usage | None = None
    # The files it changed through its tools, when it knows them: only these are committed
    # (None: every change in the worktree but test by-products).
    files: list[str] | None = None


class Usage(Model):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    model: str | None = None
    requests: int = 0  # Messages API calls, each counted (errored lanes and the guess included)

    def __add__(self, other: Usage) -> Usage:
        tokens = (
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "requests",
        )
        return Usage(
            **{name: getattr(self, name) + getattr(other, name) for name in tokens},
            cost_usd=round(self.cost_usd + other.cost_usd, 6),
            model=self.model or other.model,
        )


Proposal.model_rebuild()


class Verdict(Model):
    """The verifier's judgement of one patch."""

    accepted: bool
    fixed: list[str] = Field(default_factory=list)  # target tests that now pass
    still_failing: list[str] = Field(default_factory=list)
    regressions: list[str] = Field(default_factory=list)  # passed at baseline, fail now
    violations: list[str] = Field(default_factory=list)  # anti-cheat rule: place
    reason: str | None = None
    output: str = ""  # trimmed pytest output and details, fed back to the agent


class AgentResult(Model):
    """The contract's `agents[]` entry, plus accounting."""

    agent: str
    category: str
    branch: str
    status: AgentStatus
    fixed: list[str] = Field(default_factory=list)
    regressions: list[str] = Field(default_factory=list)
    files_changed: list[str] = Field(default_factory=list)
    reason: str | None = None
    # extensions
    item: str = ""  # the work order's key when the category was split into several items
    target: int = 0
    attempts: int = 0
    explanation: str = ""
    commit: str | None = None
    merged: bool = False
    usage: Usage | None = None
    diff: str = ""

    def contract_json(self) -> dict:
        """The contract's fields, plus `usage` (tokens and cost; null when no model was used)."""
        return self.model_dump(include=AGENT_FIELDS)


def fixed_by_model(agents: list[AgentResult]) -> int:
    """Tests the model's own merged patches fixed (a codemod's fixes cost no model money)."""
    return sum(len(a.fixed) for a in agents if a.merged and a.usage is not None)


class RunReport(Model):
    session: str
    integration_branch: str | None
    before: Counts
    after: Counts
    agents: list[AgentResult]
    handoff: str
    # extensions
    repo: str = ""
    base_commit: str = ""
    usage: Usage | None = None
    remaining: list[Category] = Field(default_factory=list)
    left_for_model: list[str] = Field(default_factory=list)  # no offline agent could take them

    def contract_json(self) -> dict:
        return {
            "session": self.session,
            "integration_branch": self.integration_branch,
            "before": self.before.model_dump(),
            "after": self.after.model_dump(),
            "agents": [a.contract_json() for a in self.agents],
            "handoff": self.handoff,
            "usage": self._usage_json(),  # extension: the session's model spend
        }

    def _usage_json(self) -> dict | None:
        if self.usage is None:
            return None
        fixed = fixed_by_model(self.agents)
        per_test = round(self.usage.cost_usd / fixed, 6) if fixed else None
        return {**self.usage.model_dump(), "cost_per_fixed_test_usd": per_test}
