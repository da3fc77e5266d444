"""Triage of upgrade breakage: environment facts, collection errors told from their deepest
project frame, nose-style setup seen in the test file, one plan item per cause."""

from __future__ import annotations

import sys
from importlib.metadata import version
from pathlib import Path

from orchestrator.models import Environment, SuiteRun, TestResult
from orchestrator.run.plan import plan
from orchestrator.suite.config import run_spec
from orchestrator.suite.runner import run_suite
from orchestrator.triage import triage
from orchestrator.triage.environment import environment_facts, pins
from tests.helpers import git, write_files


def _run(repo: Path) -> SuiteRun:
    return run_suite(run_spec(repo, test_cmd=f"{sys.executable} -m pytest"))


# --- collection errors ---------------------------------------------------------------------------

BROKEN_IMPORTS = {
    "app/__init__.py": "",
    "app/config.py": 'import os\n\nSECRET = os.environ["SHOP_SECRET_KEY"]\n',
    "tests/test_a.py": "from app.config import SECRET\n\n\ndef test_a():\n    assert SECRET\n",
    "tests/test_b.py": "from app.config import SECRET\n\n\ndef test_b():\n    assert SECRET\n",
    "tests/test_c.py": "from app import gone_name\n\n\ndef test_c():\n    pass\n",
}


def test_collection_errors_name_the_project_frame_and_the_moved_name(make_repo) -> None:
    repo = make_repo(
        BROKEN_IMPORTS,
        pyproject='[tool.orchestrator]\nenv = { PYTEST_DISABLE_PLUGIN_AUTOLOAD = "1" }\n'
        '[tool.pytest.ini_options]\npythonpath = ["."]\n',
    )
    report = triage(_run(repo), repo, "pytest")
    failures = {f.nodeid: f for f in report.failures}
    # the deepest frame in the project's own code, not the test that imported it
    assert (failures["tests/test_a.py"].file, failures["tests/test_a.py"].line) == (
        "app/config.py",
        3,
    )
    assert (failures["tests/test_c.py"].file, failures["tests/test_c.py"].line) == (
        "tests/test_c.py",
        1,
    )
    assert failures["tests/test_a.py"].message == "'SHOP_SECRET_KEY'"  # the type is not doubled
    (category,) = report.categories
    assert category.id == "collection_error" and category.count == 3
    assert category.root_cause.startswith("3 test modules could not be collected")
    assert "the project's own code fails to import at app/config.py:3 (2)" in category.root_cause
    assert "gone_name from app in tests/test_c.py:1" in category.root_cause
    assert "AttributeError: AttributeError" not in category.root_cause
    assert category.fix_strategy.startswith(
        "fix the project's import-time error at app/config.py:3 (2) (not the tests)"
    )


# --- environment facts ---------------------------------------------------------------------------


def test_the_baseline_reads_the_targets_installed_versions(make_repo) -> None:
    repo = make_repo({"tests/test_ok.py": "def test_ok():\n    pass\n"})
    env = _run(repo).environment
    assert env is not None and env.python == sys.version.split()[0]
    assert env.version("pytest") == version("pytest")
    assert env.distribution("yaml") == "PyYAML"  # a module named otherwise than its package


def _history_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "hist"
    repo.mkdir()
    write_files(
        repo,
        {
            "requirements.txt": "SQLAlchemy==1.4.54\nrequests>=2.0\n",
            "pyproject.toml": '[project]\nname = "x"\ndependencies = ["pydantic>=1.10,<2"]\n',
            "poetry.lock": '[[package]]\nname = "numpy"\nversion = "1.26.4"\n',
        },
    )
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "green")
    write_files(
        repo,
        {
            "requirements.txt": "SQLAlchemy==2.0.30\nrequests>=2.31\nhttpx==0.27.0\n",
            "pyproject.toml": '[project]\nname = "x"\ndependencies = ["pydantic>=2"]\n',
        },
    )
    git(repo, "commit", "-q", "-am", "bump")
    return repo


def test_what_changed_is_read_from_the_dependency_files_history(tmp_path: Path) -> None:
    repo = _history_repo(tmp_path)
    installed = Environment(
        python="3.11.7",
        packages={"SQLAlchemy": "2.0.30", "numpy": "2.1.3", "pydantic": "2.7.0", "pytest": "8.1"},
    )
    env = environment_facts(installed, repo, previous={"pytest": "7.4.4"})
    assert env is not None
    changes = {c.name: (c.old, c.new, c.source.split(" since ")[0]) for c in env.changes}
    assert changes["SQLAlchemy"] == ("1.4.54", "2.0.30", "requirements.txt")
    assert changes["requests"] == (">=2.0", ">=2.31", "requirements.txt")
    assert changes["httpx"] == (None, "0.27.0", "requirements.txt")
    assert changes["pydantic"] == (">=1.10,<2", ">=2", "pyproject.toml")
    # the lock pins numpy 1.26.4 but the environment has 2.1.3: upgraded without the files
    assert changes["numpy"] == (
        "1.26.4",
        "2.1.3",
        "poetry.lock pins 1.26.4, the environment has 2.1.3",
    )
    assert changes["pytest"] == ("7.4.4", "8.1", "since the last handoff")
    assert env.describe("sqlalchemy").startswith(
        "SQLAlchemy 2.0.30 installed (SQLAlchemy 1.4.54 -> 2.0.30"
    )


