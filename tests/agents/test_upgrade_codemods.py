"""The upgrade codemods and migration tools on small sources: what each rewrites, what it leaves
alone, and the reason it gives when it declines."""

from __future__ import annotations

import textwrap
from pathlib import Path

import libcst as cst
import pytest

from orchestrator.agents import sqlalchemy2
from orchestrator.agents.dependency_upgrade import DependencyUpgrade
from orchestrator.agents.llm import render_order
from orchestrator.agents.migration_tools import ToolMissing, tool_path
from orchestrator.agents.pytest_contract import (
    PytestContract,
    event_loop,
    nose_to_xunit,
    warns_none,
)
from orchestrator.models import Environment, Failure, PackageChange, WorkOrder


def _code(source: str) -> cst.Module:
    return cst.parse_module(textwrap.dedent(source).lstrip())


def order(category: str, cause: str, files: dict[str, str], root: Path, **extra) -> WorkOrder:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    tests = extra.pop("tests", [f"{next(iter(files), 'tests/test_x.py')}::test_x"])
    failures = [
        Failure(nodeid=t, outcome="failed", category=category, signature="s", message=extra.get("message", ""), file=next(iter(files), None), longrepr=extra.get("longrepr"))
        for t in tests
    ]  # fmt: skip
    return WorkOrder(
        category=category, title=category, tests=tests, affected_files=list(files), root_cause="",
        fix_strategy="", priority="high", agent=category, target=len(tests), failures=failures,
        cause=cause, environment=extra.get("environment"),
    )  # fmt: skip


# --- SQLAlchemy 2.0 ------------------------------------------------------------------------------


def test_select_lists_and_case_lists_are_unpacked() -> None:
    module = _code(
        """
        import sqlalchemy as sa
        q1 = sa.select([t.c.a, t.c.b])
        q2 = select([t], t.c.a == 1)
        q3 = select([*cols])
        c = case([(t.c.a == 1, "one")], else_="many")
        """
    )
    new, rewrite = sqlalchemy2.rewrite(module, sqlalchemy2.Findings(select_list=True))
    assert "sa.select(t.c.a, t.c.b)" in new.code
    assert "select(t).where(t.c.a == 1)" in new.code
    assert "select([*cols])" in new.code  # a starred list is left for a person
    assert 'case((t.c.a == 1, "one"), else_="many")' in new.code
    assert rewrite.done == {"select([...])", "case([...])"}


def test_engine_execute_becomes_a_connection_block_unless_its_result_is_kept() -> None:
    module = _code(
        """
        def purge(engine):
            engine.execute(t.delete())


        def keep(engine):
            result = engine.execute(q)
            return result.fetchall()
        """
    )
    found = sqlalchemy2.Findings(engine_receivers={"engine"})
    new, rewrite = sqlalchemy2.rewrite(module, found)
    assert "with engine.begin() as connection:\n        connection.execute(t.delete())" in new.code
    assert "result = engine.execute(q)" in new.code  # kept for a person
    assert rewrite.skipped == ["the result of engine.execute() is used after its statement"]


def test_only_the_sql_strings_the_errors_name_get_text() -> None:
    text = "ObjectNotExecutableError: Not an executable object: 'SELECT 1'"
    module = _code(
        """
        import sqlite3
        def f(conn, cur):
            conn.execute("SELECT 1")
            conn.execute("SELECT 2")
            cur.execute("SELECT 3")
        """
    )
    new, _ = sqlalchemy2.rewrite(module, sqlalchemy2.findings(text))
    assert 'conn.execute(text("SELECT 1"))' in new.code
    assert 'conn.execute(text("SELECT 2"))' in new.code  # the same receiver, the same mistake
    assert 'cur.execute("SELECT 3")' in new.code
    assert "from sqlalchemy import text" in new.code


def test_sqlalchemy_declines_with_the_versions_when_nothing_matches(tmp_path: Path) -> None:
    env = Environment(
        packages={"SQLAlchemy": "2.0.30"},
        changes=[PackageChange(name="SQLAlchemy", old="1.4.54", new="2.0.30", source="x")],
    )
    work = order(
        "dependency_upgrade",
        "SQLAlchemy",
        {"app.py": "x = 1\n"},
        tmp_path,
        environment=env,
        message="boom",
    )
    proposal = DependencyUpgrade().propose(work, tmp_path, [])
    assert proposal.declined
    assert "SQLAlchemy 2.0's removals" in proposal.explanation


def test_an_unknown_package_is_declined_with_its_versions(tmp_path: Path) -> None:
    env = Environment(changes=[PackageChange(name="attrs", old="21.4", new="23.1", source="x")])
    work = order("dependency_upgrade", "attrs", {"app.py": "x = 1\n"}, tmp_path, environment=env)
    proposal = DependencyUpgrade().propose(work, tmp_path, [])
    assert proposal.declined
    assert proposal.explanation.startswith(
        "No migration tool or codemod covers attrs (21.4 -> 23.1)"
    )


