"""Upgrade breakage end to end: real repos whose suites went red after one real dependency bump.

Each repo's history pins the old version and a later commit bumps it to the version that is
installed (real packages, real pytest): pytest 7.4.4 -> 8 with nose-style setup and
`pytest.warns(None)`, SQLAlchemy 1.4.54 -> 2.x with `select([...])`, `engine.execute()` and plain
SQL strings, pydantic 1.10.21 -> 2.x, pytest-asyncio 0.21.2 -> 1.x with the removed `event_loop`
fixture, and numpy 1.26.4 -> 2.1.3 in a virtualenv this module makes (once). Each test asserts
what a user needs: the category, the package and versions named, the fix merged, the suite green.
Offline throughout: no ANTHROPIC_API_KEY.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.agents.test_specialists_e2e import agent, assert_all_fixed, run, show
from tests.helpers import git, write_files

PYTEST = version("pytest")
SQLALCHEMY = version("SQLAlchemy")
PYDANTIC = version("pydantic")
PYTEST_ASYNCIO = version("pytest-asyncio")
NUMPY_NEW = "2.1.3"


def pyproject(command: str = f"{sys.executable} -m pytest", ini: str = "") -> str:
    text = (
        f"[tool.orchestrator]\ntest-cmd = {json.dumps(command)}\n"
        'env = { PYTEST_DISABLE_PLUGIN_AUTOLOAD = "1" }\n'
    )
    return text + (f"\n[tool.pytest.ini_options]\n{ini}" if ini else "")


def bumped_repo(root: Path, files: dict[str, str], pins: dict[str, tuple[str, str]]) -> Path:
    """A repo whose first commit pins the old versions and whose last bumps them (as a
    dependabot PR would): the breakage arrives with the bump."""
    root.mkdir()
    old = "".join(f"{name}=={a}\n" for name, (a, _) in pins.items())
    new = "".join(f"{name}=={b}\n" for name, (_, b) in pins.items())
    write_files(root, {**files, "requirements.txt": old})
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "the project, green with the old versions")
    (root / "requirements.txt").write_text(new, encoding="utf-8")
    git(root, "commit", "-q", "-am", "Bump dependencies")
    return root


def triage_json(repo: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "triage", str(repo), "--json", "--no-isolation"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1, proc.stderr  # tests fail: pytest's exit code
    return json.loads(proc.stdout)


def items(report: dict, cid: str) -> list[dict]:
    return [c for c in report["categories"] if c["id"] == cid]


# --- pytest 7 -> 8: nose-style setup and pytest.warns(None) -------------------------------------

PYTEST8 = {
    "tests/__init__.py": "",
    "tests/test_cart.py": """
        import warnings

        import pytest

        ITEMS = []


        def setup():
            ITEMS.append("module")


        def test_module_setup_ran():
            assert ITEMS[:1] == ["module"]


        class TestCart:
            def setup(self):
                self.cart = {"apple": 2}

            def teardown(self):
                self.cart.clear()

            def test_count(self):
                assert self.cart["apple"] == 2

            def test_add(self):
                self.cart["pear"] = 1
                assert len(self.cart) == 2


        def test_legacy_api_warns():
            with pytest.warns(None) as record:
                warnings.warn("old", DeprecationWarning)
            assert len(record) == 1
    """,
}


def test_pytest_8_contract_changes_are_named_and_fixed(tmp_path: Path, capsys) -> None:
    repo = bumped_repo(
        tmp_path / "cart", {**PYTEST8, "pyproject.toml": pyproject()}, {"pytest": ("7.4.4", PYTEST)}
    )
    report = run(repo, tmp_path, capsys)
    triaged = triage_json(repo)
    contract = items(triaged, "test_framework_contract")
    assert {c["title"].split(": ")[-1] for c in contract} == {"nose-setup", "warns-none"}
    nose = next(c for c in contract if "nose-setup" in c["title"])
    assert nose["count"] == 3 and "pytest 8 no longer calls nose-style" in nose["root_cause"]
    assert f"pytest {PYTEST} installed (pytest 7.4.4 -> {PYTEST}" in nose["root_cause"]
    assert "setup_method/teardown_method" in nose["fix_strategy"]
    assert triaged["environment"]["changes"] == [
        {
            "name": "pytest",
            "old": "7.4.4",
            "new": PYTEST,
            "source": triaged["environment"]["changes"][0]["source"],
        }
    ]
    results = [a for a in report["agents"] if a["category"] == "test_framework_contract"]
    assert [r["status"] for r in results] == ["accepted", "accepted"], results
    assert report["after"]["failed"] + report["after"]["errors"] == 0
    assert report["after"]["passed"] == report["before"]["total"] == 4
    fixed = show(repo, report, "tests/test_cart.py")
    assert "def setup_method(self):" in fixed and "def teardown_method(self):" in fixed
    assert "def setup_module():" in fixed
    assert "warnings.catch_warnings(record=True) as record" in fixed


# --- SQLAlchemy 1.4 -> 2.x -----------------------------------------------------------------------

SQLA = {
    "shop/__init__.py": "",
    "shop/db.py": """
        import sqlite3

        from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, select

        metadata = MetaData()
        users = Table(
            "users", metadata, Column("id", Integer, primary_key=True), Column("name", String)
        )


        def make_engine():
            engine = create_engine("sqlite://")
            metadata.create_all(engine)
            with engine.begin() as conn:
                conn.execute(users.insert(), [{"name": "ann"}, {"name": "bob"}])
            return engine


        def names(engine):
            with engine.connect() as conn:
                return [row.name for row in conn.execute(select([users.c.name]).order_by(users.c.id))]


        def count(engine):
            return engine.execute(select([users.c.id])).fetchall()


        def rename(engine, old, new):
            engine.execute(users.update().where(users.c.name == old).values(name=new))


        def raw_total(engine):
            with engine.connect() as conn:
                return conn.execute("SELECT count(*) FROM users").scalar()


        def audit_log():
            db = sqlite3.connect(":memory:")
            return db.execute("SELECT 1").fetchone()[0]
    """,
    "tests/__init__.py": "",
    "tests/test_db.py": """
        from shop.db import audit_log, count, make_engine, names, raw_total, rename


        def test_names():
            assert names(make_engine()) == ["ann", "bob"]


        def test_count():
            assert len(count(make_engine())) == 2


        def test_rename():
            engine = make_engine()
            rename(engine, "ann", "anna")
            assert names(engine) == ["anna", "bob"]


        def test_raw_total():
            assert raw_total(make_engine()) == 2


        def test_audit_log():
            assert audit_log() == 1
    """,
}


def test_sqlalchemy_2_removals_are_named_and_migrated(tmp_path: Path, capsys) -> None:
    repo = bumped_repo(
        tmp_path / "shop",
        {**SQLA, "pyproject.toml": pyproject()},
        {"SQLAlchemy": ("1.4.54", SQLALCHEMY)},
    )
    triaged = triage_json(repo)
    (upgrade,) = items(triaged, "dependency_upgrade")
    assert upgrade["count"] == 4 and upgrade["agent"] == "dependency_upgrade"
    assert (
        f"SQLAlchemy {SQLALCHEMY} installed (SQLAlchemy 1.4.54 -> {SQLALCHEMY}"
        in upgrade["root_cause"]
    )
    assert "select(a, b) instead of select([a, b])" in upgrade["fix_strategy"]
    assert "pin SQLAlchemy back to 1.4.54" in upgrade["fix_strategy"]

    report = run(repo, tmp_path, capsys)
    result = assert_all_fixed(report, "dependency_upgrade", 4)
    assert f"SQLAlchemy (1.4.54 -> {SQLALCHEMY})" in report_explanation(repo, report)
    fixed = show(repo, report, "shop/db.py")
    assert "select(users.c.name)" in fixed and "select(users.c.id)" in fixed
    assert "with engine.begin() as connection:" in fixed
    assert 'conn.execute(text("SELECT count(*) FROM users"))' in fixed
    assert 'db.execute("SELECT 1")' in fixed  # sqlite3's execute is left alone
    assert "from sqlalchemy import" in fixed and "text" in fixed
    assert result["files_changed"] == ["shop/db.py"]
    handoff = Path(report["handoff"]).read_text(encoding="utf-8")
    environment = handoff[handoff.index("## Environment") :]
    assert f"- Changed: `SQLAlchemy 1.4.54 -> {SQLALCHEMY} (requirements.txt since" in environment


def report_explanation(repo: Path, report: dict) -> str:
    """The merge commit message of the category's branch (its explanation)."""
    return git(repo, "log", "--format=%B", "-n", "1", report["integration_branch"])