def test_pins_of_each_file_format() -> None:
    assert pins("uv.lock", '[[package]]\nname = "a"\nversion = "1"\n') == {"a": "1"}
    assert pins("Pipfile.lock", '{"default": {"b": {"version": "==2.0"}}}') == {"b": "2.0"}
    poetry = '[tool.poetry.dependencies]\npython = "^3.11"\nc = "^3.1"\nd = {version = "1.2"}\n'
    assert pins("pyproject.toml", poetry) == {"c": "^3.1", "d": "1.2"}
    assert pins(
        "requirements-dev.txt", "-r base.txt\n# x\ne[extra]==1.0 ; python_version>'3'\n"
    ) == {"e": "==1.0"}
    assert pins("uv.lock", "not toml [[[") == {}


# --- one plan item per cause ----------------------------------------------------------------------


def _failure(nodeid: str, exc: str, message: str, frames: list | None = None) -> TestResult:
    return TestResult(
        nodeid=nodeid,
        outcome="failed",
        when="call",
        exc_type=exc,
        message=message,
        frames=frames or [],
    )


def test_unrelated_causes_in_one_category_become_separate_plan_items(tmp_path: Path) -> None:
    results = [
        _failure("tests/test_a.py::test_numpy", "AttributeError", "`np.float_` was removed in the NumPy 2.0 release. Use `np.float64` instead."),
        _failure("tests/test_a.py::test_numpy2", "AttributeError", "`np.NaN` was removed in the NumPy 2.0 release. Use `np.nan` instead."),
        _failure("tests/test_b.py::test_sql", "sqlalchemy.exc.ArgumentError", "Column expression expected, got [x]. Did you mean to say select(x)?"),
        _failure("tests/test_c.py::test_add", "AssertionError", "assert 3 == 4"),
        _failure("tests/test_c.py::test_key", "KeyError", "'user'"),
    ]  # fmt: skip
    report = triage(
        SuiteRun(command=["pytest"], cwd=str(tmp_path), results=results), tmp_path, "pytest"
    )
    items = {c.key: c for c in report.categories}
    assert set(items) == {
        "dependency_upgrade-numpy",
        "dependency_upgrade-sqlalchemy",
        "unknown-1",
        "unknown-2",
    }
    assert items["dependency_upgrade-numpy"].count == 2
    assert items["dependency_upgrade-numpy"].title == "Dependency upgrade breakage: numpy"
    assert "NPY201" in items["dependency_upgrade-numpy"].fix_strategy
    assert items["dependency_upgrade-sqlalchemy"].title.endswith(": sqlalchemy")
    assert {items["unknown-1"].title, items["unknown-2"].title} == {
        "Uncategorised failures: assert 3 == 4",
        "Uncategorised failures: KeyError: 'user'",
    }
    orders = plan(report, model_available=True).orders
    assert sorted(o.key for o in orders) == sorted(items)
    assert {o.cause for o in orders if o.category == "dependency_upgrade"} == {
        "numpy",
        "sqlalchemy",
    }


# --- nose-style setup --------------------------------------------------------------------------


NOSE = {
    "tests/test_cart.py": """
        class TestCart:
            def setup(self):
                self.items = []

            def test_empty(self):
                assert self.items == []


        class TestCase2:
            def setup_method(self):
                self.items = []

            def setup(self):
                pass

            def test_broken(self):
                assert 1 == 2
        """,
}


def test_nose_setup_is_read_from_the_test_file_and_only_for_pytest_8(make_repo) -> None:
    repo = make_repo(NOSE)
    run = _run(repo)
    report = triage(run, repo, "pytest")
    by_id = {f.nodeid: f for f in report.failures}
    nose = by_id["tests/test_cart.py::TestCart::test_empty"]
    assert (nose.category, nose.message_category) == ("test_framework_contract", "unknown")
    # a class with setup_method is called as before: its failure is its own
    assert by_id["tests/test_cart.py::TestCase2::test_broken"].category == "unknown"
    (contract,) = [c for c in report.categories if c.id == "test_framework_contract"]
    assert "pytest 8 no longer calls nose-style setup()/teardown()" in contract.root_cause
    assert f"pytest {version('pytest')} installed" in contract.root_cause
    # under pytest 7 the same text is not read as the contract change
    old = run.model_copy(update={"environment": Environment(packages={"pytest": "7.4.4"})})
    assert {f.category for f in triage(old, repo, "pytest").failures} == {"unknown"}
