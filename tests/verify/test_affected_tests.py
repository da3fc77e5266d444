"""Inside a test file that only imports changed code, the regression set keeps the tests that
reach it (through helpers, fixtures, classes, conftests) and the whole file when unsure."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from orchestrator.verify.affected import regression_set
from tests.helpers import write_files

APP = {
    "app/__init__.py": "",
    "app/bug.py": "def compute(x):\n    return x + 1\n\n\ndef other(x):\n    return x\n",
    "app/service.py": "from app.bug import compute\n\n\ndef run(x):\n    return compute(x)\n",
    "app/text.py": "def shout(s):\n    return s.upper()\n",
    "tests/__init__.py": "",
}


def _select(tmp_path: Path, tests: dict[str, str], changed: str = "app/bug.py") -> set[str]:
    """The selected test names (past `tests/test_x.py::`) of the functions in `tests`."""
    write_files(tmp_path, {**APP, **tests})
    collected = [
        f"{path}::{name}"
        for path, source in tests.items()
        if path.startswith("tests/test_")
        for name in _tests_in(source)
    ]
    return {n.split("::", 1)[1] for n in regression_set(tmp_path, [changed], collected)}


def _tests_in(source: str) -> list[str]:
    """Node ids of a source's tests: functions and methods, or as a `# ids: a b` line lists."""
    ids: list[str] = []
    listed: list[str] = []
    cls = ""
    for line in dedent(source).splitlines():
        if line.startswith("# ids:"):
            listed += line.removeprefix("# ids:").split()
        elif line.startswith("class Test"):
            cls = line.split()[1].split("(")[0].rstrip(":")
        elif line.lstrip().startswith("def test"):
            name = line.split()[1].split("(")[0]
            ids.append(f"{cls}::{name}" if line.startswith(" ") and cls else name)
        elif line and not line.startswith(" "):
            cls = ""
    return listed + [i for i in ids if not any(n.split("[")[0] == i for n in listed)]


def test_only_the_tests_calling_the_changed_function(tmp_path: Path) -> None:
    tests = {
        "tests/test_bug.py": """
            from app.bug import compute, other


            def test_compute():
                assert compute(1) == 2


            def test_other():
                assert other(1) == 1


            def test_nothing():
                assert True
        """
    }
    assert _select(tmp_path, tests) == {"test_compute", "test_other"}
    assert _select(tmp_path, tests, "app/text.py") == set()


def test_helpers_calling_helpers_and_a_fixture_of_the_file(tmp_path: Path) -> None:
    tests = {
        "tests/test_bug.py": """
            import pytest

            from app.bug import compute
            from app.text import shout


            def _inner(x):
                return compute(x)


            def _outer(x):
                return _inner(x)


            @pytest.fixture(name="answer")
            def _answer():
                return _outer(41)


            @pytest.fixture
            def loud():
                return shout("a")


            def test_helper():
                assert _outer(1) == 2


            def test_fixture(answer):
                assert answer == 42


            def test_loud(loud):
                assert loud == "A"


            @pytest.mark.usefixtures("answer")
            def test_marked():
                pass
        """
    }
    assert _select(tmp_path, tests) == {"test_helper", "test_fixture", "test_marked"}


def test_a_class_is_selected_whole_by_what_its_body_reaches(tmp_path: Path) -> None:
    tests = {
        "tests/test_bug.py": """
            from app.bug import compute
            from app.text import shout


            class TestCompute:
                def setup_method(self):
                    self.value = compute(1)

                def test_value(self):
                    assert self.value == 2


            class TestShout:
                def test_shout(self):
                    assert shout("a") == "A"
        """
    }
    assert _select(tmp_path, tests) == {"TestCompute::test_value"}


def test_parametrized_ids_map_to_their_function(tmp_path: Path) -> None:
    tests = {
        "tests/test_bug.py": """
            import pytest

            from app.bug import compute
            from app.text import shout


            @pytest.mark.parametrize("a, b", [(1, 2), (2, 3)])
            def test_x(a, b):
                assert compute(a) == b


            @pytest.mark.parametrize("s", ["a"])
            def test_y(s):
                assert shout(s)

            # ids: test_x[1-2] test_x[2-3] test_y[a]
        """
    }
    assert _select(tmp_path, tests) == {"test_x[1-2]", "test_x[2-3]"}


def test_a_module_alias_and_a_transitive_module(tmp_path: Path) -> None:
    tests = {
        "tests/test_bug.py": """
            import app.bug as b
            from app import service, text


            def test_alias():
                assert b.compute(1) == 2


            def test_service():
                assert service.run(1) == 2


            def test_text():
                assert text.shout("a") == "A"
        """
    }
    assert _select(tmp_path, tests) == {"test_alias", "test_service"}


