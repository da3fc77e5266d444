"""`orchestrate triage` end to end: a throwaway repository with a real failure of every category,
run through the real CLI and real pytest; and every kind of bad input as a one-line error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.categories import CATEGORY_IDS
from tests.helpers import cli, commit_all, write_files

PYTEST_CMD = f"{sys.executable} -m pytest"


def _pyproject(extra_env: str = "") -> str:
    return (
        f'[tool.orchestrator]\ntest-cmd = "{PYTEST_CMD}"\n'
        f'env = {{ PYTEST_DISABLE_PLUGIN_AUTOLOAD = "1"{extra_env} }}\n'
        '[tool.pytest.ini_options]\npythonpath = ["."]\n'
    )


SOURCES = {
    "app/__init__.py": "",
    "app/models.py": """
        from sqlalchemy import Boolean, Integer, String
        from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


        class Base(DeclarativeBase):
            pass


        class Widget(Base):
            __tablename__ = "widgets"
            id: Mapped[int] = mapped_column(Integer, primary_key=True)
            name: Mapped[str] = mapped_column(String(50))
            active: Mapped[bool] = mapped_column(Boolean, default=True)
        """,
    "app/ids.py": """
        import uuid


        def parse_id(value):
            return uuid.UUID(value)
        """,
    "app/users.py": """
        import sqlite3


        def connect():
            conn = sqlite3.connect(":memory:")
            conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT UNIQUE)")
            return conn


        def insert(conn, name):
            with conn:
                conn.execute("INSERT INTO users (name) VALUES (?)", (name,))


        def create_user(conn, name):
            try:
                insert(conn, name)
            except sqlite3.IntegrityError:
                return 409
            return 201
        """,
    "app/router.py": """
        ROUTES = {"/users": lambda: (200, [])}


        def get(path):
            handler = ROUTES.get(path)
            return handler()[0] if handler else 404
        """,
    "app/schemas.py": """
        import uuid

        from pydantic import BaseModel, ValidationError


        class UserIn(BaseModel):
            id: uuid.UUID
            name: str


        def post_user(payload):
            try:
                UserIn(**payload)
            except ValidationError:
                return 422
            return 201
        """,
    "app/containers.py": """
        import subprocess


        def unpause(name):
            subprocess.run(["docker", "unpause", name], check=True, capture_output=True)
        """,
    "bin/docker": """
        #!/bin/sh
        echo "Error response from daemon: Container $2 is not paused" >&2
        exit 1
        """,
    "app/sync.py": """
        import asyncio


        def run_sync(coro):
            return asyncio.run(coro)
        """,
    "app/notify.py": """
        def send(message):
            return message
        """,
    "app/service.py": """
        from app.notify import send


        def signup(name):
            send(f"welcome {name}")
        """,
    "app/health.py": """
        import sqlite3


        def latest_status():
            conn = sqlite3.connect(":memory:")
            return conn.execute("SELECT * FROM health_status").fetchall()
        """,
    "app/tables.py": """
        from sqlalchemy import Column, Integer, Table


        def audit_table(metadata):
            return Table("audit", metadata, Column("id", Integer, primary_key=True))
        """,
    "app/store.py": """
        from sqlalchemy import create_engine
        from sqlalchemy.orm import Session

        from app.models import Base, Widget


        def save_twice():
            engine = create_engine("sqlite://")
            Base.metadata.create_all(engine)
            with Session(engine) as session:
                with session.begin():
                    session.add(Widget(name="a"))
                    session.commit()
                    session.add(Widget(name="b"))
                    session.flush()
        """,
    "app/calc.py": """
        def add(a, b):
            return a + b
        """,
    "app/report.py": """
        from sqlalchemy import column, select


        def widget_ids():
            return select([column("id")])
        """,
}

TESTS = {
    "tests/test_async.py": """
        import asyncio

        from app.sync import run_sync


        async def inner():
            return 1


        def test_nested_run():
            async def outer():
                return run_sync(inner())

            assert asyncio.run(outer()) == 1
        """,
    "tests/test_broken.py": """
        from app.models import Gadget


        def test_gadget():
            assert Gadget
        """,
    "tests/test_conflict.py": """
        from app.users import connect, create_user, insert


        def test_create_twice():
            conn = connect()
            assert create_user(conn, "alice") == 201
            assert create_user(conn, "alice") == 201


        def test_raw_duplicate():
            conn = connect()
            insert(conn, "bob")
            insert(conn, "bob")
        """,
    "tests/test_docker.py": """
        from app.containers import unpause


        def test_resume_redis():
            unpause("cos_redis")
        """,
    "tests/test_hang.py": """
        import time


        def test_before_hang():
            pass


        def test_hang():
            time.sleep(60)


        def test_after_hang():
            pass
        """,
    "tests/test_logic.py": """
        from app.calc import add


        def test_add():
            assert add(2, 2) == 5


        def test_add_ok():
            assert add(2, 3) == 5
        """,
    "tests/test_mapper.py": """
        from sqlalchemy import MetaData

        from app.tables import audit_table


        def test_define_twice():
            metadata = MetaData()
            audit_table(metadata)
            audit_table(metadata)
        """,
    "tests/test_mock.py": """
        from unittest.mock import patch

        from app.service import signup


        def test_welcome_sent():
            with patch("app.notify.send") as send:
                signup("carol")
            send.assert_called_once()
        """,
    "tests/test_models.py": """
        from app.models import Widget


        def test_active_by_default():
            widget = Widget(name="a")
            assert widget.active is True


        def test_active_for_named():
            w = Widget(name="named")
            assert w.active is True


        def test_active_in_list():
            widgets = [Widget(name=str(i)) for i in range(2)]
            assert widgets[0].active is True


        def test_name_kept():
            assert Widget(name="x").name == "x"
        """,
    "tests/test_routing.py": """
        from app.router import get


        def test_list_users():
            assert get("/api/users") == 200


        def test_users_mounted():
            assert get("/users") == 200
        """,
    "tests/test_schema.py": """
        from app.health import latest_status


        def test_health():
            assert latest_status() == []
        """,
    "tests/test_transaction.py": """
        from app.store import save_twice


        def test_save_twice():
            save_twice()
        """,
    "tests/test_uuid.py": """
        from app.ids import parse_id


        def test_parse_fixture_id():
            assert parse_id("test-id")


        def test_parse_other_id():
            assert parse_id("user-42")
        """,
    "tests/test_upgrade.py": """
        from app.report import widget_ids


        def test_widget_ids():
            assert widget_ids() is not None


        class TestLegacySetup:
            def setup(self):
                self.items = [1, 2]

            def test_items(self):
                assert len(self.items) == 2
        """,
    "tests/test_validation.py": """
        import pytest
        from app.schemas import UserIn, post_user


        def test_post_user():
            assert post_user({"id": "test-id", "name": "dave"}) == 201


        def test_model_directly():
            UserIn(id="not-a-uuid", name="erin")
        """,
}

EXPECTED = {
    "model_defaults": {
        "tests/test_models.py::test_active_by_default",
        "tests/test_models.py::test_active_for_named",
        "tests/test_models.py::test_active_in_list",
    },
    "uuid_type": {
        "tests/test_uuid.py::test_parse_fixture_id",
        "tests/test_uuid.py::test_parse_other_id",
    },
    "api_conflict": {
        "tests/test_conflict.py::test_create_twice",
        "tests/test_conflict.py::test_raw_duplicate",
    },
    "api_routing": {"tests/test_routing.py::test_list_users"},
    "validation_error": {
        "tests/test_validation.py::test_post_user",
        "tests/test_validation.py::test_model_directly",
    },
    "docker_lifecycle": {"tests/test_docker.py::test_resume_redis"},
    "async_event_loop": {"tests/test_async.py::test_nested_run"},
    "mock_not_called": {"tests/test_mock.py::test_welcome_sent"},
    "db_schema": {"tests/test_schema.py::test_health"},
    "mapper_conflict": {"tests/test_mapper.py::test_define_twice"},
    "transaction_state": {"tests/test_transaction.py::test_save_twice"},
    "timeout": {"tests/test_hang.py::test_hang"},
    "collection_error": {"tests/test_broken.py"},
    "dependency_upgrade": {"tests/test_upgrade.py::test_widget_ids"},
    "test_framework_contract": {"tests/test_upgrade.py::TestLegacySetup::test_items"},
    "unknown": {"tests/test_logic.py::test_add"},
}

# the source file each category's traceback goes through (besides the test file)
SOURCE_OF = {
    "uuid_type": "app/ids.py",
    "api_conflict": "app/users.py",
    "docker_lifecycle": "app/containers.py",
    "async_event_loop": "app/sync.py",
    "db_schema": "app/health.py",
    "mapper_conflict": "app/tables.py",
    "transaction_state": "app/store.py",
    "dependency_upgrade": "app/report.py",
}

CONTRACT_KEYS = {
    # `environment` is our extension (the installed packages and what changed)
    "top": {
        "repo",
        "test_command",
        "baseline",
        "failures",
        "categories",
        "slow_tests",
        "environment",
    },
    "baseline": {"total", "passed", "failed", "errors", "skipped", "duration_s"},
    "failure": {
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
    },
    "category": {
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
    },
    "slow_test": {"nodeid", "duration_s"},
}


def _triage(*argv: str) -> tuple[int, str, str]:
    return cli("triage", *argv)


@pytest.fixture(scope="module")
def broken_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("cli") / "broken"
    repo.mkdir()
    path = f"{repo / 'bin'}{os.pathsep}{os.environ['PATH']}"
    write_files(repo, {"pyproject.toml": _pyproject(f', PATH = "{path}"'), **SOURCES, **TESTS})
    (repo / "bin" / "docker").chmod(0o755)
    commit_all(repo)
    return repo


@pytest.fixture(scope="module")
def triaged(broken_repo: Path) -> tuple[dict, float]:
    old_env = {k: os.environ.pop(k, None) for k in ("PYTHONPATH", "PYTEST_ADDOPTS")}
    started = time.monotonic()
    try:
        code, out, err = _triage(str(broken_repo), "--json", "--no-isolation", "--timeout", "2")
    finally:
        os.environ.update({k: v for k, v in old_env.items() if v is not None})
    assert code == 1, err
    return json.loads(out), time.monotonic() - started


def _category(report: dict, cid: str) -> dict:
    found = [c for c in report["categories"] if c["id"] == cid]
    assert len(found) == 1, f"{cid} missing: {[c['id'] for c in report['categories']]}"
    return found[0]


def test_every_category_holds_its_tests(triaged) -> None:
    report, _ = triaged
    got = {c["id"]: set(c["tests"]) for c in report["categories"]}
    assert got == EXPECTED
    assert set(EXPECTED) == set(CATEGORY_IDS) - {"test_isolation"}
    by_test = {f["nodeid"]: f["category"] for f in report["failures"]}
    for cid, tests in EXPECTED.items():
        assert {by_test[t] for t in tests} == {cid}
        assert _category(report, cid)["count"] == len(tests)


def test_counts_and_the_hang(triaged) -> None:
    report, elapsed = triaged
    baseline = report["baseline"]
    # 20 failing tests (the hang counts as failed) + 1 collection error; passes: name_kept,
    # add_ok, users_mounted and the two tests around the hang
    assert baseline["failed"] == sum(len(t) for t in EXPECTED.values()) - 1 == 20
    assert baseline["errors"] == 1
    assert baseline["passed"] == 5
    assert baseline["total"] == 26
    assert elapsed < 60
    failures = {f["nodeid"]: f for f in report["failures"]}
    hang = failures["tests/test_hang.py::test_hang"]
    assert hang["outcome"] == "failed"
    assert hang["duration_s"] == 2.0
    assert "timeout" in hang["message"]
    # tests after the hang (same file, later files) still ran
    assert "tests/test_hang.py::test_after_hang" not in failures
    assert "tests/test_validation.py::test_post_user" in failures
    assert report["slow_tests"][0] == {"nodeid": "tests/test_hang.py::test_hang", "duration_s": 2.0}
    assert failures["tests/test_broken.py"]["outcome"] == "error"


def test_one_cause_one_signature(triaged) -> None:
    report, _ = triaged
    failures = {f["nodeid"]: f for f in report["failures"]}
    model_sigs = {failures[t]["signature"] for t in EXPECTED["model_defaults"]}
    assert len(model_sigs) == 1
    (sig,) = model_sigs
    assert "assert None is True" in sig and ".active" in sig
    assert "0x" not in sig.replace("0x?", "")
    uuid_sigs = {failures[t]["signature"] for t in EXPECTED["uuid_type"]}
    assert len(uuid_sigs) == 1
    assert next(iter(uuid_sigs)).endswith("@ app/ids.py:parse_id")
    # different causes never share a signature
    sigs = [failures[next(iter(t))]["signature"] for t in EXPECTED.values()]
    assert len(set(sigs)) == len(sigs)


def test_affected_files_are_repo_relative(triaged) -> None:
    report, _ = triaged
    for cid, tests in EXPECTED.items():
        files = _category(report, cid)["affected_files"]
        for test in tests:
            assert test.split("::")[0] in files
        if cid in SOURCE_OF:
            assert SOURCE_OF[cid] in files, (cid, files)
        assert all(not f.startswith("/") for f in files), files
    failures = {f["nodeid"]: f for f in report["failures"]}
    uuid_failure = failures["tests/test_uuid.py::test_parse_fixture_id"]
    assert (uuid_failure["file"], uuid_failure["line"]) == ("app/ids.py", 5)


def test_json_is_exactly_the_contract(triaged, broken_repo: Path) -> None:
    report, _ = triaged
    assert set(report) == CONTRACT_KEYS["top"]
    assert set(report["baseline"]) == CONTRACT_KEYS["baseline"]
    assert report["repo"] == str(broken_repo.resolve())
    assert report["test_command"].startswith(PYTEST_CMD)
    for failure in report["failures"]:
        assert set(failure) == CONTRACT_KEYS["failure"]
        assert failure["outcome"] in ("failed", "error")
        assert failure["isolation"] is None and failure["polluter"] is None
    for category in report["categories"]:
        assert set(category) == CONTRACT_KEYS["category"]
        assert category["priority"] in ("critical", "high", "medium", "low")
    for slow in report["slow_tests"]:
        assert set(slow) == CONTRACT_KEYS["slow_test"]
    first = [c["id"] for c in report["categories"]][:4]
    assert set(first) == {"timeout", "collection_error", "docker_lifecycle", "dependency_upgrade"}


def test_readable_output_names_the_categories(make_repo) -> None:
    repo = make_repo(
        {
            "tests/test_small.py": """
                import uuid

                def test_id():
                    uuid.UUID("test-id")

                def test_logic():
                    assert sum([1, 2]) == 4

                def test_ok():
                    pass
                """
        }
    )
    code, out, err = _triage(str(repo), "--no-isolation")
    assert code == 1, err
    assert "uuid_type" in out and "unknown" in out
    assert "3 tests: 1 passed, 2 failed" in out
    assert "Failure categories" in out
    assert "tests/test_small.py::test_id" in err  # progress lines on stderr name each test
    assert "tests/test_small.py::test_id" not in out.split("Failure categories")[0]


# --- bad input -------------------------------------------------------------------------------


def _one_line_error(argv: list[str], exit_code: int = 2) -> str:
    code, out, err = _triage(*argv)
    assert code == exit_code, (out, err)
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("orchestrate: error: ")
    return lines[0]


def test_missing_path(tmp_path: Path) -> None:
    line = _one_line_error([str(tmp_path / "nowhere"), "--json"])
    assert "nowhere does not exist" in line


def test_not_a_git_repository(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "test_a.py").write_text("def test_a():\n    pass\n")
    line = _one_line_error([str(tmp_path / "plain"), "--json"])
    assert "is not a git repository" in line and "git init" in line


def test_no_tests_collected(make_repo) -> None:
    repo = make_repo({"app.py": "X = 1\n"})
    line = _one_line_error([str(repo), "--json", "--no-isolation"], exit_code=5)
    assert "no tests collected" in line and str(repo) in line


def test_pytest_not_importable(make_repo, tmp_path: Path) -> None:
    venv = tmp_path / "bare-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    repo = make_repo({"tests/test_a.py": "def test_a():\n    pass\n"})
    line = _one_line_error([str(repo), "--json", "--test-cmd", f"{python} -m pytest"])
    assert f"pytest is not importable by {python}" in line
    assert "pip install pytest" in line


def test_test_command_that_crashes(make_repo) -> None:
    repo = make_repo({"tests/test_a.py": "def test_a():\n    pass\n"})
    cmd = f"{sys.executable} -c 'print(\"database unreachable at startup\"); raise SystemExit(3)'"
    line = _one_line_error([str(repo), "--json", "--no-isolation", "--test-cmd", cmd])
    assert "exit code 3" in line
    assert "database unreachable at startup" in line


def test_unreadable_junit(tmp_path: Path) -> None:
    bad = tmp_path / "report.xml"
    bad.write_text("<testsuite><testcase name='a'")
    line = _one_line_error(["--junit", str(bad), "--json"])
    assert "not readable XML" in line and str(bad) in line


def test_missing_junit(tmp_path: Path) -> None:
    line = _one_line_error(["--junit", str(tmp_path / "absent.xml"), "--json"])
    assert "absent.xml does not exist" in line
