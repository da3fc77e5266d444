"""The regression set follows what a change can reach: the import graph, a conftest's fixtures
and imports, the code naming a data file (files on disk, no pytest needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.verify.affected import reach, regression_set
from tests.helpers import write_files

CONFTEST = """
    import pytest

    from app.db import connect


    @pytest.fixture
    def db():
        return connect()


    @pytest.fixture
    def user(db):
        return {"db": db}


    @pytest.fixture
    def clock():
        return 0
"""

FILES = {
    "app/__init__.py": "",
    "app/db.py": "import pathlib\n\nSCHEMA = pathlib.Path(__file__).with_name('schema.sql')\n\n\ndef connect():\n    return SCHEMA\n",
    "app/orders.py": "from app.db import connect\n",
    "app/extra_models.py": "from app import db\n",
    "app/text.py": "def shout(s):\n    return s.upper()\n",
    "app/schema.sql": "create table t (id int);\n",
    "tests/__init__.py": "",
    "tests/conftest.py": CONFTEST,
    "tests/test_orders.py": "from app import orders\n\n\ndef test_order():\n    assert orders\n",
    "tests/test_text.py": "from app.text import shout\n\n\ndef test_shout():\n    assert shout('a') == 'A'\n",
    "tests/test_user.py": "def test_user(user):\n    assert user\n",
    "tests/test_clock.py": "def test_clock(clock):\n    assert clock == 0\n",
    "tests/test_marked.py": (
        "import pytest\n\n\n@pytest.mark.usefixtures('db')\ndef test_marked():\n    pass\n"
    ),
}
ALL = [
    "tests/test_orders.py::test_order",
    "tests/test_text.py::test_shout",
    "tests/test_user.py::test_user",
    "tests/test_clock.py::test_clock",
    "tests/test_marked.py::test_marked",
]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    write_files(tmp_path, FILES)
    return tmp_path


def _change_conftest(tree: Path, old: str, new: str) -> dict[str, str]:
    path = tree / "tests/conftest.py"
    before = path.read_text()
    assert old in before
    path.write_text(before.replace(old, new))
    return {"tests/conftest.py": before}


def _files(selected: set[str]) -> set[str]:
    return {n.split("::")[0].removeprefix("tests/") for n in selected}


def test_a_changed_module_reaches_its_importers_only(tree: Path) -> None:
    assert _files(regression_set(tree, ["app/orders.py"], ALL)) == {"test_orders.py"}


def test_the_import_graph_follows_each_file_as_it_is_now(tree: Path) -> None:
    """Imports are remembered by a file's content between verifications: an edit is seen."""
    assert _files(regression_set(tree, ["app/text.py"], ALL)) == {"test_text.py"}
    (tree / "tests/test_orders.py").write_text(
        "from app import orders, text\n\n\ndef test_order():\n    assert orders and text\n"
    )
    assert _files(regression_set(tree, ["app/text.py"], ALL)) == {"test_text.py", "test_orders.py"}


def test_an_import_added_to_a_conftest_reaches_the_tests_sharing_its_modules(tree: Path) -> None:
    """The db_schema fix: registering models in the conftest reaches the tests of the database,
    not the whole suite (it used to select every test below the conftest)."""
    before = _change_conftest(tree, "import pytest\n", "import pytest\n\nimport app.extra_models\n")
    selected = regression_set(tree, ["tests/conftest.py"], ALL, before)
    assert _files(selected) == {"test_orders.py"}
    assert "tests/test_text.py::test_shout" not in selected


def test_a_changed_fixture_reaches_the_tests_requesting_it_directly_or_not(tree: Path) -> None:
    before = _change_conftest(tree, "return connect()", "return connect() or 1")
    selected = regression_set(tree, ["tests/conftest.py"], ALL, before)
    assert _files(selected) == {"test_user.py", "test_marked.py"}


@pytest.mark.parametrize(
    "new",
    [
        "def pytest_collection_modifyitems(items):\n    pass\n\n\n",
        "@pytest.fixture(autouse=True)\ndef everywhere():\n    yield\n\n\n",
        "LIMIT = 3\n\n\n",
    ],
    ids=["hook", "autouse", "module-level"],
)
def test_hooks_autouse_and_module_code_reach_every_test_below(tree: Path, new: str) -> None:
    before = _change_conftest(
        tree, "@pytest.fixture\ndef clock", new + "@pytest.fixture\ndef clock"
    )
    assert regression_set(tree, ["tests/conftest.py"], ALL, before) == set(ALL)


def test_without_the_base_source_a_conftest_reaches_every_test_below(tree: Path) -> None:
    _change_conftest(tree, "return 0", "return 1")
    assert regression_set(tree, ["tests/conftest.py"], ALL) == set(ALL)


def test_data_files_reach_the_code_naming_them_and_configuration_everything(tree: Path) -> None:
    assert _files(regression_set(tree, ["app/schema.sql"], ALL)) == {"test_orders.py"}
    assert regression_set(tree, ["pyproject.toml"], ALL) == set(ALL)
    assert regression_set(tree, ["app/unnamed.json"], ALL) == set(ALL)
    assert regression_set(tree, ["README.md"], ALL) == set()


def test_the_files_to_collect_are_those_a_patch_reaches(tree: Path) -> None:
    """Verification collects these (no test may vanish from them); None: the whole suite."""
    assert reach(tree, ["app/orders.py"], ALL).files == {"tests/test_orders.py"}
    assert reach(tree, ["README.md"], ALL).files == set()
    assert reach(tree, ["pyproject.toml"], ALL).files is None
    before = _change_conftest(tree, "return 0", "return 1")
    assert reach(tree, ["tests/conftest.py"], ALL, before).files == {
        n.split("::")[0] for n in regression_set(tree, ["tests/conftest.py"], ALL, before)
    }