# --- pydantic 1 -> 2 ----------------------------------------------------------------------------

PYDANTIC_FILES = {
    "accounts/__init__.py": "",
    "accounts/schemas.py": """
        from pydantic import BaseModel, Field, root_validator, validator


        class Signup(BaseModel):
            name: str = Field(..., regex="^[a-z]+$")
            age: int

            class Config:
                orm_mode = True

            @validator("age")
            def adult(cls, value):
                if value < 18:
                    raise ValueError("too young")
                return value

            @root_validator
            def not_admin(cls, values):
                if values.get("name") == "admin":
                    raise ValueError("reserved")
                return values
    """,
    "tests/__init__.py": "",
    "tests/test_schemas.py": """
        import pytest
        from pydantic import ValidationError

        from accounts.schemas import Signup


        def test_valid():
            assert Signup(name="ann", age=30).age == 30


        def test_too_young():
            with pytest.raises(ValidationError):
                Signup(name="ann", age=3)


        def test_reserved():
            with pytest.raises(ValidationError):
                Signup(name="admin", age=30)
    """,
}


def test_pydantic_2_migration_by_bump_pydantic(tmp_path: Path, capsys) -> None:
    repo = bumped_repo(
        tmp_path / "accounts",
        {**PYDANTIC_FILES, "pyproject.toml": pyproject(ini='pythonpath = ["."]\n')},
        {"pydantic": ("1.10.21", PYDANTIC)},
    )
    triaged = triage_json(repo)
    (upgrade,) = items(triaged, "dependency_upgrade")
    assert upgrade["tests"] == ["tests/test_schemas.py"]  # the project failed to import
    assert f"pydantic 1.10.21 -> {PYDANTIC}" in upgrade["root_cause"]
    assert "bump-pydantic" in upgrade["fix_strategy"]
    report = run(repo, tmp_path, capsys)
    result = agent(report, "dependency_upgrade")
    assert result["status"] == "accepted", result["reason"]
    assert (report["after"]["failed"], report["after"]["errors"], report["after"]["passed"]) == (
        0,
        0,
        3,
    )
    fixed = show(repo, report, "accounts/schemas.py")
    assert (
        'pattern="^[a-z]+$"' in fixed and "model_config = ConfigDict(from_attributes=True)" in fixed
    )
    assert "@root_validator(skip_on_failure=True)" in fixed


