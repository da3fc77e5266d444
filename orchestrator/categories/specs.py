"""Every failure category, one `CategorySpec` each: the one place a category is defined.

The order is the rules' precedence: the first spec whose rule matches a failing test decides its
category, so narrow rules come before broad ones (a NOT NULL IntegrityError is `model_defaults`
before any IntegrityError is `api_conflict`; a 422 whose body mentions UUIDs is
`validation_error` before anything is `uuid_type`). `test_isolation` has no rule: re-running
decides it. `unknown` is what nothing matched.

To add a category: write its spec here (an explainer in explain.py is optional; `explain.generic`
names the group's common signatures), and optionally an offline specialist in `agents/`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from orchestrator.categories import explain, upgrade
from orchestrator.categories.explain import FailureGroup
from orchestrator.categories.rules import (
    Rule,
    http_status,
    is_collection_error,
    raised_in_package,
)
from orchestrator.models import Environment, Failure, Priority, TestResult

FixLives = Literal["source", "tests", "either"]


@dataclass(frozen=True)
class CategorySpec:
    """What a category is, how it is recognised, explained and fixed, and by whom."""

    id: str
    title: str
    root_cause: str  # the usual root cause (the contract's table)
    fix_strategy: str  # the usual fix
    priority: Priority  # before the size of the group raises it
    rule: Rule | None  # None: not recognised by its message (test_isolation, unknown)
    explain: Callable[[FailureGroup], tuple[str, str]] = explain.generic
    specialist: str | None = None  # the offline specialist; None: only the model takes it
    # Where the fix usually lives. "source": the patch must also pass with the original test
    # files (SWE-bench style); "tests" or "either": test edits are only reported.
    fix_lives: FixLives = "either"
    keywords: str = ""  # a regex: what a person's handoff calls it (pattern, title, cause)
    # The cause inside the category, when its failures can have several that need different
    # fixes (two upgraded packages): each cause becomes its own plan item. None: one item.
    cause: Callable[[TestResult, Failure, Environment | None], str] | None = None


CATEGORIES: tuple[CategorySpec, ...] = (
    CategorySpec(
        "timeout",
        "Timeouts (hung tests)",
        "deadlocks, waiting on absent services",
        "bounded waits, fakes for absent services",
        "critical",
        Rule(
            patterns=(  # pytest-timeout's banners, when it stopped the test itself
                r"\+{3,} Timeout \+{3,}",
                r"~{3,} Stack of MainThread",
                r"^(?:E\s+)?Failed: Timeout \(?>",
                r"Timeout \(>[\d.]+s\) from pytest-timeout",
            ),
            predicate=lambda r: r.outcome == "timeout",
        ),
        explain.timeout,
        keywords=r"timeout|timed out|\bhang",
    ),
    CategorySpec(
        "test_framework_contract",
        "Test framework contract changes",
        "pytest or a plugin changed what it calls or accepts (an upgrade of the test stack)",
        "adapt the tests to the installed pytest and plugins",
        "high",
        Rule(patterns=upgrade.CONTRACT_PATTERNS),  # and nose-style setup, seen in the test files
        upgrade.test_framework_contract,
        specialist="test_framework_contract",
        fix_lives="tests",
        keywords=r"nose|setup_method|pytest\.warns\(None\)|event_loop fixture|pytest 8|contract",
        cause=lambda r, f, env: upgrade.contract_of(r).key,
    ),
    CategorySpec(
        "dependency_upgrade",
        "Dependency upgrade breakage",
        "an API the code uses was removed or renamed by an upgrade of an installed package",
        "migrate the calls to the new API (the package's migration tool where it has one), or pin "
        "the old version",
        "critical",
        Rule(
            patterns=upgrade.UPGRADE_PATTERNS,
            exc_types=upgrade.UPGRADE_EXC_TYPES,
            predicate=upgrade.raised_in_installed_package,
        ),
        upgrade.dependency_upgrade,
        specialist="dependency_upgrade",
        fix_lives="either",
        keywords=r"upgrade|removed in|deprecat|numpy 2|sqlalchemy 2|pydantic v2",
        cause=lambda r, f, env: upgrade.package_of(r, env),
    ),
    CategorySpec(
        "docker_lifecycle",
        "Docker container lifecycle",
        "tests pause containers and fail to resume them",
        "finalizers that always restore, health checks, no pause cycles",
        "critical",
        Rule(
            patterns=(
                r"CalledProcessError: Command [^\n]{0,300}?\b(?:docker|docker-compose|podman)\b",
                r"\bcontainer\b.{0,80}\bis (?:not running|paused|restarting)",
                r"\bis paused, unpause the container",
                r"connection refused",
                r"Error 111 connecting",
                r"\bdocker\.errors\.",
                r"Error while fetching server API version",
            ),
            predicate=raised_in_package("docker"),
        ),
        explain.docker_lifecycle,
        specialist="docker_lifecycle",
        keywords=r"docker|container|unpause",
    ),
    CategorySpec(
        "collection_error",
        "Collection errors",
        "renamed or removed names",
        "fix imports",
        "critical",
        Rule(predicate=is_collection_error),
        upgrade.collection_error,
        specialist="renamed_import",
        keywords=r"importerror|modulenotfound|syntaxerror|collection error",
    ),
    CategorySpec(
        "async_event_loop",
        "Async event loop conflicts",
        "sync wrappers calling asyncio.run inside async code; loop-scoped fixtures",
        "await directly, function-scoped loops, proper async fixtures",
        "high",
        Rule(
            patterns=(
                r"cannot be called from a running event loop",
                r"attached to a different loop",
                r"Event loop is closed",
                r"This event loop is already running",
                r"There is no current event loop",
                r"no running event loop",
                r"is bound to a different event loop",
                r"Cannot close a running event loop",
            )
        ),
        explain.async_event_loop,
        specialist="async_event_loop",
        keywords=r"event loop|asyncio\.run|different loop|loop is closed",
    ),
    CategorySpec(
        "mock_not_called",
        "Mocks not called",
        "patch target where the name is defined, not where it is looked up; hooks not firing",
        "patch where used; restore hooks",
        "medium",
        Rule(
            patterns=(
                r"Expected '[^']*' to (?:have been|be) (?:called|awaited)",
                r"to have been (?:called|awaited)",
                r"\bCalled 0 times\b",
                r"\bAwaited 0 times\b",
                r"^Expected call: .*\n\s*Not called",
            )
        ),
        explain.mock_not_called,
        specialist="patch_target",
        fix_lives="tests",
        keywords=r"called 0 times|not called|pub/?sub",
    ),
    CategorySpec(
        "mapper_conflict",
        "SQLAlchemy mapper conflicts",
        "the same module imported under two paths",
        "one import path; clean registries",
        "high",
        Rule(
            patterns=(
                r"Multiple classes found for path",
                r"Table '[^']*' is already defined for this MetaData",
                r"already has a primary mapper defined",
                r"failed to locate a name \(",
                r"is already defined for this MetaData instance",
            )
        ),
        explain.mapper_conflict,
        fix_lives="source",
        keywords=r"multiple classes found|mapper|already defined",
    ),
    CategorySpec(
        "transaction_state",
        "Transaction state",
        "code under test commits inside a fixture-managed transaction",
        "nested transactions/savepoints, session fixtures that fit",
        "medium",
        Rule(
            patterns=(
                r"Can't operate on closed transaction",
                r"This transaction is inactive",
                r"transaction is closed",
                r"Can't reconnect until invalid transaction is rolled back",
                r"transaction has been rolled back\s+due to a previous exception",
                r"transaction already deassociated from connection",
                r"A transaction is already begun on this Session",
                r"This session is in '[^']*' state",
            ),
            exc_types=frozenset({"PendingRollbackError", "ResourceClosedError"}),
        ),
        explain.transaction_state,
        fix_lives="source",
        keywords=r"transaction",
    ),
    CategorySpec(
        "db_schema",
        "Database schema missing",
        "model not imported before create_all, missing migration",
        "import/register models, apply migrations in test setup",
        "high",
        Rule(
            patterns=(
                r"no such table",
                r"relation \"[^\"]*\" does not exist",
                r"no such column",
                r"column \"[^\"]*\"(?: of relation \"[^\"]*\")? does not exist",
                r"Table '[^']*' doesn't exist",
                r"Unknown column '",
                r"has no column named",
                r"UndefinedTable",
            )
        ),
        explain.db_schema,
        # `create_all` usually runs in a test conftest, where the missing model import belongs.
        specialist="db_schema",
        keywords=r"no such table|does not exist|\btables?\b|schema|migration",
    ),
    CategorySpec(
        "model_defaults",
        "Model default values",
        "ORM column defaults apply only at flush; no id generator",
        "set defaults in __init__/mixin, generate ids explicitly",
        "high",
        Rule(
            patterns=(
                r"NOT NULL constraint failed",
                r"null value in column [\"“][^\"”]*[\"”]",
                r"Column '[^']*' cannot be null",
                r"\bassert None (?:is\b|==|!=|in\b|not in\b)",
                r"\bassert not None\b",
            )
        ),
        explain.model_defaults,
        specialist="model_defaults",
        fix_lives="source",
        keywords=r"assert none is|default|null value in column|not null",
    ),
    CategorySpec(
        "validation_error",
        "Request validation errors",
        "test payloads that no longer match the schema",
        "valid test data (e.g. real UUIDs)",
        "medium",
        Rule(
            patterns=(
                http_status("422"),
                r"\bvalidation errors? for\b",
                r"Unprocessable Entity",
                r"\bRequestValidationError\b",
                r"\bpydantic(?:_core)?[\w.]*\.ValidationError\b",
                r"['\"]loc['\"]: \[",
                r"Field required \[type=missing",
            ),
            exc_types=frozenset({"ValidationError", "RequestValidationError"}),
        ),
        explain.validation_error,
        specialist="uuid_type",
        fix_lives="tests",
        keywords=r"\b422\b|validation ?error|unprocessable",
    ),
    CategorySpec(
        "api_conflict",
        "API conflicts and unique constraints",
        "duplicate names in test data hitting unique constraints in a shared DB",
        "unique test data per test, isolated DB state",
        "high",
        Rule(
            patterns=(
                http_status("409"),
                r"UNIQUE constraint failed",
                r"duplicate key value violates unique constraint",
                r"Duplicate entry '",
                r"IntegrityError",
            ),
            exc_types=frozenset({"IntegrityError", "UniqueViolation"}),
        ),
        explain.api_conflict,
        specialist="api_conflict",
        fix_lives="tests",
        keywords=r"\b409\b|conflict|integrityerror|unique constraint",
    ),
    CategorySpec(
        "uuid_type",
        "UUID type mismatches",
        'tests pass "test-id" strings where uuid.UUID is expected',
        "real UUIDs in fixtures and test data",
        "high",
        Rule(
            patterns=(
                r"badly formed hexadecimal UUID string",
                r"object has no attribute '(?:hex|bytes|int)'",
                r"invalid input syntax for type uuid",
                r"one of the hex, bytes, bytes_le, fields, or int arguments must be given",
                r"'UUID' object has no attribute 'replace'",
                r"is not a valid UUID",
            )
        ),
        explain.uuid_type,
        specialist="uuid_type",
        fix_lives="tests",
        keywords=r"uuid",
    ),
    CategorySpec(
        "api_routing",
        "API routing and dependencies",
        "router not mounted or wrong prefix, dependency overrides missing",
        "mount routers, fix overrides in test app",
        "high",
        Rule(
            patterns=(
                http_status("404"),
                http_status("405"),
                http_status("401"),
                http_status("403"),
                http_status("30[78]"),  # a redirect: the route wants a trailing slash
                r"\bassert '\d{3} [A-Z][A-Z ]*' == '\d{3} [A-Z][A-Z ]*'",  # Flask's status text
                r"No route exists for name",
                r"dependency_overrides",
            ),
            exc_types=frozenset({"NoMatchFound", "FastAPIError", "DependencyError"}),
        ),
        explain.api_routing,
        specialist="api_routing",
        # Mounts and prefixes live in the app; dependency overrides in the test app.
        fix_lives="either",
        keywords=r"\b40[45]\b|endpoint|dependenc|router|routing",
    ),
    CategorySpec(
        "test_isolation",
        "Test isolation (order-dependent)",
        "an earlier test (the polluter) leaks env vars, globals, patches, DB rows",
        "monkeypatch, fixtures with teardown, reset state",
        "high",
        None,  # decided by re-running, and it wins over the message's category
        explain.test_isolation,
        specialist="test_pollution",
        fix_lives="tests",
        keywords=r"isolation|pollut|order.dependen",
    ),
    CategorySpec(
        "unknown",
        "Uncategorised failures",
        "no known pattern matched",
        "read the tracebacks; fix case by case",
        "low",
        None,
        cause=lambda r, f, env: f.signature,  # unrelated failures are unrelated plan items
    ),
)
