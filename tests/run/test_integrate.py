"""Integration in one pass: every accepted branch merged, one whole-suite run (the run's "after"),
the merges bisected only on a regression (real git branches, real pytest runs)."""

from __future__ import annotations

from pathlib import Path

from orchestrator.git import GitRepo
from orchestrator.models import AgentResult
from orchestrator.run.integrate import integrate
from orchestrator.suite.config import run_spec
from orchestrator.suite.runner import run_suite
from tests.helpers import MakeRepo, git

FILES = {
    "app/__init__.py": "",
    "app/a.py": "def f():\n    return 0\n",
    "app/b.py": "def g():\n    return 0\n",
    "app/c.py": "def h():\n    return 1\n",
    "app/shared.py": "LIMIT = 1\n",
    "tests/test_a.py": "from app.a import f\n\n\ndef test_f():\n    assert f() == 1\n",
    "tests/test_b.py": "from app.b import g\n\n\ndef test_g():\n    assert g() == 1\n",
    "tests/test_c.py": (
        "from app.c import h\nfrom app.shared import LIMIT\n\n\n"
        "def test_h():\n    assert h() == LIMIT\n"
    ),
}


def _branch(
    repo: Path, name: str, edits: dict[str, tuple[str, str]], fixed: list[str]
) -> AgentResult:
    git(repo, "checkout", "-q", "-b", name, "main")
    for path, (old, new) in edits.items():
        file = repo / path
        file.write_text(file.read_text().replace(old, new))
    git(repo, "commit", "-qam", name)
    git(repo, "checkout", "-q", "main")
    return AgentResult(
        agent="test",
        category=name.rsplit("/", 1)[-1],
        branch=name,
        status="accepted",
        fixed=fixed,
        files_changed=list(edits),
    )


def _integrate(repo: Path, results: list[AgentResult]) -> tuple[str | None, list[str]]:
    spec = run_spec(repo)
    baseline = run_suite(spec)
    events: list = []
    done = integrate(
        GitRepo(repo),
        session="s",
        base=GitRepo(repo).head,
        results=results,
        spec=spec,
        baseline=baseline,
        emit=events.append,
    )
    if done.branch:
        assert done.final is not None and done.final.collected == baseline.collected
    return done.branch, [e.label for e in events if e.kind == "suite_finished"]


def test_clean_merges_are_checked_by_one_whole_suite_run(make_repo: MakeRepo) -> None:
    repo = make_repo(FILES)
    results = [
        _branch(repo, "s/a", {"app/a.py": ("0", "1")}, ["tests/test_a.py::test_f"]),
        _branch(repo, "s/b", {"app/b.py": ("0", "1")}, ["tests/test_b.py::test_g"]),
    ]
    branch, runs = _integrate(repo, results)
    assert runs == ["final"]
    assert all(r.merged for r in results)
    assert branch and "return 1" in git(repo, "show", f"{branch}:app/b.py")


def test_a_regression_bisects_the_merges_and_drops_only_its_cause(make_repo: MakeRepo) -> None:
    repo = make_repo(FILES)
    results = [
        _branch(repo, "s/a", {"app/a.py": ("0", "1")}, ["tests/test_a.py::test_f"]),
        # fixes test_g but breaks test_c, which passed at baseline (through app.shared)
        _branch(
            repo,
            "s/b",
            {"app/b.py": ("0", "1"), "app/shared.py": ("1", "2")},
            ["tests/test_b.py::test_g"],
        ),
        _branch(repo, "s/c", {"app/c.py": ("return 1", "return 1  # tidy")}, []),
    ]
    branch, runs = _integrate(repo, results)
    assert [r.merged for r in results] == [True, False, True]
    assert "regression after merge: tests/test_c.py::test_h" in (results[1].reason or "")
    assert runs[0] == "final" and runs[-1] == "final"
    assert runs[1] == "integrate: failing alone?"  # it does: the bisection runs test_h alone
    assert len(runs) <= 5  # the whole suite, one alone, two bisection steps, the whole suite again
    assert branch is not None
    assert git(repo, "show", f"{branch}:app/shared.py") == "LIMIT = 1"
    assert "return 1  # tidy" in git(repo, "show", f"{branch}:app/c.py")


def test_a_merge_that_leaks_into_later_tests_is_bisected_with_whole_suite_runs(
    make_repo: MakeRepo,
) -> None:
    files = {
        **FILES,
        "tests/test_z.py": "import os\n\n\ndef test_env():\n    assert 'LEAK' not in os.environ\n",
    }
    repo = make_repo(files)
    results = [
        # fixes test_g, and leaves an environment variable behind for test_z (which runs later)
        _branch(
            repo,
            "s/b",
            {
                "tests/test_b.py": (
                    "    assert",
                    "    import os\n    os.environ['LEAK'] = '1'\n    assert",
                ),
                "app/b.py": ("0", "1"),
            },
            ["tests/test_b.py::test_g"],
        ),
        _branch(repo, "s/a", {"app/a.py": ("0", "1")}, ["tests/test_a.py::test_f"]),
        _branch(repo, "s/c", {"app/c.py": ("return 1", "return 1  # tidy")}, []),
    ]
    branch, runs = _integrate(repo, results)
    assert [r.merged for r in results] == [False, True, True]
    assert "tests/test_z.py::test_env" in (results[0].reason or "")
    assert runs[1] == "integrate: failing alone?"  # it passes alone: the bisection needs the suite
    assert runs[0] == runs[-1] == "final"
    assert branch and "LEAK" not in git(repo, "show", f"{branch}:tests/test_b.py")


def test_a_merge_that_makes_tests_vanish_is_taken_out(make_repo: MakeRepo) -> None:
    """Verification collects only the files a patch reaches by its imports; a test file that
    loads its cases dynamically is out of that reach, and the whole-suite run sees them go."""
    files = {
        **FILES,
        "app/cases.py": "CASES = [1, 2, 3]\n",
        "tests/test_cases.py": (
            "import importlib\n\nimport pytest\n\n"
            'CASES = importlib.import_module("app.cases").CASES\n\n\n'
            '@pytest.mark.parametrize("x", CASES)\ndef test_case(x):\n    assert x\n'
        ),
    }
    repo = make_repo(files)
    results = [
        _branch(repo, "s/a", {"app/a.py": ("0", "1")}, ["tests/test_a.py::test_f"]),
        _branch(
            repo,
            "s/b",
            {"app/b.py": ("0", "1"), "app/cases.py": ("[1, 2, 3]", "[1]")},
            ["tests/test_b.py::test_g"],
        ),
    ]
    branch, runs = _integrate(repo, results)
    assert [r.merged for r in results] == [True, False]
    assert "tests/test_cases.py::test_case[2]" in (results[1].reason or "")
    assert runs[0] == runs[-1] == "final"
    assert branch and "[1, 2, 3]" in git(repo, "show", f"{branch}:app/cases.py")