# --- pytest-asyncio 0.21 -> 1.x: the event_loop fixture is gone -------------------------------

ASYNC_FILES = {
    "tests/__init__.py": "",
    "tests/test_loop.py": """
        import asyncio

        import pytest


        async def test_scheduled(event_loop):
            future = event_loop.create_future()
            event_loop.call_soon(future.set_result, 7)
            assert await future == 7


        def test_sync_runs_a_coroutine(event_loop):
            assert event_loop.run_until_complete(asyncio.sleep(0, result=3)) == 3
    """,
}


def test_pytest_asyncio_event_loop_fixture_removed(tmp_path: Path, capsys) -> None:
    command = f"{sys.executable} -m pytest -p pytest_asyncio.plugin"
    repo = bumped_repo(
        tmp_path / "loop",
        {**ASYNC_FILES, "pyproject.toml": pyproject(command, 'asyncio_mode = "auto"\n')},
        {"pytest-asyncio": ("0.21.2", PYTEST_ASYNCIO)},
    )
    report = run(repo, tmp_path, capsys)
    result = assert_all_fixed(report, "test_framework_contract", 2)
    assert result["files_changed"] == ["tests/test_loop.py"]
    fixed = show(repo, report, "tests/test_loop.py")
    assert "async def test_scheduled():" in fixed
    assert "event_loop = asyncio.get_running_loop()" in fixed
    assert "event_loop = asyncio.new_event_loop()" in fixed and "event_loop.close()" in fixed


