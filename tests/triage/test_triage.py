"""Triage: categories from realistic messages, signatures, specific root causes, isolation."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import traceback
import uuid
from pathlib import Path
from unittest import mock

import pytest
from rich.console import Console

from orchestrator.categories import CATEGORIES, CATEGORY_IDS, categorize
from orchestrator.models import (
    Frame,
    IsolationFinding,
    IsolationResult,
    Leak,
    SuiteRun,
    TestResult,
)
from orchestrator.triage import priority, signature, slow_tests, triage
from orchestrator.view.triage import render_table

ROOT = Path(__file__).resolve().parent.parent.parent
# The category ids of ../shared/spec/contract.md's table.
CONTRACT_IDS = {
    "model_defaults",
    "uuid_type",
    "api_conflict",
    "api_routing",
    "validation_error",
    "docker_lifecycle",
    "async_event_loop",
    "mock_not_called",
    "db_schema",
    "mapper_conflict",
    "transaction_state",
    "test_isolation",
    "timeout",
    "collection_error",
    "unknown",
    # added by issue 16 (the contract's table is extended in its note)
    "dependency_upgrade",
    "test_framework_contract",
}
SITE = "/usr/lib/python3.11/site-packages"


def result(
    message: str | None,
    exc: str | None = "AssertionError",
    nodeid: str = "tests/test_api.py::test_create",
    frames: list[tuple[str, int, str]] | None = None,
    outcome: str = "failed",
    when: str | None = "call",
    longrepr: str | None = None,
    duration: float = 0.0,
) -> TestResult:
    return TestResult(
        nodeid=nodeid,
        outcome=outcome,
        when=when,
        exc_type=exc,
        message=message,
        frames=[Frame(path=p, line=n, func=f) for p, n, f in frames or []],
        longrepr=longrepr,
        duration_s=duration,
    )


def run_of(*results: TestResult, passed: int = 0) -> SuiteRun:
    ok = [TestResult(nodeid=f"tests/test_ok.py::test_{i}", outcome="passed") for i in range(passed)]
    return SuiteRun(command=["pytest"], cwd="/repo", results=[*results, *ok], duration_s=1.5)


CASES = [
    # model_defaults
    (
        "AssertionError",
        "assert None is True\n +  where None = <app.models.Module object at 0x7f3a>.active",
        "model_defaults",
    ),
    (
        "AssertionError",
        "assert None is not None\n +  where None = <HealthStatus object at 0x1>.id",
        "model_defaults",
    ),
    (
        "AssertionError",
        "assert None == 'active'\n +  where None = <Module>.status",
        "model_defaults",
    ),
    (
        "sqlalchemy.exc.IntegrityError",
        "(sqlite3.IntegrityError) NOT NULL constraint failed: modules.id\n[SQL: INSERT INTO modules (id, name) VALUES (?, ?)]",
        "model_defaults",
    ),
    (
        "sqlalchemy.exc.IntegrityError",
        '(psycopg2.errors.NotNullViolation) null value in column "id" of relation "game_telemetry" violates not-null constraint',
        "model_defaults",
    ),
    # uuid_type
    ("ValueError", "badly formed hexadecimal UUID string", "uuid_type"),
    ("AttributeError", "'str' object has no attribute 'hex'", "uuid_type"),
    (
        "sqlalchemy.exc.StatementError",
        "(builtins.AttributeError) 'str' object has no attribute 'hex'\n[SQL: SELECT modules.id FROM modules WHERE modules.id = ?]",
        "uuid_type",
    ),
    (
        "sqlalchemy.exc.DataError",
        '(psycopg2.errors.InvalidTextRepresentation) invalid input syntax for type uuid: "test-id"',
        "uuid_type",
    ),
    # api_conflict
    (
        "AssertionError",
        "assert 409 == 201\n +  where 409 = <Response [409]>.status_code",
        "api_conflict",
    ),
    (
        "sqlalchemy.exc.IntegrityError",
        "(sqlite3.IntegrityError) UNIQUE constraint failed: modules.name",
        "api_conflict",
    ),
    (
        "sqlalchemy.exc.IntegrityError",
        '(psycopg2.errors.UniqueViolation) duplicate key value violates unique constraint "modules_name_key"\nDETAIL:  Key (name)=(test_module) already exists.',
        "api_conflict",
    ),
    # api_routing
    (
        "AssertionError",
        "assert 404 == 200\n +  where 404 = <Response [404]>.status_code",
        "api_routing",
    ),
    (
        "AssertionError",
        "assert 405 == 201\n +  where 405 = <Response [405]>.status_code",
        "api_routing",
    ),
    (
        "starlette.routing.NoMatchFound",
        'No route exists for name "get_module" and params "".',
        "api_routing",
    ),
    # validation_error
    (
        "AssertionError",
        "assert 422 == 201\n +  where 422 = <Response [422]>.status_code",
        "validation_error",
    ),
    (
        "AssertionError",
        '{"detail":[{"type":"uuid_parsing","loc":["body","event_id"],"msg":"Input should be a valid UUID"}]}\nassert 422 == 201',
        "validation_error",
    ),
    (
        "pydantic_core._pydantic_core.ValidationError",
        "1 validation error for Event\nevent_id\n  Input should be a valid UUID, invalid character [type=uuid_parsing, input_value='evt-001', input_type=str]",
        "validation_error",
    ),
    # docker_lifecycle
    (
        "subprocess.CalledProcessError",
        "Command '['/usr/local/bin/docker', 'unpause', 'cos_redis']' returned non-zero exit status 1.",
        "docker_lifecycle",
    ),
    (
        "docker.errors.APIError",
        '409 Client Error for http+docker://localhost/v1.41/containers/abc/exec: Conflict ("Container abc is paused, unpause the container first")',
        "docker_lifecycle",
    ),
    ("RuntimeError", "Container cos_postgres is not running", "docker_lifecycle"),
    (
        "redis.exceptions.ConnectionError",
        "Error 111 connecting to localhost:6379. Connection refused.",
        "docker_lifecycle",
    ),
    # async_event_loop
    (
        "RuntimeError",
        "asyncio.run() cannot be called from a running event loop",
        "async_event_loop",
    ),
    (
        "RuntimeError",
        "Task <Task pending name='Task-3'> got Future <Future pending> attached to a different loop",
        "async_event_loop",
    ),
    ("RuntimeError", "Event loop is closed", "async_event_loop"),
    # mock_not_called
    (
        "AssertionError",
        "Expected '_publish_l1_event' to have been called once. Called 0 times.",
        "mock_not_called",
    ),
    ("AssertionError", "Expected 'send' to be called once. Called 0 times.", "mock_not_called"),
    ("AssertionError", "Expected 'notify' to have been called.", "mock_not_called"),
    # db_schema
    (
        "sqlalchemy.exc.OperationalError",
        "(sqlite3.OperationalError) no such table: health_status",
        "db_schema",
    ),
    (
        "sqlalchemy.exc.ProgrammingError",
        '(psycopg2.errors.UndefinedTable) relation "health_status" does not exist\nLINE 1: SELECT * FROM health_status',
        "db_schema",
    ),
    # mapper_conflict
    (
        "sqlalchemy.exc.InvalidRequestError",
        'Multiple classes found for path "Module" in the registry of this declarative base. Please use a fully module-qualified path.',
        "mapper_conflict",
    ),
    (
        "sqlalchemy.exc.InvalidRequestError",
        "Table 'modules' is already defined for this MetaData instance.  Specify 'extend_existing=True' to redefine options and columns on an existing Table object.",
        "mapper_conflict",
    ),
    # transaction_state
    (
        "sqlalchemy.exc.InvalidRequestError",
        "Can't operate on closed transaction inside context manager.  Please complete the context manager before emitting further commands.",
        "transaction_state",
    ),
    ("sqlalchemy.exc.ResourceClosedError", "This transaction is inactive", "transaction_state"),
    # unknown
    ("AssertionError", "assert 3 == 4", "unknown"),
    ("KeyError", "'missing'", "unknown"),
    (
        "AssertionError",
        "assert 500 == 200\n +  where 500 = <Response [500]>.status_code",
        "unknown",
    ),
]


@pytest.mark.parametrize(("exc", "message", "expected"), CASES)
def test_categorize_realistic_messages(exc: str, message: str, expected: str) -> None:
    assert categorize(result(message, exc)) == expected


def test_timeout_and_collection_errors_come_from_outcome_and_phase() -> None:
    hung = result(None, None, outcome="timeout", when="call")
    collect = result(
        "No module named 'app.old'",
        "ModuleNotFoundError",
        nodeid="tests/test_a.py",
        outcome="error",
        when="collect",
    )
    import_err = result(
        "cannot import name 'Foo' from 'app.models'",
        "ImportError",
        nodeid="tests/test_b.py",
        outcome="error",
        when=None,
    )
    in_test = result("cannot import name 'Foo' from 'app.models'", "ImportError", when="call")
    assert [categorize(r) for r in (hung, collect, import_err)] == [
        "timeout",
        "collection_error",
        "collection_error",
    ]
    assert categorize(in_test) == "unknown"


def test_rules_cover_exactly_the_contract_ids() -> None:
    assert set(CATEGORY_IDS) == CONTRACT_IDS and len(CATEGORY_IDS) == len(CATEGORIES)
    ruled = {c.id for c in CATEGORIES if c.rule is not None}
    assert ruled == set(CATEGORY_IDS) - {"test_isolation", "unknown"}
    assert all(c.priority in ("critical", "high", "medium", "low") for c in CATEGORIES)


def test_junit_style_result_without_message_uses_longrepr() -> None:
    r = result(
        None,
        None,
        longrepr="    def test_x():\n>       uuid.UUID('test-id')\nE       ValueError: badly formed hexadecimal UUID string\n",
    )
    assert categorize(r) == "uuid_type"


# --- signatures ------------------------------------------------------------------------------

CRUD = [
    ("tests/test_crud.py", 12, "test_get"),
    ("src/app/crud.py", 40, "get_module"),
    (f"{SITE}/sqlalchemy/orm/session.py", 900, "execute"),
]


def test_one_cause_with_volatile_details_is_one_signature() -> None:
    variants = [
        result(
            f"Object <Module at 0x{7000 + i:x}> id {uuid.uuid4()} in /tmp/pytest-of-me/pytest-{i}/test_{i}0/db.sqlite: 'name-{i}' took {i}.5s",
            "RuntimeError",
            nodeid=f"tests/test_crud.py::test_{i}",
            frames=[
                ("tests/test_crud.py", 10 + i, f"test_{i}"),
                ("src/app/crud.py", 40 + i, "get_module"),
            ],
        )
        for i in range(40)
    ]
    sigs = {signature(r) for r in variants}
    assert len(sigs) == 1
    (sig,) = sigs
    assert sig.startswith("RuntimeError: ") and sig.endswith("@ src/app/crud.py:get_module")
    assert "0x?" in sig and "<uuid>" in sig and "<tmp>" in sig and "'?'" in sig


def test_different_causes_get_different_signatures() -> None:
    sigs = {
        signature(result("assert 409 == 201", frames=CRUD[:1])),
        signature(result("assert 422 == 201", frames=CRUD[:1])),
        signature(result("badly formed hexadecimal UUID string", "ValueError", frames=CRUD)),
        signature(
            result(
                "badly formed hexadecimal UUID string",
                "ValueError",
                frames=[("src/app/services.py", 3, "load")],
            )
        ),
        signature(result("assert None is True\n +  where None = <Module object at 0x1>.active")),
        signature(
            result("assert None is True\n +  where None = <HealthStatus object at 0x1>.healthy")
        ),
        signature(
            result(
                "(sqlite3.OperationalError) no such table: health_status",
                "sqlalchemy.exc.OperationalError",
            )
        ),
        signature(
            result(
                "(sqlite3.OperationalError) no such table: modules",
                "sqlalchemy.exc.OperationalError",
            )
        ),
    }
    assert len(sigs) == 8


def test_signature_ignores_test_functions_and_line_numbers() -> None:
    a = result(
        "badly formed hexadecimal UUID string",
        "ValueError",
        nodeid="tests/test_a.py::t1",
        frames=[("tests/test_a.py", 5, "t1"), ("src/app/crud.py", 40, "get_module")],
    )
    b = result(
        "badly formed hexadecimal UUID string",
        "ValueError",
        nodeid="tests/test_b.py::t2",
        frames=[("tests/test_b.py", 9, "t2"), ("src/app/crud.py", 47, "get_module")],
    )
    assert (
        signature(a)
        == signature(b)
        == "ValueError: badly formed hexadecimal UUID string @ src/app/crud.py:get_module"
    )


# --- the report ------------------------------------------------------------------------------


def _uuid_failures(n: int) -> list[TestResult]:
    return [
        result(
            "badly formed hexadecimal UUID string",
            "ValueError",
            nodeid=f"tests/test_crud.py::test_get_{i}"
            if i % 2
            else f"tests/test_services.py::test_svc_{i}",
            frames=[
                ("tests/test_crud.py" if i % 2 else "tests/test_services.py", 10, "t"),
                ("src/app/crud.py", 40, "get_module"),
                ("/usr/lib/python3.11/uuid.py", 178, "__init__"),
            ],
            longrepr='>       crud.get_module(db, "test-id")\nE       ValueError: badly formed hexadecimal UUID string',
        )
        for i in range(6)
    ]


def test_triage_groups_categories_with_specific_root_causes(tmp_path: Path) -> None:
    results = [
        *_uuid_failures(6),
        result(
            "(sqlite3.IntegrityError) NOT NULL constraint failed: modules.id",
            "sqlalchemy.exc.IntegrityError",
            nodeid="tests/test_models.py::test_a",
            outcome="error",
            when="setup",
        ),
        result(
            "assert None is True\n +  where None = <app.models.Module object at 0x7f>.active",
            nodeid="tests/test_models.py::test_b",
        ),
        result(
            "(sqlite3.OperationalError) no such table: health_status",
            "sqlalchemy.exc.OperationalError",
            nodeid="tests/test_health.py::test_h",
        ),
        result(
            "Expected '_publish_l1_event' to have been called once. Called 0 times.",
            nodeid="tests/test_pub.py::test_p",
            longrepr='    @patch("app.events._publish_l1_event")\nE   AssertionError: Expected ...',
        ),
        result(
            "Command '['/usr/local/bin/docker', 'unpause', 'cos_redis']' returned non-zero exit status 1.",
            "subprocess.CalledProcessError",
            nodeid="tests/perf/test_fail.py::test_redis_down",
        ),
        result(
            None, None, nodeid="tests/test_slow.py::test_hang", outcome="timeout", duration=60.0
        ),
    ]
    report = triage(run_of(*results, passed=5), tmp_path, "pytest -q")
    by_id = {c.id: c for c in report.categories}
    assert set(by_id) == {
        "uuid_type",
        "model_defaults",
        "db_schema",
        "mock_not_called",
        "docker_lifecycle",
        "timeout",
    }
    # critical first (uuid_type: 6 of 11 failures is a large group), then by count
    assert [c.id for c in report.categories][:3] == ["uuid_type", "docker_lifecycle", "timeout"]
    assert [c.priority for c in report.categories] == sorted(
        (c.priority for c in report.categories), key=["critical", "high", "medium", "low"].index
    )

    uuid_cat = by_id["uuid_type"]
    assert uuid_cat.count == 6 and uuid_cat.agent == "uuid_type"
    assert uuid_cat.affected_files[0] == "src/app/crud.py"
    assert set(uuid_cat.affected_files) == {
        "src/app/crud.py",
        "tests/test_crud.py",
        "tests/test_services.py",
    }
    assert '"test-id" (6)' in uuid_cat.root_cause
    assert uuid_cat.signatures == [
        "ValueError: badly formed hexadecimal UUID string @ src/app/crud.py:get_module"
    ]
    assert uuid_cat.priority == "critical" and by_id["db_schema"].priority == "high"

    assert "modules.id" in by_id["model_defaults"].root_cause
    assert "Module.active" in by_id["model_defaults"].root_cause
    assert "Module.active" in by_id["model_defaults"].fix_strategy
    assert (
        "health_status" in by_id["db_schema"].root_cause
        and "health_status" in by_id["db_schema"].fix_strategy
    )
    assert "_publish_l1_event" in by_id["mock_not_called"].root_cause
    assert "app.events._publish_l1_event" in by_id["mock_not_called"].fix_strategy
    assert "docker unpause cos_redis" in by_id["docker_lifecycle"].root_cause
    assert by_id["mock_not_called"].agent == "patch_target" and by_id["timeout"].agent == "llm"

    failures = {f.nodeid: f for f in report.failures}
    assert failures["tests/test_models.py::test_a"].outcome == "error"
    assert failures["tests/test_slow.py::test_hang"].outcome == "failed"
    assert failures["tests/test_crud.py::test_get_1"].file == "src/app/crud.py"
    assert failures["tests/test_crud.py::test_get_1"].line == 40
    assert failures["tests/test_slow.py::test_hang"].file == "tests/test_slow.py"
    assert (
        report.baseline.total == 17 and report.baseline.passed == 5 and report.baseline.errors == 1
    )
    assert report.slow_tests[0].nodeid == "tests/test_slow.py::test_hang"


def test_specific_root_causes_for_api_and_validation_and_mappers(tmp_path: Path) -> None:
    results = [
        result(
            "assert 409 == 201\n +  where 409 = <Response [409]>.status_code",
            nodeid=f"tests/test_router.py::test_c{i}",
            longrepr=f'>       r = client.post("/api/modules", json={{"name": "test_module"}})\nE       assert 409 == 201 {i}',
        )
        for i in range(3)
    ] + [
        result(
            "assert 404 == 200",
            nodeid="tests/test_router.py::test_get",
            longrepr='>   r = client.get("/api/v1/health")\nE   assert 404 == 200',
        ),
        result(
            "1 validation error for Event\nevent_id\n  Input should be a valid UUID [type=uuid_parsing, input_value='evt-001', input_type=str]",
            "pydantic_core._pydantic_core.ValidationError",
            nodeid="tests/test_ingest.py::test_one",
            longrepr='>   Event(event_id="evt-001")',
        ),
        result(
            'Multiple classes found for path "Module" in the registry of this declarative base.',
            "sqlalchemy.exc.InvalidRequestError",
            nodeid="tests/test_x.py::t",
        ),
    ]
    by_id = {c.id: c for c in triage(run_of(*results), tmp_path, "pytest").categories}
    assert (
        "409 Conflict" in by_id["api_conflict"].root_cause
        and '"test_module" (3)' in by_id["api_conflict"].root_cause
    )
    assert "POST /api/modules" not in by_id["api_routing"].root_cause
    assert (
        "GET /api/v1/health" in by_id["api_routing"].root_cause
        and "HTTP 404" in by_id["api_routing"].root_cause
    )
    assert (
        '"evt-001"' in by_id["validation_error"].root_cause
        and "event_id (uuid_parsing)" in by_id["validation_error"].root_cause
    )
    assert "Module" in by_id["mapper_conflict"].root_cause


def test_isolation_overrides_message_category_and_drops_flaky(tmp_path: Path) -> None:
    victim = result("assert 'readonly' == 'open'", nodeid="tests/test_orders.py::test_checkout")
    setter_victim = result(
        "(sqlite3.IntegrityError) UNIQUE constraint failed: orders.ref",
        "sqlalchemy.exc.IntegrityError",
        nodeid="tests/test_orders.py::test_ref",
    )
    lone = result("assert 0 == 1", nodeid="tests/test_orders.py::test_count")
    flaky = result("assert 0 == 1", nodeid="tests/test_net.py::test_sometimes")
    plain = result("Event loop is closed", "RuntimeError", nodeid="tests/test_async.py::test_loop")
    isolation = IsolationResult(
        alone={v.nodeid: "passes_alone" for v in (victim, setter_victim, lone)}
        | {plain.nodeid: "fails_alone"},
        findings=[
            IsolationFinding(
                victim=victim.nodeid,
                kind="polluter",
                culprits=["tests/test_config.py::test_readonly_mode"],
                leaks={
                    "tests/test_config.py::test_readonly_mode": [
                        Leak(kind="env", key="SHOP_MODE", new="readonly")
                    ]
                },
            ),
            IsolationFinding(
                victim=setter_victim.nodeid,
                kind="state_setter",
                culprits=["tests/test_seed.py::test_seed"],
            ),
        ],
        flaky=[flaky.nodeid],
    )
    report = triage(
        run_of(victim, setter_victim, lone, flaky, plain), tmp_path, "pytest", isolation
    )
    failures = {f.nodeid: f for f in report.failures}
    assert flaky.nodeid not in failures and report.flaky == [flaky.nodeid]
    assert all(flaky.nodeid not in c.tests for c in report.categories)

    v = failures[victim.nodeid]
    assert (v.category, v.message_category, v.polluter, v.isolation) == (
        "test_isolation",
        "unknown",
        "tests/test_config.py::test_readonly_mode",
        "passes_alone",
    )
    assert v.leak == "SHOP_MODE='readonly' left in os.environ"
    s = failures[setter_victim.nodeid]
    assert (s.category, s.message_category, s.polluter) == ("test_isolation", "api_conflict", None)
    assert failures[lone.nodeid].category == "test_isolation"
    p = failures[plain.nodeid]
    assert (p.category, p.message_category, p.isolation) == (
        "async_event_loop",
        None,
        "fails_alone",
    )

    iso = next(c for c in report.categories if c.id == "test_isolation")
    assert iso.count == 3 and iso.agent == "test_pollution"
    assert (
        "tests/test_config.py::test_readonly_mode leaves SHOP_MODE='readonly' in os.environ; use monkeypatch.setenv"
        in iso.root_cause
    )
    assert "tests/test_seed.py::test_seed" in iso.root_cause
    assert "1 tests pass alone" in iso.root_cause
    assert "monkeypatch.setenv" in iso.fix_strategy


def test_contract_json_has_exactly_the_contract_keys(tmp_path: Path) -> None:
    report = triage(run_of(*_uuid_failures(2), passed=1), tmp_path, "pytest -q")
    data = report.contract_json()
    assert set(data) == {
        "repo",
        "test_command",
        "baseline",
        "failures",
        "categories",
        "slow_tests",
        "environment",  # our extension: installed packages and what changed
    }
    assert set(data["baseline"]) == {"total", "passed", "failed", "errors", "skipped", "duration_s"}
    assert set(data["failures"][0]) == {
        "nodeid",
        "outcome",
        "category",
        "signature",
        "message",
        "file",
        "line",
        "isolation",
        "polluter",
        "duration_s",
    }
    assert set(data["categories"][0]) == {
        "id",
        "title",
        "count",
        "tests",
        "affected_files",
        "root_cause",
        "fix_strategy",
        "agent",
        "priority",
        "item",  # our extension: the plan item (the id unless the category has several causes)
    }
    assert data["repo"] == str(tmp_path) and data["failures"][0]["category"] == "uuid_type"


def test_priority_raises_large_groups_only() -> None:
    assert priority("unknown", 1, 100) == "low"
    assert priority("unknown", 30, 100) == "medium"
    assert priority("model_defaults", 5, 10) == "critical"
    assert priority("collection_error", 1, 100) == "critical"


def test_slow_tests_and_render(tmp_path: Path) -> None:
    results = [
        TestResult(nodeid=f"tests/t.py::t{i}", outcome="passed", duration_s=float(i))
        for i in range(5)
    ]
    run = run_of(
        *results,
        result("assert 409 == 201\n +  where 409 = <Response [409]>.status_code", duration=2.5),
    )
    assert [s.duration_s for s in slow_tests(run, 3)] == [4.0, 3.0, 2.5]
    assert all(s.duration_s > 0 for s in slow_tests(run, 50))
    console = Console(record=True, width=160)
    console.print(render_table(triage(run, tmp_path, "pytest")))
    out = console.export_text()
    assert (
        "6 tests: 5 passed, 1 failed" in out and "api_conflict" in out and "tests/t.py::t4" in out
    )


def test_message_is_trimmed_and_meaningful(tmp_path: Path) -> None:
    long = "(sqlite3.OperationalError) no such table: x" + " y" * 400 + "\n[SQL: SELECT 1]"
    f = triage(
        run_of(result(long, "sqlalchemy.exc.OperationalError")), tmp_path, "pytest"
    ).failures[0]
    assert len(f.message) <= 300 and f.message.startswith(
        "(sqlite3.OperationalError) no such table: x"
    )
    assert "[SQL" not in f.message


# --- real library messages --------------------------------------------------------------------


def _frames(exc: BaseException) -> list[Frame]:
    frames = []
    for fs in traceback.extract_tb(exc.__traceback__):
        path = Path(fs.filename)
        rel = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else fs.filename
        frames.append(Frame(path=rel, line=fs.lineno or 0, func=fs.name))
    return frames


def _caught(fn, nodeid: str) -> TestResult:
    try:
        fn()
    except BaseException as e:
        return TestResult(
            nodeid=nodeid,
            outcome="failed",
            when="call",
            exc_type=f"{type(e).__module__}.{type(e).__qualname__}",
            message=str(e),
            frames=_frames(e),
        )
    raise AssertionError(f"{fn} did not raise")


def _nested_asyncio_run() -> None:
    async def outer() -> None:
        coro = asyncio.sleep(0)
        try:
            asyncio.run(coro)
        finally:
            coro.close()

    asyncio.run(outer())


def _closed_loop() -> None:
    loop = asyncio.new_event_loop()
    loop.close()
    coro = asyncio.sleep(0)
    try:
        loop.run_until_complete(coro)
    finally:
        coro.close()


def _sqlite_no_table() -> None:
    sqlite3.connect(":memory:").execute("SELECT * FROM health_status")


def _mock_not_called() -> None:
    publish = mock.Mock(name="_publish_l1_event")
    publish.assert_called_once()


def _docker_unpause() -> None:
    raise subprocess.CalledProcessError(1, ["/usr/local/bin/docker", "unpause", "cos_redis"])


def _status_conflict() -> None:
    class Response:
        status_code = 409

        def __repr__(self) -> str:
            return "<Response [409]>"

    assert Response().status_code == 201  # pytest rewrites this assert: the real message


def _sqlalchemy_cases() -> dict[str, object]:
    """Real SQLAlchemy errors on an in-memory SQLite database."""
    sa = pytest.importorskip("sqlalchemy")
    metadata = sa.MetaData()
    modules = sa.Table(
        "modules",
        metadata,
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("name", sa.String, unique=True),
        sa.Column("owner", sa.String, nullable=False),
    )
    engine = sa.create_engine("sqlite://")
    metadata.create_all(engine)

    def not_null() -> None:
        with engine.begin() as conn:
            conn.execute(modules.insert().values(id=uuid.uuid4(), name="m"))

    def unique() -> None:
        with engine.begin() as conn:
            conn.execute(
                modules.insert(), [{"id": uuid.uuid4(), "name": "dup", "owner": o} for o in "ab"]
            )

    def str_uuid() -> None:
        with engine.connect() as conn:
            conn.execute(sa.select(modules).where(modules.c.id == "test-id"))

    def table_twice() -> None:
        sa.Table("modules", metadata, sa.Column("id", sa.Integer))

    def closed_transaction() -> None:
        with engine.connect() as conn, conn.begin() as trans:
            trans.commit()
            conn.execute(sa.text("SELECT 1"))

    return {
        "model_defaults": not_null,
        "api_conflict": unique,
        "uuid_type": str_uuid,
        "mapper_conflict": table_twice,
        "transaction_state": closed_transaction,
    }


def test_real_library_messages_categorise_and_group(tmp_path: Path) -> None:
    cases = {
        "uuid_type": lambda: uuid.UUID("test-id"),
        "async_event_loop": _nested_asyncio_run,
        "db_schema": _sqlite_no_table,
        "mock_not_called": _mock_not_called,
        "docker_lifecycle": _docker_unpause,
        "api_conflict": _status_conflict,
    }
    results = [
        _caught(fn, f"tests/test_real.py::test_{cat}_{i}")
        for i in range(3)
        for cat, fn in cases.items()
    ]
    results += [_caught(_closed_loop, "tests/test_real.py::test_closed_loop")]
    results += [
        _caught(fn, f"tests/test_real.py::test_sa_{cat}") for cat, fn in _sqlalchemy_cases().items()
    ]
    got = {r.nodeid: categorize(r) for r in results}
    for nodeid, category in got.items():
        expected = (
            nodeid.split("test_", 2)[-1].rsplit("_", 1)[0]
            if "_sa_" not in nodeid
            else nodeid.split("test_sa_")[1]
        )
        if nodeid.endswith("closed_loop"):
            expected = "async_event_loop"
        assert category == expected, (
            nodeid,
            next(r.message for r in results if r.nodeid == nodeid),
        )

    report = triage(run_of(*results), tmp_path, "pytest")
    by_id = {c.id: c for c in report.categories}
    assert by_id["db_schema"].count == 3 and len(by_id["db_schema"].signatures) == 1
    assert "health_status" in by_id["db_schema"].root_cause
    assert "_publish_l1_event" in by_id["mock_not_called"].root_cause
    assert "docker unpause cos_redis" in by_id["docker_lifecycle"].root_cause
    assert "modules.owner" in by_id["model_defaults"].root_cause
    assert "modules.name" in by_id["api_conflict"].root_cause
    assert "asyncio.run() inside a running loop (3)" in by_id["async_event_loop"].root_cause


def test_collection_timeout_and_unknown_root_causes(tmp_path: Path) -> None:
    results = [
        result(
            "cannot import name 'Foo' from 'app.models' (/repo/src/app/models.py)",
            "ImportError",
            nodeid="tests/test_a.py",
            outcome="error",
            when="collect",
        ),
        result(
            "No module named 'app.legacy'",
            "ModuleNotFoundError",
            nodeid="tests/test_b.py",
            outcome="error",
            when="collect",
        ),
        result(
            None,
            None,
            nodeid="tests/test_w.py::test_wait",
            outcome="timeout",
            frames=[("tests/test_w.py", 3, "test_wait"), ("src/app/queue.py", 9, "wait_for_job")],
        ),
        result("assert 3 == 4", nodeid="tests/test_u.py::test_u"),
    ]
    report = triage(run_of(*results), tmp_path, "pytest")
    by_id = {c.id: c for c in report.categories}
    assert [c.id for c in report.categories] == ["collection_error", "timeout", "unknown"]
    assert (
        "Foo from app.models" in by_id["collection_error"].root_cause
        and "app.legacy" in by_id["collection_error"].root_cause
    )
    assert "tests/test_a.py" in by_id["collection_error"].fix_strategy
    assert "src/app/queue.py:wait_for_job" in by_id["timeout"].root_cause
    assert "AssertionError: assert <n> == <n>" in by_id["unknown"].root_cause
    assert {f.outcome for f in report.failures} == {"error", "failed"}


def test_in_repo_virtualenv_frames_are_not_repo_code() -> None:
    r = result(
        "badly formed hexadecimal UUID string",
        "ValueError",
        frames=[
            ("src/app/crud.py", 4, "get"),
            (".venv/lib/python3.11/site-packages/sqlalchemy/sql/sqltypes.py", 9, "process"),
        ],
    )
    assert signature(r).endswith("@ src/app/crud.py:get")
    failure = triage(run_of(r), Path("/repo"), "pytest").failures[0]
    assert (failure.file, failure.line) == ("src/app/crud.py", 4)
