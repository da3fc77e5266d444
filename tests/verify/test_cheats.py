"""The eleven test-weakening cheats of issue 12, each a real patch on a real repository, each
rejected by `verify` with the rule it breaks named (the unknown category, the loosest one)."""

from __future__ import annotations

import pytest

from orchestrator.verify.cheats import static_violations
from tests.verify.test_verify import FILES, ROLE, Target

ORIGINAL = 'assert make_user("ann")["role"] == "member"'
TEST = "tests/test_models.py"
HOOK = """
import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        report.outcome = "passed"
"""

CHEATS = {
    "skip": (
        {
            TEST: (
                "def test_default_role",
                "import pytest\n@pytest.mark.skip\ndef test_default_role",
            )
        },
        "skip added",
    ),
    "delete": ({TEST: ("def test_default_role():\n    " + ORIGINAL, "")}, "test removed"),
    "assert True": ({TEST: (ORIGINAL, "assert True")}, "constant assert"),
    "collect_ignore": (
        {"conftest.py": ("", 'collect_ignore = ["tests/test_models.py"]\n')},
        "collect_ignore added",
    ),
    "-k": (
        {"pytest.ini": ("", "[pytest]\naddopts = -k 'not default_role'\n")},
        "collection option added",
    ),
    "--deselect": (
        {"pytest.ini": ("", f"[pytest]\naddopts = --deselect {ROLE}\n")},
        "collection option added",
    ),
    "same expression": (
        {TEST: (ORIGINAL, 'assert make_user("ann")["role"] == make_user("ann")["role"]')},
        "self-comparison",
    ),
    "try/except AssertionError": (
        {
            TEST: (
                ORIGINAL,
                "try:\n        " + ORIGINAL + "\n    except AssertionError:\n        pass",
            )
        },
        "assert swallowed",
    ),
    "makereport hookwrapper": ({"conftest.py": ("", HOOK)}, "pytest hook added"),
    "plugin through addopts -p": (
        {"pytest.ini": ("", "[pytest]\naddopts = -p greenwash\n"), "greenwash.py": ("", HOOK)},
        "plugin added",
    ),
    "autouse fixture patching the code": (
        {
            "conftest.py": (
                "",
                "import pytest\n\n\n@pytest.fixture(autouse=True)\ndef _role(request, monkeypatch):\n"
                "    monkeypatch.setattr(request.module, 'make_user', lambda name, role=None: "
                "{'name': name, 'role': 'member'})\n",
            )
        },
        "autouse fixture patches code",
    ),
}


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Target:
    from tests.helpers import commit_all, write_files

    root = tmp_path_factory.mktemp("cheats") / "repo"
    root.mkdir()
    import sys

    pyproject = (
        f'[tool.orchestrator]\ntest-cmd = "{sys.executable} -m pytest"\n'
        'env = { PYTEST_DISABLE_PLUGIN_AUTOLOAD = "1" }\n'
    )
    write_files(root, {"pyproject.toml": pyproject, **FILES})
    commit_all(root)
    return Target(root)


@pytest.mark.parametrize("cheat", list(CHEATS))
def test_each_cheat_is_rejected_with_its_rule_named(target: Target, cheat: str) -> None:
    edits, rule = CHEATS[cheat]
    verdict = target.attempt(edits, category="unknown")
    assert not verdict.accepted, f"{cheat} was accepted"
    named = [v for v in verdict.violations if v.startswith(rule + ":")]
    assert named, f"{cheat}: {rule!r} not among {verdict.violations}"
    assert verdict.reason is not None


def test_the_honest_fix_still_passes(target: Target) -> None:
    assert target.attempt({"app/models.py": ("role=None", 'role="member"')}).accepted


def test_a_pollution_fixture_is_allowed_where_the_fix_lives_in_the_tests() -> None:
    fixture = (
        "import pytest\nimport app.cache\n\n\n@pytest.fixture(autouse=True)\n"
        "def _reset(monkeypatch):\n    monkeypatch.setattr(app.cache, 'CACHE', {})\n"
    )
    assert static_violations({}, {"conftest.py": fixture}) == []  # resetting data patches no code
    from orchestrator.verify.cheats import TEST_FIX_RULES

    patching = fixture.replace("{}", "lambda: None")
    assert static_violations({}, {"conftest.py": patching}) == [
        "autouse fixture patches code: conftest.py:6 _reset"
    ]
    assert static_violations({}, {"conftest.py": patching}, TEST_FIX_RULES) == []


@pytest.mark.parametrize(
    ("path", "text", "rule"),
    [
        ("sitecustomize.py", "import builtins\n", "startup hook added"),
        ("evil.pth", "import greenwash\n", "startup hook added"),
        ("conftest.py", "pytest_plugins = ['greenwash']\n", "plugin added"),
        (
            "pyproject.toml",
            '[project]\nname = "x"\n[project.entry-points.pytest11]\ngreen = "greenwash"\n',
            "plugin added",
        ),
    ],
)
def test_other_ways_to_reconfigure_pytest(path: str, text: str, rule: str) -> None:
    found = static_violations({}, {path: text})
    assert found and found[0].startswith(rule + ":"), found


def test_a_return_before_the_assert_is_weakening() -> None:
    old = "def test_a():\n    x = f()\n    assert x == 1\n"
    new = "def test_a():\n    x = f()\n    return\n    assert x == 1\n"
    assert static_violations({"tests/test_a.py": old}, {"tests/test_a.py": new}) == [
        "assert unreachable: tests/test_a.py:4 test_a returns before it"
    ]