# --- migration tools -----------------------------------------------------------------------------


def test_django_upgrade_runs_from_our_environment_on_the_worktree(tmp_path: Path) -> None:
    files = {
        "app/urls.py": """
            from django.conf.urls import url

            urlpatterns = [url(r"^$", index)]
            """
    }
    env = Environment(packages={"Django": "4.2.1"})
    work = order("dependency_upgrade", "Django", files, tmp_path, environment=env)
    proposal = DependencyUpgrade().propose(work, tmp_path, [])
    assert not proposal.declined, proposal.explanation
    assert "django-upgrade --target-version 4.2.1" in proposal.explanation
    assert "from django.urls import path" in (tmp_path / "app/urls.py").read_text()
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [
        "urls.py"
    ]  # no cache left


def test_a_missing_tool_says_how_to_get_it() -> None:
    with pytest.raises(
        ToolMissing, match=r"no-such-migrator is not installed: install it where orchestrate runs"
    ):
        tool_path("no-such-migrator")


# --- pytest 8 and pytest-asyncio 1.x -------------------------------------------------------------


def test_nose_methods_and_functions_are_renamed_where_pytest_calls_them() -> None:
    new = nose_to_xunit(
        _code(
            """
            import unittest
            def setup():
                pass
            class TestA:
                def setup(self):
                    pass
                def teardown(self):
                    pass
            class TestB:
                def setup_method(self):
                    pass
                def setup(self):
                    pass
            class TestC(unittest.TestCase):
                def setup(self):
                    pass
            """
        )
    )
    assert new is not None
    code = new.code
    assert "def setup_module():" in code
    assert code.count("def setup_method(self):") == 2  # TestA's renamed, TestB's own
    assert "def teardown_method(self):" in code
    assert code.count("def setup(self):") == 2  # TestB (already xunit) and the unittest class
    assert nose_to_xunit(_code("def test_a():\n    pass\n")) is None


def test_warns_none_records_every_warning_instead() -> None:
    new = warns_none(
        _code(
            """
            import pytest
            def test_x():
                with pytest.warns(None) as record:
                    f()
                with pytest.warns(UserWarning):
                    g()
            """
        )
    )
    assert new is not None
    assert "import warnings" in new.code
    assert (
        'with warnings.catch_warnings(record=True) as record:\n        warnings.simplefilter("always")\n        f()'
        in new.code
    )
    assert "pytest.warns(UserWarning)" in new.code


def test_event_loop_fixture_requests_get_a_loop_of_their_own() -> None:
    new = event_loop(
        _code(
            """
            async def test_a(event_loop, db):
                await event_loop.run_in_executor(None, f)
            def test_b(event_loop):
                event_loop.run_until_complete(g())
            """
        )
    )
    assert new is not None
    code = new.code
    assert "async def test_a(db):\n    event_loop = asyncio.get_running_loop()" in code
    assert "def test_b():\n    event_loop = asyncio.new_event_loop()\n    try:" in code
    assert "finally:\n        event_loop.close()" in code
    assert code.startswith("import asyncio")


def test_contract_specialist_declines_with_the_contract_when_no_file_shows_it(
    tmp_path: Path,
) -> None:
    work = order(
        "test_framework_contract",
        "warns-none",
        {"tests/test_x.py": "def test_x():\n    pass\n"},
        tmp_path,
    )
    proposal = PytestContract().propose(work, tmp_path, [])
    assert proposal.declined
    assert proposal.explanation.startswith("pytest 8 rejects pytest.warns(None)")
    assert (
        PytestContract()
        .propose(
            order("test_framework_contract", "yield-tests", {}, tmp_path, tests=[]), tmp_path, []
        )
        .explanation.startswith("No codemod for the contract change yield-tests")
    )


# --- the model's work order ----------------------------------------------------------------------


def test_the_models_work_order_names_the_package_and_versions(tmp_path: Path) -> None:
    env = Environment(
        python="3.12.1",
        packages={"numpy": "2.1.3", "pytest": "8.3.0"},
        changes=[
            PackageChange(
                name="numpy", old="1.26.4", new="2.1.3", source="requirements.txt since abc1234"
            )
        ],
    )
    work = order("dependency_upgrade", "numpy", {"app.py": "x = 1\n"}, tmp_path, environment=env)
    text = render_order(work)
    assert "## Environment (the target's own interpreter)" in text
    assert "- changed: numpy 1.26.4 -> 2.1.3 (requirements.txt since abc1234)" in text
    assert "- installed: numpy 2.1.3" in text and "Python 3.12.1" in text
    assert "read that package's installed source" in text
