"""`orchestrate triage --junit`: a JUnit XML report from a real `pytest --junitxml` run triages
like the live run of the same repository (node ids, outcomes, categories)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.suite.junit import read_junit
from tests.helpers import cli

PYPROJECT = (
    f'[tool.orchestrator]\ntest-cmd = "{sys.executable} -m pytest"\n'
    'env = { PYTEST_DISABLE_PLUGIN_AUTOLOAD = "1" }\n'
    '[tool.pytest.ini_options]\npythonpath = ["."]\n'
)

FILES = {
    "app/__init__.py": "",
    "app/ids.py": """
        import uuid


        def parse_id(value):
            return uuid.UUID(value)
        """,
    "app/router.py": """
        def get(path):
            return 200 if path == "/users" else 404
        """,
    "app/notify.py": """
        def send(message):
            return message
        """,
    "app/service.py": """
        from app.notify import send


        def signup(name):
            send(name)
        """,
    "tests/__init__.py": "",
    "tests/api/__init__.py": "",
    "tests/api/test_ids.py": """
        import pytest

        from app.ids import parse_id


        class TestIds:
            @pytest.mark.parametrize("value", ["test-id", "user-1", "12345678123456781234567812345678"])
            def test_parse(self, value):
                assert parse_id(value)

            class TestNested:
                def test_deep(self):
                    parse_id("evt-001")


        @pytest.mark.parametrize("path,code", [("/users", 200), ("/api/users", 200)])
        def test_route(path, code):
            from app.router import get

            assert get(path) == code
        """,
    "tests/test_misc.py": """
        import asyncio
        import sqlite3
        from unittest.mock import patch

        import pytest

        from app.service import signup


        @pytest.fixture
        def rows():
            conn = sqlite3.connect(":memory:")
            return conn.execute("SELECT * FROM health_status").fetchall()


        def test_health(rows):
            assert rows == []


        def test_mock():
            with patch("app.notify.send") as send:
                signup("x")
            send.assert_called_once()


        def test_nested_loop():
            async def outer():
                asyncio.run(asyncio.sleep(0))

            asyncio.run(outer())


        def test_logic():
            assert [1, 2] == [2, 1]


        @pytest.mark.skip(reason="later")
        def test_skipped():
            pass


        class TestPlain:
            def test_ok(self):
                pass
        """,
    "tests/test_broken.py": """
        from app.ids import parse_uuid


        def test_never():
            pass
        """,
}

EXPECTED = {
    "tests/api/test_ids.py::TestIds::test_parse[test-id]": ("failed", "uuid_type"),
    "tests/api/test_ids.py::TestIds::test_parse[user-1]": ("failed", "uuid_type"),
    "tests/api/test_ids.py::TestIds::TestNested::test_deep": ("failed", "uuid_type"),
    "tests/api/test_ids.py::test_route[/api/users-200]": ("failed", "api_routing"),
    "tests/test_misc.py::test_health": ("error", "db_schema"),
    "tests/test_misc.py::test_mock": ("failed", "mock_not_called"),
    "tests/test_misc.py::test_nested_loop": ("failed", "async_event_loop"),
    "tests/test_misc.py::test_logic": ("failed", "unknown"),
    "tests/test_broken.py": ("error", "collection_error"),
}


def _triage(*argv: str) -> dict:
    code, out, err = cli("triage", *argv, "--json")
    assert code == 1, err
    return json.loads(out)


@pytest.fixture
def repo(make_repo) -> Path:
    repo = make_repo(FILES, pyproject=PYPROJECT)
    return repo


def _junit(repo: Path, out: Path, family: str = "xunit2") -> Path:
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--continue-on-collection-errors",
            f"--junitxml={out}",
            "-o",
            f"junit_family={family}",
        ],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert out.is_file()
    return out


def _by_test(report: dict) -> dict[str, tuple[str, str]]:
    return {f["nodeid"]: (f["outcome"], f["category"]) for f in report["failures"]}


def test_junit_triage_matches_the_live_run(repo: Path, tmp_path: Path) -> None:
    xml = _junit(repo, tmp_path / "report.xml")
    offline = _triage(str(repo), "--junit", str(xml))
    live = _triage(str(repo), "--no-isolation", "--timeout", "30")
    assert _by_test(live) == EXPECTED
    assert _by_test(offline) == EXPECTED
    assert {c["id"]: sorted(c["tests"]) for c in offline["categories"]} == {
        c["id"]: sorted(c["tests"]) for c in live["categories"]
    }
    assert offline["baseline"]["total"] == live["baseline"]["total"]
    assert offline["baseline"]["skipped"] == live["baseline"]["skipped"] == 1
    assert offline["baseline"]["passed"] == live["baseline"]["passed"]
    uuid_files = next(c for c in offline["categories"] if c["id"] == "uuid_type")["affected_files"]
    assert "tests/api/test_ids.py" in uuid_files and "app/ids.py" in uuid_files
    assert offline["test_command"] == f"junit {xml}"


@pytest.mark.parametrize("family", ["xunit1", "xunit2"])
def test_classnames_map_to_node_ids(repo: Path, tmp_path: Path, family: str) -> None:
    run = read_junit(_junit(repo, tmp_path / f"{family}.xml", family))
    outcomes = {r.nodeid: r.outcome for r in run.results}
    assert outcomes["tests/api/test_ids.py::TestIds::test_parse[test-id]"] == "failed"
    assert (
        outcomes["tests/api/test_ids.py::TestIds::test_parse[12345678123456781234567812345678]"]
        == "passed"
    )
    assert outcomes["tests/api/test_ids.py::TestIds::TestNested::test_deep"] == "failed"
    assert outcomes["tests/api/test_ids.py::test_route[/users-200]"] == "passed"
    assert outcomes["tests/test_misc.py::TestPlain::test_ok"] == "passed"
    assert outcomes["tests/test_misc.py::test_skipped"] == "skipped"
    assert outcomes["tests/test_misc.py::test_health"] == "error"
    assert outcomes["tests/test_broken.py"] == "error"
    health = next(r for r in run.results if r.nodeid == "tests/test_misc.py::test_health")
    assert health.when == "setup"
    assert "no such table: health_status" in health.message
    assert len(outcomes) == len(run.results) == 13
