"""The failure-category rules, in one place.

`RULES` is an ordered list: the first rule that matches a failing test decides its category, so
narrow rules come before broad ones (a NOT NULL IntegrityError is `model_defaults` before any
IntegrityError is `api_conflict`; a 422 whose body mentions UUIDs is `validation_error` before
anything is `uuid_type`). To add a category pattern, add a regex to the right rule; to add a
category, add its id to `models.CATEGORY_IDS`, a `CATEGORY_INFO` entry and a `Rule`.

`test_isolation` has no rule: it is decided by re-running the test (see `triage.py`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

from orchestrator.models import TestResult

FLAGS = re.IGNORECASE | re.MULTILINE
MAX_TEXT = 4000  # enough for any message's meaningful part; keeps regex work bounded

IMPORT_ERRORS = frozenset(
    {"ImportError", "ModuleNotFoundError", "SyntaxError", "IndentationError", "TabError"}
)


class CategoryInfo(NamedTuple):
    """The contract's table row: what a category usually means and how it is usually fixed."""

    title: str
    root_cause: str
    fix_strategy: str
    priority: str


CATEGORY_INFO: dict[str, CategoryInfo] = {
    "model_defaults": CategoryInfo(
        "Model default values",
        "ORM column defaults apply only at flush; no id generator",
        "set defaults in __init__/mixin, generate ids explicitly",
        "high",
    ),
    "uuid_type": CategoryInfo(
        "UUID type mismatches",
        'tests pass "test-id" strings where uuid.UUID is expected',
        "real UUIDs in fixtures and test data",
        "high",
    ),
    "api_conflict": CategoryInfo(
        "API conflicts and unique constraints",
        "duplicate names in test data hitting unique constraints in a shared DB",
        "unique test data per test, isolated DB state",
        "high",
    ),
    "api_routing": CategoryInfo(
        "API routing and dependencies",
        "router not mounted or wrong prefix, dependency overrides missing",
        "mount routers, fix overrides in test app",
        "high",
    ),
    "validation_error": CategoryInfo(
        "Request validation errors",
        "test payloads that no longer match the schema",
        "valid test data (e.g. real UUIDs)",
        "medium",
    ),
    "docker_lifecycle": CategoryInfo(
        "Docker container lifecycle",
        "tests pause containers and fail to resume them",
        "finalizers that always restore, health checks, no pause cycles",
        "critical",
    ),
    "async_event_loop": CategoryInfo(
        "Async event loop conflicts",
        "sync wrappers calling asyncio.run inside async code; loop-scoped fixtures",
        "await directly, function-scoped loops, proper async fixtures",
        "high",
    ),
    "mock_not_called": CategoryInfo(
        "Mocks not called",
        "patch target where the name is defined, not where it is looked up; hooks not firing",
        "patch where used; restore hooks",
        "medium",
    ),
    "db_schema": CategoryInfo(
        "Database schema missing",
        "model not imported before create_all, missing migration",
        "import/register models, apply migrations in test setup",
        "high",
    ),
    "mapper_conflict": CategoryInfo(
        "SQLAlchemy mapper conflicts",
        "the same module imported under two paths",
        "one import path; clean registries",
        "high",
    ),
    "transaction_state": CategoryInfo(
        "Transaction state",
        "code under test commits inside a fixture-managed transaction",
        "nested transactions/savepoints, session fixtures that fit",
        "medium",
    ),
    "test_isolation": CategoryInfo(
        "Test isolation (order-dependent)",
        "an earlier test (the polluter) leaks env vars, globals, patches, DB rows",
        "monkeypatch, fixtures with teardown, reset state",
        "high",
    ),
    "timeout": CategoryInfo(
        "Timeouts (hung tests)",
        "deadlocks, waiting on absent services",
        "bounded waits, fakes for absent services",
        "critical",
    ),
    "collection_error": CategoryInfo(
        "Collection errors",
        "renamed or removed names",
        "fix imports",
        "critical",
    ),
    "unknown": CategoryInfo(
        "Uncategorised failures",
        "no known pattern matched",
        "read the tracebacks; fix case by case",
        "low",
    ),
}


@dataclass(frozen=True)
class Rule:
    """One category's recognisers: matching ANY regex, exception type or predicate is a match.

    Keep predicates cheap and pure: they see the whole `TestResult`.

    Regexes are searched (case-insensitive, multi-line) in "ExcType: message".
    """

    category: str
    patterns: tuple[str, ...] = ()
    exc_types: frozenset[str] = frozenset()  # short names, e.g. "ValidationError"
    predicate: Callable[[TestResult], bool] | None = None
    regex: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        joined = "|".join(f"(?:{p})" for p in self.patterns)
        object.__setattr__(self, "regex", re.compile(joined, FLAGS) if joined else None)

    def matches_text(self, exc: str, text: str) -> bool:
        return exc in self.exc_types or bool(self.regex and self.regex.search(text))


def short_exc(exc_type: str | None) -> str:
    """'sqlalchemy.exc.IntegrityError' -> 'IntegrityError'."""
    return (exc_type or "").rsplit(".", 1)[-1]


def _is_collection_error(result: TestResult) -> bool:
    """Collect phase, or an import/syntax error reported for a file rather than a test."""
    if result.when == "collect":
        return True
    return short_exc(result.exc_type) in IMPORT_ERRORS and "::" not in result.nodeid