# --- numpy 1 -> 2, in a virtualenv of its own -----------------------------------------------------


@pytest.fixture(scope="module")
def numpy2_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """numpy 2 from the package index, pytest from this environment (a .pth): made once."""
    venv, error = make_numpy2_venv(tmp_path_factory.mktemp("numpy2") / "venv")
    if error:
        pytest.skip(f"numpy {NUMPY_NEW} could not be installed: {error}")
    return venv


def make_numpy2_venv(venv: Path) -> tuple[Path, str]:
    """(the venv, "" or why numpy could not be installed)."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    ours = subprocess.run(
        [sys.executable, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    (Path(site) / "orchestrate_tests.pth").write_text(ours + "\n", encoding="utf-8")
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", f"numpy=={NUMPY_NEW}"],
        capture_output=True,
        text=True,
    )
    return venv, install.stderr[-300:] if install.returncode else ""


NUMPY_FILES = {
    "stats/__init__.py": "",
    "stats/core.py": """
        import numpy as np

        MISSING = np.NaN


        def mean(values):
            data = np.array(values, dtype=np.float_)
            return float(np.sum(data) / len(data))


        def product(values):
            return float(np.product(values))
    """,
    "tests/__init__.py": "",
    "tests/test_core.py": """
        from stats.core import mean, product


        def test_mean():
            assert mean([1, 2, 3]) == 2.0


        def test_product():
            assert product([2, 3]) == 6.0
    """,
    "tests/test_missing.py": """
        import math

        from stats import core


        def test_missing_is_nan():
            assert math.isnan(core.MISSING)
    """,
    ".gitignore": ".venv\n",
}


def test_numpy_2_removed_aliases_fixed_by_ruff(tmp_path: Path, capsys, numpy2_venv: Path) -> None:
    # The README's own relative command: `run` finds the repo's .venv from its worktrees too.
    repo = bumped_repo(
        tmp_path / "stats",
        {
            **NUMPY_FILES,
            "pyproject.toml": pyproject(".venv/bin/python -m pytest", 'pythonpath = ["."]\n'),
        },
        {"numpy": ("1.26.4", NUMPY_NEW)},
    )
    (repo / ".venv").symlink_to(numpy2_venv)
    triaged = triage_json(repo)
    (upgrade,) = items(triaged, "dependency_upgrade")
    assert sorted(upgrade["tests"]) == ["tests/test_core.py", "tests/test_missing.py"]
    assert f"numpy {NUMPY_NEW} installed (numpy 1.26.4 -> {NUMPY_NEW}" in upgrade["root_cause"]
    assert "the project's own" not in upgrade["root_cause"]
    assert "NPY201" in upgrade["fix_strategy"]
    failure = next(f for f in triaged["failures"] if f["nodeid"] == "tests/test_core.py")
    assert (failure["file"], failure["line"]) == ("stats/core.py", 3)  # the project's own frame
    assert not failure["message"].startswith("AttributeError")  # the type is not doubled

    report = run(repo, tmp_path, capsys)
    result = agent(report, "dependency_upgrade")
    assert result["status"] == "accepted", result["reason"]
    assert sorted(result["fixed"]) == ["tests/test_core.py", "tests/test_missing.py"]
    assert (report["after"]["failed"], report["after"]["errors"], report["after"]["passed"]) == (
        0,
        0,
        3,
    )
    fixed = show(repo, report, "stats/core.py")
    assert "np.nan" in fixed and "np.float64" in fixed and "np.prod(" in fixed