def test_a_conftest_fixture_using_the_changed_function(tmp_path: Path) -> None:
    tests = {
        "tests/conftest.py": """
            import pytest

            from app.bug import compute


            @pytest.fixture
            def computed():
                return compute(1)


            @pytest.fixture
            def wrapped(computed):
                return [computed]


            @pytest.fixture
            def plain():
                return 1
        """,
        "tests/test_bug.py": """
            from app.bug import other


            def test_wrapped(wrapped):
                assert wrapped == [2]


            def test_plain(plain):
                assert plain == 1
        """,
    }
    assert _select(tmp_path, tests) == {"test_wrapped"}


def test_a_string_naming_the_changed_module_selects_the_test(tmp_path: Path) -> None:
    tests = {
        "tests/test_bug.py": """
            from unittest import mock

            from app import service
            from app.text import shout


            def test_patched():
                with mock.patch("app.bug.compute", return_value=0):
                    assert shout("a")


            def test_plain():
                assert shout("a") == "A"


            def test_nested_import():
                from app.bug import compute

                assert compute(1) == 2
        """
    }
    assert _select(tmp_path, tests) == {"test_patched", "test_nested_import"}


WHOLE = """
    from app.bug import compute
    from app.text import shout


    def test_compute():
        assert compute(1) == 2


    def test_shout():
        assert shout("a") == "A"
"""


@pytest.mark.parametrize(
    "head",
    [
        "import pytest\n\nfrom app.bug import compute\n\nCASES = [compute(1)]\n",
        "from app.bug import *\n",
        "import importlib\n",
        "def pytest_generate_tests(metafunc):\n    pass\n",
        "import pytest\n\n\n@pytest.fixture(autouse=True)\ndef _auto():\n    compute(0)\n",
        "def setup_module():\n    compute(0)\n",
        "pytest_plugins = ['tests.plugin']\n",
    ],
    ids=["module-level", "star", "importlib", "hook", "autouse", "setup-module", "plugins"],
)
def test_unsure_files_are_selected_whole(tmp_path: Path, head: str) -> None:
    source = head + "\n\n" + dedent(WHOLE)
    assert _select(tmp_path, {"tests/test_bug.py": source}) == {"test_compute", "test_shout"}


def test_an_unmappable_id_or_a_broken_conftest_selects_the_whole_file(tmp_path: Path) -> None:
    unmappable = dedent(WHOLE) + "\n# ids: test_generated\n"
    assert _select(tmp_path, {"tests/test_bug.py": unmappable}) == {
        "test_compute",
        "test_shout",
        "test_generated",
    }
    broken = {"tests/conftest.py": "def oops(:\n", "tests/test_bug.py": WHOLE}
    assert _select(tmp_path, broken) == {"test_compute", "test_shout"}


def test_a_changed_test_file_and_its_importers(tmp_path: Path) -> None:
    """A changed test helper narrows its importers; a changed test file keeps all its tests."""
    tests = {
        "tests/helpers.py": "def make():\n    return 1\n\n\ndef keep():\n    return 2\n",
        "tests/test_bug.py": """
            from tests.helpers import keep, make


            def test_make():
                assert make() == 1


            def test_keep():
                assert keep() == 2
        """,
    }
    assert _select(tmp_path, tests, "tests/helpers.py") == {"test_make", "test_keep"}
    tests["tests/test_bug.py"] += "\n\ndef test_none():\n    pass\n"
    assert _select(tmp_path, tests, "tests/test_bug.py") == {
        "test_make",
        "test_keep",
        "test_none",
    }


def test_conftest_plugins_and_a_tainted_autouse_above(tmp_path: Path) -> None:
    """A plugin a conftest lists is read like it; a tainted autouse fixture above the file
    reaches every test of it."""
    tests = {
        "tests/conftest.py": "pytest_plugins = ['tests.plugin']\n",
        "tests/plugin.py": """
            import pytest

            from app import service


            @pytest.fixture
            def served():
                return service.run(1)
        """,
        "tests/test_bug.py": """
            from app.bug import other


            def test_served(served):
                assert served == 2


            def test_other():
                assert other(1) == 1
        """,
    }
    assert _select(tmp_path, tests) == {"test_served", "test_other"}
    tests["tests/test_bug.py"] = tests["tests/test_bug.py"].replace("other(1) == 1", "True")
    assert _select(tmp_path, tests) == {"test_served"}
    tests["tests/plugin.py"] = tests["tests/plugin.py"].replace(
        "@pytest.fixture\n", "@pytest.fixture(autouse=True)\n"
    )
    assert _select(tmp_path, tests) == {"test_served", "test_other"}


def test_a_plain_import_taints_its_top_package_name(tmp_path: Path) -> None:
    tests = {
        "tests/test_bug.py": """
            import app.service


            def test_run():
                assert app.service.run(1) == 2


            def test_none():
                assert True
        """
    }
    assert _select(tmp_path, tests) == {"test_run"}
