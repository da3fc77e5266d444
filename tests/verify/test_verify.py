"""verify on a real repository with real failing tests: honest fixes pass, every cheat is caught."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from orchestrator.git import GitRepo
from orchestrator.models import SuiteRun, Verdict, WorkOrder
from orchestrator.suite.config import in_worktree, run_spec
from orchestrator.suite.runner import run_suite
from orchestrator.verify import verify
from orchestrator.verify.cheats import static_violations
from tests.helpers import MakeRepo, git

ROLE = "tests/test_models.py::test_default_role"
FEE = "tests/test_pricing.py::test_total_with_fee"

FILES = {
    "app/__init__.py": "",
    "app/models.py": """
        def make_user(name, role=None):
            return {"name": name, "role": role}
    """,
    "app/pricing.py": """
        def total(items):
            return sum(items)
    """,
    "app/service.py": """
        from app import models


        def greeting(name):
            return "hi " + models.make_user(name)["name"]
    """,
    "tests/test_service.py": """
        from app.service import greeting


        def test_greeting():
            assert greeting("ann") == "hi ann"
    """,
    "tests/test_models.py": """
        from app.models import make_user


        def test_default_role():
            assert make_user("ann")["role"] == "member"


        def test_name():
            assert make_user("ann")["name"] == "ann"
    """,
    "tests/test_pricing.py": """
        from app.pricing import total


        def test_total():
            assert total([1, 2]) == 3


        def test_total_with_fee():
            assert total([1, 2], fee=1) == 4
    """,
}


class Target:
    """A target repository, its baseline, and a way to try one patch on it."""

    def __init__(self, root: Path) -> None:
        self.repo = GitRepo(root)
        self.base = self.repo.head
        # The target needs no third-party pytest plugins; autoloading ours costs 1.5 s a run.
        self.spec = run_spec(root).model_copy(
            update={"env": {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}}
        )
        self.baseline: SuiteRun = run_suite(in_worktree(self.spec, root))
        self.events: list = []
        self.worktree_status: str | None = None

    def attempt(
        self,
        edits: dict[str, tuple[str, str] | None],
        *,
        tests: tuple[str, ...] = (ROLE,),
        category: str = "unknown",
        mode: str = "targeted",
    ) -> Verdict:
        """Apply {path: (old, new) replacement, or None to delete}, commit, verify."""
        order = WorkOrder(
            category=category,
            title=category,
            tests=list(tests),
            affected_files=[],
            root_cause="",
            fix_strategy="",
            priority="high",
            agent="test",
            target=len(tests),
        )
        with self.repo.worktree(f"orchestrate/{category}/{len(self.events)}", self.base) as wt:
            for path, edit in edits.items():
                if edit is None:
                    (wt / path).unlink()
                    continue
                text = (wt / path).read_text() if (wt / path).exists() else ""
                old, new = (textwrap.dedent(e).strip("\n") for e in edit)
                assert old in text, f"{old!r} not in {path}"
                (wt / path).write_text(text.replace(old, new))
            assert self.repo.commit_all(wt, "patch")
            verdict = verify(
                repo=self.repo,
                worktree=wt,
                base=self.base,
                order=order,
                baseline=self.baseline,
                spec=self.spec,
                mode=mode,
                emit=self.events.append,
            )
            self.worktree_status = git(wt, "status", "--porcelain", "--untracked-files=no")
        return verdict

    def ran(self) -> set[str]:
        return {e.nodeid for e in self.events if e.kind == "test_finished"}


@pytest.fixture
def target(make_repo: MakeRepo) -> Target:
    t = Target(make_repo(FILES))
    assert {r.nodeid for r in t.baseline.failing()} == {ROLE, FEE}
    return t


ROLE_FIX = {"app/models.py": ("role=None", 'role="member"')}


def test_correct_fix_is_accepted_and_runs_the_tests_that_import_it(target: Target) -> None:
    before = target.repo.fingerprint()
    verdict = target.attempt(ROLE_FIX)
    assert verdict.accepted, verdict
    assert verdict.fixed == [ROLE] and verdict.still_failing == [] and verdict.violations == []
    # test_service imports app.service, which imports the changed app.models; pricing does not
    assert target.ran() == {
        ROLE,
        "tests/test_models.py::test_name",
        "tests/test_service.py::test_greeting",
    }
    assert target.repo.fingerprint() == before


def test_a_patch_that_breaks_the_suite_itself_is_rejected(target: Target) -> None:
    verdict = target.attempt({"conftest.py": ("", "import no_such_module_anywhere\n")})
    assert not verdict.accepted
    assert verdict.reason is not None and verdict.reason.startswith("suite broken: ")
    assert verdict.still_failing == [ROLE]


def test_full_mode_runs_the_whole_suite(target: Target) -> None:
    verdict = target.attempt(ROLE_FIX, mode="full")
    assert verdict.accepted
    assert target.ran() == set(target.baseline.collected)


def test_fix_that_breaks_another_test_is_a_regression(target: Target) -> None:
    verdict = target.attempt(
        {
            "app/models.py": (
                'return {"name": name, "role": role}',
                'return {"name": name.upper(), "role": role or "member"}',
            )
        }
    )
    assert not verdict.accepted
    assert verdict.fixed == [ROLE]
    # test_greeting breaks through app.service, which imports the changed module
    assert verdict.regressions == [
        "tests/test_models.py::test_name",
        "tests/test_service.py::test_greeting",
    ]
    assert (
        verdict.reason
        == "regression: tests/test_models.py::test_name passed at baseline and fails now"
    )
    assert "ANN" in verdict.output  # pytest's own words, for the agent


def test_patch_that_fixes_nothing_is_rejected(target: Target) -> None:
    verdict = target.attempt({"app/pricing.py": ("sum(items)", "sum(items) + 0")})
    assert not verdict.accepted
    assert verdict.still_failing == [ROLE]
    assert verdict.reason == f"not fixed: {ROLE} still failed"


def test_deleting_the_failing_test_is_rejected(target: Target) -> None:
    verdict = target.attempt(
        {
            "tests/test_models.py": (
                """
        def test_default_role():
            assert make_user("ann")["role"] == "member"
        """,
                "",
            )
        },
        tests=(),
    )
    assert not verdict.accepted
    assert verdict.reason == "test removed: tests/test_models.py::test_default_role"
    assert f"collection shrank: {ROLE} is no longer collected" in verdict.violations


def test_deleting_a_test_file_is_rejected(target: Target) -> None:
    verdict = target.attempt({"tests/test_pricing.py": None}, tests=())
    assert not verdict.accepted
    assert f"collection shrank: {FEE} is no longer collected" in verdict.violations


def test_adding_a_skip_is_rejected(target: Target) -> None:
    verdict = target.attempt(
        {
            "tests/test_models.py": (
                "from app.models import make_user",
                "import pytest\nfrom app.models import make_user\n\n\n@pytest.mark.skip",
            )
        },
        tests=(),
    )
    # the decorator lands on the first function, test_default_role
    assert not verdict.accepted
    assert verdict.reason is not None and verdict.reason.startswith(
        "skip added: tests/test_models.py:"
    )
    assert verdict.reason.endswith(" @pytest.mark.skip")
    assert f"outcome hidden: {ROLE} failed at baseline and skipped now" in verdict.violations


@pytest.mark.parametrize(
    ("new", "rule"),
    [
        (
            'assert make_user("ann")["role"] != "member"',
            "assert weakened: tests/test_models.py:5 test_default_role `==` -> `!=`",
        ),
        ('make_user("ann")', "assert removed: tests/test_models.py:4 test_default_role (1 -> 0)"),
        (
            'assert make_user("ann")["role"] == None',
            "expected value changed: tests/test_models.py:5 test_default_role 'member' -> None",
        ),
    ],
)
def test_weakening_the_failing_assert_is_rejected(target: Target, new: str, rule: str) -> None:
    verdict = target.attempt(
        {"tests/test_models.py": ('assert make_user("ann")["role"] == "member"', new)}
    )
    assert not verdict.accepted
    assert verdict.reason is not None and verdict.reason.startswith(rule)


def test_loosening_a_numeric_comparison_is_rejected(target: Target) -> None:
    verdict = target.attempt(
        {
            "tests/test_pricing.py": (
                "assert total([1, 2], fee=1) == 4",
                "assert total([1, 2]) >= 3",
            )
        },
        tests=(FEE,),
    )
    assert not verdict.accepted
    assert verdict.fixed == [FEE]  # it does pass now: only the rule catches it
    assert verdict.reason is not None and verdict.reason.startswith(
        "assert weakened: tests/test_pricing.py"
    )


def test_source_category_fix_made_in_the_test_fails_the_original_tests(target: Target) -> None:
    cheat = {
        "tests/test_models.py": (
            'make_user("ann")["role"] == "member"',
            'make_user("ann", role="member")["role"] == "member"',
        )
    }
    verdict = target.attempt(cheat, category="model_defaults")
    assert not verdict.accepted
    assert verdict.fixed == [ROLE]
    assert (
        verdict.reason
        == f"original tests fail: {ROLE} fails with the base test files (a model_defaults fix belongs in source code)"
    )
    assert target.worktree_status == ""  # the original test files were put back

    again = target.attempt(cheat, category="uuid_type")  # a test-code category may edit tests
    assert again.accepted, again
    assert "test files changed: tests/test_models.py" in again.output


def test_source_fix_with_an_honest_test_edit_passes_the_original_tests(target: Target) -> None:
    verdict = target.attempt(
        {
            **ROLE_FIX,
            "tests/test_models.py": ('make_user("ann")["name"]', 'make_user(name="ann")["name"]'),
        },
        category="model_defaults",
    )
    assert verdict.accepted, verdict
    assert any(e.kind == "suite_started" and "original tests" in e.label for e in target.events)


# --- static rules, directly ------------------------------------------------------------------------

TEST = """
import pytest