def _status(code: str) -> str:
    """An HTTP status as pytest shows it: `assert 409 == 201` or `<Response [409]>`."""
    return rf"\bassert {code} ==|<Response \[{code}\]>|\b{code} (?:Client Error|Conflict)\b"


RULES: list[Rule] = [
    Rule("timeout", predicate=lambda r: r.outcome == "timeout"),
    Rule("collection_error", predicate=_is_collection_error),
    Rule(
        "docker_lifecycle",
        patterns=(
            r"CalledProcessError: Command [^\n]{0,300}?\b(?:docker|docker-compose|podman)\b",
            r"\bcontainer\b.{0,80}\bis (?:not running|paused|restarting)",
            r"\bis paused, unpause the container",
            r"connection refused",
            r"Error 111 connecting to",
            r"\bdocker\.errors\.",
        ),
    ),
    Rule(
        "async_event_loop",
        patterns=(
            r"cannot be called from a running event loop",
            r"attached to a different loop",
            r"Event loop is closed",
            r"This event loop is already running",
            r"There is no current event loop",
            r"no running event loop",
            r"is bound to a different event loop",
        ),
    ),
    Rule(
        "mock_not_called",
        patterns=(
            r"Expected '[^']*' to (?:have been|be) (?:called|awaited)",
            r"to have been (?:called|awaited)",
            r"\bCalled 0 times\b",
            r"\bAwaited 0 times\b",
            r"^Expected call: .*\n\s*Not called",
        ),
    ),
    Rule(
        "mapper_conflict",
        patterns=(
            r"Multiple classes found for path",
            r"Table '[^']*' is already defined for this MetaData",
            r"already has a primary mapper defined",
            r"failed to locate a name \(",
            r"is already defined for this MetaData instance",
        ),
    ),
    Rule(
        "db_schema",
        patterns=(
            r"no such table",
            r"relation \"[^\"]*\" does not exist",
            r"no such column",
            r"column \"[^\"]*\"(?: of relation \"[^\"]*\")? does not exist",
            r"Table '[^']*' doesn't exist",
            r"Unknown column '",
            r"has no column named",
            r"UndefinedTable",
        ),
    ),
    Rule(
        "model_defaults",
        patterns=(
            r"NOT NULL constraint failed",
            r"null value in column \"[^\"]*\"",
            r"Column '[^']*' cannot be null",
            r"\bassert None (?:is\b|==|!=|in\b|not in\b)",
            r"\bassert not None\b",
        ),
    ),
    Rule(
        "validation_error",
        patterns=(_status("422"), r"\bvalidation errors? for\b", r"Unprocessable Entity"),
        exc_types=frozenset({"ValidationError", "RequestValidationError"}),
    ),
    Rule(
        "api_conflict",
        patterns=(
            _status("409"),
            r"UNIQUE constraint failed",
            r"duplicate key value violates unique constraint",
            r"Duplicate entry '",
            r"IntegrityError",
        ),
        exc_types=frozenset({"IntegrityError", "UniqueViolation"}),
    ),
    Rule(
        "uuid_type",
        patterns=(
            r"badly formed hexadecimal UUID string",
            r"object has no attribute '(?:hex|bytes|int)'",
            r"invalid input syntax for type uuid",
            r"one of the hex, bytes, bytes_le, fields, or int arguments must be given",
            r"'UUID' object has no attribute 'replace'",
            r"is not a valid UUID",
        ),
    ),
    Rule(
        "transaction_state",
        patterns=(
            r"Can't operate on closed transaction",
            r"This transaction is inactive",
            r"transaction is closed",
            r"Can't reconnect until invalid transaction is rolled back",
            r"transaction has been rolled back due to a previous exception",
            r"A transaction is already begun on this Session",
            r"This session is in '[^']*' state",
        ),
        exc_types=frozenset({"PendingRollbackError", "ResourceClosedError"}),
    ),
    Rule(
        "api_routing",
        patterns=(
            _status("404"),
            _status("405"),
            _status("401"),
            _status("403"),
            r"No route exists for name",
            r"dependency_overrides",
        ),
        exc_types=frozenset({"NoMatchFound", "FastAPIError", "DependencyError"}),
    ),
]


def message_text(result: TestResult) -> str:
    """The text rules look at: "ExcType: message", or pytest's `E ` lines when no message."""
    message = result.message
    if not message and result.longrepr:
        message = "\n".join(
            line[1:].strip() for line in result.longrepr.splitlines() if line.startswith("E ")
        )
    message = (message or "").split("[SQL:", 1)[0]  # SQLAlchemy's statement and parameters
    exc = short_exc(result.exc_type)
    text = f"{exc}: {message}" if exc else message
    return text[:MAX_TEXT]


@lru_cache(maxsize=16384)
def _first_text_rule(exc: str, text: str) -> int:
    """Index of the first rule whose exception types or regexes match (cached: messages repeat)."""
    return next((i for i, rule in enumerate(RULES) if rule.matches_text(exc, text)), len(RULES))


def categorize(result: TestResult) -> str:
    """The category of a failing test: the first rule matching its outcome, phase or message."""
    first = _first_text_rule(short_exc(result.exc_type), message_text(result))
    for rule in RULES[:first]:
        if rule.predicate is not None and rule.predicate(result):
            return rule.category
    return RULES[first].category if first < len(RULES) else "unknown"
