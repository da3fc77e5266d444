"""`orchestrate run` end to end on throwaway repos, with test-double agents judged by the real verifier."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.git import GitRepo
from tests.helpers import doubles, git

CALC = {
    "calc/__init__.py": "",
    "calc/ops.py": """
        def add(a, b):
            return a - b  # add


        def mul(a, b):
            return a * b
    """,
    "calc/text.py": """
        def lower(s):
            raise RuntimeError("Event loop is closed")
    """,
    "calc/version.py": 'VERSION = "1.0"\n',
    "tests/__init__.py": "",
    "tests/test_ops.py": """
        from calc.ops import add, mul


        def test_add():
            assert add(2, 3) == 5


        def test_mul():
            assert mul(2, 3) == 6


        def test_mul_zero():
            assert mul(0, 3) == 0
    """,
    "tests/test_text.py": """
        from calc.text import lower
        from calc.version import VERSION


        def test_lower():
            assert lower("ABC") == "abc"


        def test_version():
            assert VERSION.startswith("1.")
    """,
}


def run_cli(repo: Path, tmp_path: Path, capsys, *extra: str) -> tuple[int, dict | None, str]:
    code = main(
        [
            "run",
            str(repo),
            "--no-tui",
            "--json",
            "--no-isolation",
            "--timeout",
            "20",
            "--handoff-dir",
            str(tmp_path / "handoffs"),
            *extra,
        ]
    )
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


def by_category(report: dict) -> dict[str, dict]:
    return {a["category"]: a for a in report["agents"]}


def test_correct_fix_is_accepted_merged_and_user_checkout_untouched(
    make_repo, tmp_path, capsys, agents
):
    agents(unknown=doubles.FixCorrectly, async_event_loop=doubles.FixLower)
    repo = make_repo(CALC)
    before = GitRepo(repo).fingerprint()

    code, report, _ = run_cli(repo, tmp_path, capsys)

    assert code == 0
    assert GitRepo(repo).fingerprint() == before
    assert report["before"]["failed"] == 2 and report["before"]["passed"] == 3
    assert report["after"]["failed"] == 0 and report["after"]["passed"] == 5
    result = by_category(report)["unknown"]
    assert result["status"] == "accepted"
    assert result["fixed"] == ["tests/test_ops.py::test_add"]
    assert result["files_changed"] == ["calc/ops.py"]
    branch = report["integration_branch"]
    assert "return a + b" in git(repo, "show", f"{branch}:calc/ops.py")
    assert git(repo, "worktree", "list").count("\n") == 0  # only the user's checkout remains
    assert Path(report["handoff"]).is_file()
    assert set(report) == {
        "session",
        "integration_branch",
        "before",
        "after",
        "agents",
        "handoff",
        "usage",
    }
    assert report["usage"] is None  # no model was used
    assert result["usage"] is None


@pytest.mark.parametrize(
    ("double", "rule"),
    [
        (doubles.FixAndBreak, "regression"),
        (doubles.DeleteTest, "test removed"),
        (doubles.AddSkip, "skip"),
        (doubles.WeakenAssert, "weak"),
    ],
)
def test_cheating_or_breaking_patches_are_rejected(
    make_repo, tmp_path, capsys, agents, double, rule
):
    agents(unknown=double)
    repo = make_repo(CALC)
    before = GitRepo(repo).fingerprint()

    code, report, _ = run_cli(
        repo, tmp_path, capsys, "--agents", f"double_{double.__name__}", "--max-attempts", "1"
    )

    assert code == 0
    assert GitRepo(repo).fingerprint() == before
    result = by_category(report)["unknown"]
    assert result["status"] == "rejected"
    assert rule in result["reason"].lower()
    assert report["after"]["failed"] == report["before"]["failed"]  # nothing merged


def test_rejected_patch_goes_back_with_feedback_up_to_max_attempts(
    make_repo, tmp_path, capsys, agents
):
    agents(unknown=doubles.WeakenAssert)
    repo = make_repo(CALC)
    run_cli(repo, tmp_path, capsys, "--agents", "double_WeakenAssert", "--max-attempts", "2")
    calls = (GitRepo(repo).state_dir / "calls-WeakenAssert.log").read_text().split()
    assert calls == ["unknown", "unknown"]


def test_conflicting_agents_one_merged_one_reported(make_repo, tmp_path, capsys, agents):
    agents(unknown=doubles.EditSharedA, async_event_loop=doubles.EditSharedB)
    repo = make_repo(CALC)

    code, report, _ = run_cli(repo, tmp_path, capsys)

    assert code == 0
    results = by_category(report)
    assert {r["status"] for r in results.values()} == {"accepted"}
    reasons = [r["reason"] or "" for r in results.values()]
    assert sum("merge conflict" in r for r in reasons) == 1
    assert report["after"]["failed"] == 1  # one fix merged, the other stays on its branch
    for r in results.values():
        assert r["branch"] in git(repo, "branch", "--list", r["branch"])


def test_crashing_agent_is_reported_and_others_unaffected(make_repo, tmp_path, capsys, agents):
    agents(unknown=doubles.Crash, async_event_loop=doubles.FixLower)
    repo = make_repo(CALC)
    before = GitRepo(repo).fingerprint()

    code, report, _ = run_cli(repo, tmp_path, capsys)

    assert code == 0
    results = by_category(report)
    assert results["unknown"]["status"] == "error"
    assert "fell over" in results["unknown"]["reason"]
    assert results["async_event_loop"]["status"] == "accepted"
    assert report["after"]["failed"] == 1
    assert GitRepo(repo).fingerprint() == before


def test_interrupted_run_resumes_without_redoing_finished_agents(
    make_repo, tmp_path, capsys, agents
):
    agents(unknown=doubles.InterruptOnce, async_event_loop=doubles.FixLower)
    repo = make_repo(CALC)
    before = GitRepo(repo).fingerprint()

    code, report, err = run_cli(repo, tmp_path, capsys, "--parallel", "1")
    assert code == 130 and report is None
    session = re.search(r"--resume (\S+)`", err).group(1)
    assert GitRepo(repo).fingerprint() == before
    assert not list((GitRepo(repo).state_dir / "worktrees").iterdir())
    interrupted = list((tmp_path / "handoffs").glob("*.md"))
    assert len(interrupted) == 1 and "interrupted" in interrupted[0].read_text().lower()

    code = main(["run", str(repo), "--resume", session, "--no-tui", "--json"])
    out, _ = capsys.readouterr()
    report = json.loads(out)
    assert code == 0
    assert report["after"]["failed"] == 0
    state = GitRepo(repo).state_dir
    assert (state / "calls-FixLower.log").read_text().split() == ["async_event_loop"]  # not redone
    assert (state / "calls-InterruptOnce.log").read_text().split() == ["unknown", "unknown"]
    assert GitRepo(repo).fingerprint() == before


def test_dirty_tree_is_refused_unless_included(make_repo, tmp_path, capsys, agents):
    agents(unknown=doubles.FixCorrectly, async_event_loop=doubles.FixLower)
    repo = make_repo(CALC)
    ops = repo / "calc" / "ops.py"
    ops.write_text(ops.read_text() + '\nVERSION = "1.5"\n')
    (repo / "notes.txt").write_text("untracked: never blocks a run, never goes in\n")
    before = GitRepo(repo).fingerprint()
    sessions = GitRepo(repo).state_dir / "sessions"

    code, _, err = run_cli(repo, tmp_path, capsys)
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert last.startswith(
        "orchestrate: error: uncommitted changes to tracked files (calc/ops.py): commit or stash"
    )
    assert "--include-uncommitted" in last
    assert not sessions.exists() or not any(sessions.iterdir())  # a refusal records nothing

    code, report, _ = run_cli(repo, tmp_path, capsys, "--include-uncommitted")
    assert code == 0
    assert '"1.5"' in git(repo, "show", f"{report['integration_branch']}:calc/ops.py")
    assert "notes.txt" not in git(
        repo, "ls-tree", "-r", "--name-only", report["integration_branch"]
    )
    assert GitRepo(repo).fingerprint() == before


def test_an_untracked_file_does_not_block_a_run(make_repo, tmp_path, capsys, agents):
    agents(async_event_loop=doubles.FixLower)
    repo = make_repo(CALC)
    (repo / "scratch.py").write_text("x = 1\n")
    code, report, err = run_cli(repo, tmp_path, capsys)
    assert code == 0, err
    assert report["integration_branch"]