class TestUser:
    def test_status(self, client):
        response = client.post("/users")
        assert response.status_code == 201
        assert response.json() is not None
        with pytest.raises(ValueError):
            client.boom()
        client.notify.assert_called_once()
"""


def rules(before: str, after: str, path: str = "tests/test_user.py") -> list[str]:
    return static_violations({path: textwrap.dedent(before)}, {path: textwrap.dedent(after)})


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "== 201",
            ">= 201",
            "assert weakened: tests/test_user.py:8 TestUser.test_status `==` -> `>=`",
        ),
        (
            "== 201",
            "in (201, 409)",
            "assert weakened: tests/test_user.py:8 TestUser.test_status `==` -> `in`",
        ),
        (
            "== 201",
            "== 409",
            "expected value changed: tests/test_user.py:8 TestUser.test_status 201 -> 409",
        ),
        (
            "is not None",
            "is None",
            "assert weakened: tests/test_user.py:9 TestUser.test_status `is not` -> `is`",
        ),
        (
            "assert response.status_code == 201",
            "assert response.status_code",
            "assert weakened: tests/test_user.py:8 TestUser.test_status `==` comparison dropped",
        ),
        (
            "assert response.status_code == 201",
            "assert True",
            "constant assert: tests/test_user.py:8 TestUser.test_status assert True",
        ),
        (
            "assert response.status_code == 201",
            "assert response.status_code == 201 or True",
            "constant assert",
        ),
        (
            "with pytest.raises(ValueError):",
            "if True:",
            "pytest.raises removed: tests/test_user.py:6 TestUser.test_status (1 -> 0)",
        ),
        ("client.notify.assert_called_once()", "client.notify()", "mock assertion removed"),
        (
            "def test_status",
            "@pytest.mark.xfail\n    def test_status",
            "xfail added: tests/test_user.py:6 @pytest.mark.xfail",
        ),
        (
            "response = client",
            "pytest.skip('later')\n        response = client",
            "skip added: tests/test_user.py:7 pytest.skip(",
        ),
        (
            "def test_status",
            "def test_renamed",
            "test removed: tests/test_user.py::TestUser::test_status",
        ),
    ],
)
def test_static_rules_catch_each_cheat(old: str, new: str, expected: str) -> None:
    found = rules(TEST, TEST.replace(old, new))
    assert any(v.startswith(expected) for v in found), found


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("== 201", "== expected_status()"),  # literal to a computed value: a real rewrite
        ('client.post("/users")', 'client.post("/users", json={"name": "a"})'),
        ("is not None", "!= None"),
        ("import pytest", "import pytest\nimport json"),
    ],
)
def test_static_rules_allow_honest_test_edits(old: str, new: str) -> None:
    assert rules(TEST, TEST.replace(old, new)) == []


def test_existing_markers_that_move_are_not_new() -> None:
    before = "import pytest\n\n@pytest.mark.skip\ndef test_a():\n    assert 1 == 1\n"
    after = "import pytest\n\n\ndef helper():\n    pass\n\n@pytest.mark.skip\ndef test_a():\n    assert 1 == 1\n"
    assert rules(before, after) == []


def test_collection_hiding_in_conftest_and_configuration() -> None:
    hook = "def pytest_collection_modifyitems(items):\n    items[:] = []\n"
    assert rules("", hook, "conftest.py") == [
        "collection hook added: conftest.py:1 pytest_collection_modifyitems"
    ]
    assert rules("", "collect_ignore = ['tests/test_a.py']\n", "tests/conftest.py") == [
        "collect_ignore added: tests/conftest.py:1 collect_ignore"
    ]
    assert rules(
        "",
        "def pytest_configure(config):\n    config.args.append('--deselect=tests/test_a.py::t')\n",
        "conftest.py",
    ) == [
        "collection option added: conftest.py:2 --deselect=tests/test_a.py::t",
        "pytest hook added: conftest.py:1 pytest_configure",
    ]
    ini = "[pytest]\naddopts = -q\n"
    assert static_violations(
        {"pytest.ini": ini},
        {"pytest.ini": "[pytest]\naddopts = -q --deselect tests/test_a.py::t -m 'not slow'\n"},
    ) == [
        "collection option added: pytest.ini addopts --deselect tests/test_a.py::t",
        "collection option added: pytest.ini addopts -m not slow",
    ]
    assert static_violations(
        {"pytest.ini": ini}, {"pytest.ini": "[pytest]\naddopts = -q -m slow\n"}
    ) == ["addopts changed: pytest.ini '-q' -> '-q -m slow'"]
    toml = '[tool.pytest.ini_options]\naddopts = ["-k", "not test_a"]\n'
    assert static_violations({"pyproject.toml": ""}, {"pyproject.toml": toml}) == [
        "collection option added: pyproject.toml addopts -k not test_a"
    ]
    cfg = "[tool:pytest]\naddopts = --ignore=tests/test_b.py\n"
    assert static_violations({}, {"setup.cfg": cfg}) == [
        "collection option added: setup.cfg addopts --ignore tests/test_b.py"
    ]
