"""Handoffs across real runs: what session 1 writes is what session 2 starts from.

Runs are driven through `orchestrator.cli.main` on throwaway repos, with test-double agents
(tests/doubles.py) judged by the real verifier; no model is configured, so the logic bug no
offline specialist takes is left over for the next session.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sys
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.git import GitRepo
from orchestrator.handoff import read_handoff
from tests.helpers import doubles, git, write_files

PY = f"{sys.executable} -m pytest"
ADD = "tests/test_ops.py::test_add"
SUB = "tests/test_ops.py::test_sub"
LOWER = "tests/test_text.py::test_lower"
FLAG = "tests/test_flags.py::test_flag_default"

# `add` and `sub` are logic bugs (category unknown: only a model could take them); `lower` raises
# an event-loop error (async_event_loop), which doubles.FixLower repairs.
CALC = {
    "calc/__init__.py": "",
    "calc/ops.py": """
        def add(a, b):
            return a - b  # add


        def sub(a, b):
            return a + b  # sub


        def mul(a, b):
            return a * b
    """,
    "calc/text.py": """
        def lower(s):
            raise RuntimeError("Event loop is closed")
    """,
    "tests/test_ops.py": """
        from calc.ops import add, mul, sub


        def test_add():
            assert add(2, 3) == 5


        def test_sub():
            assert sub(5, 3) == 2


        def test_mul():
            assert mul(2, 3) == 6
    """,
    "tests/test_text.py": """
        from calc.text import lower


        def test_lower():
            assert lower("ABC") == "abc"
    """,
}


def run_cli(capsys, *argv: str) -> tuple[int, dict | None, str]:
    code = main([*argv, "--no-tui", "--json", "--no-isolation", "--timeout", "20"])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


def checkout(repo: Path) -> dict:
    """The user's checkout as `GitRepo.fingerprint` sees it, leaving out the handoffs."""
    seen = GitRepo(repo).fingerprint()
    seen["files"] = {f: h for f, h in seen["files"].items() if not f.startswith("handoffs/")}
    seen["status"] = [line for line in seen["status"].splitlines() if "handoffs/" not in line]
    return seen


def first_session(make_repo, capsys, agents, handoffs: Path | None) -> tuple[Path, dict, Path]:
    """Session 1: the event-loop error is fixed, the two logic bugs are left over."""
    agents(async_event_loop=doubles.FixLower)
    repo = make_repo(CALC)
    where = ["--handoff-dir", str(handoffs)] if handoffs else []
    code, report, err = run_cli(capsys, "run", str(repo), *where)
    assert code == 0, err
    path = Path(report["handoff"])
    assert path == (handoffs or repo / "handoffs") / f"{dt.date.today().isoformat()}-session-1.md"
    return repo, report, path


def test_session_one_handoff_holds_exactly_what_the_run_reported(
    make_repo, tmp_path, capsys, agents
):
    repo, report, path = first_session(make_repo, capsys, agents, tmp_path / "handoffs")
    assert (report["before"]["failed"], report["after"]["failed"]) == (3, 2)

    view = read_handoff(path)
    state = view.state
    assert view.source == "orchestrate" and state is not None
    assert state.session == report["session"]
    assert state.before.model_dump() == report["before"]
    assert state.after.model_dump() == report["after"]
    assert state.integration_branch == report["integration_branch"]
    assert state.repo == str(repo) and state.base_commit == git(repo, "rev-parse", "HEAD")
    agents_written = [a.contract_json() for a in state.agents]
    assert agents_written == report["agents"]
    assert [(a.category, a.status, a.fixed) for a in state.agents] == [
        ("async_event_loop", "accepted", [LOWER])
    ]
    # two different signatures: two plan items of one category, each with its own command
    assert [(c.id, c.tests) for c in state.remaining] == [("unknown", [ADD]), ("unknown", [SUB])]
    assert [(p.agent, p.category, p.target) for p in state.next_plan] == [
        ("llm", "unknown", 1),
        ("llm", "unknown", 1),
    ]
    assert state.test_command == PY and state.previous is None
    # the contract's view of it: the suite command, one command per remaining category
    assert view.commands == [PY, f"{PY} {ADD}", f"{PY} {SUB}"]
    assert view.test_command == PY and view.ignores == [] and view.deselect == []
    assert view.previous.model_dump() == report["after"]
    assert [(c.category, c.count, c.tests) for c in view.categories] == [
        ("unknown", 1, [ADD]),
        ("unknown", 1, [SUB]),
    ]

    text = path.read_text(encoding="utf-8")
    assert text.startswith(f"# Handoff: session {report['session']} (")
    assert "| Total | 4 | 4 |\n| Passed | 1 | 2 |\n| Failed | 3 | 2 |" in text
    assert "- Failures this session: 3 → 2" in text
    assert "Failures since the previous handoff" not in text
    assert re.search(
        r"\| double \| async_event_loop \| 1/1 \| accepted \| \S+/async_event_loop \| "
        r"calc/text\.py \| no model \|",
        text,
    )
    remaining = text[text.index("## Remaining failures by category") : text.index("## Commands")]
    assert "### 1. Uncategorised failures: assert -1 == 5 (1 failure) - LOW" in remaining
    assert "- **Pattern**: `assert -1 == 5`" in remaining  # the real assertion message
    assert f"`{ADD}`" in remaining and f"`{SUB}`" in remaining
    commands = text[text.index("## Commands") : text.index("## Next plan")]
    assert f"```bash\n{PY}\n```" in commands
    assert f"{PY} {ADD}\n" in commands and f"{PY} {SUB}\n" in commands
    assert f"orchestrate run {repo} --from-handoff {path}" in commands
    assert "1. `llm` on `unknown`: target 1 test (low)" in text
    assert "**Integration branch**" in text and report["integration_branch"] in text


def test_next_session_starts_from_the_handoff_and_says_what_changed(make_repo, capsys, agents):
    # The handoffs stay in the repo's handoffs/ (untracked): they are not uncommitted work, so
    # the resume command the handoff prints just works.
    repo, first, path = first_session(make_repo, capsys, agents, None)
    base = git(repo, "rev-parse", "HEAD")
    # The user merges the fix, repairs `sub` by hand and adds a test that fails.
    git(repo, "merge", "-q", "--ff-only", first["integration_branch"])
    ops = repo / "calc" / "ops.py"
    ops.write_text(ops.read_text().replace("return a + b  # sub", "return a - b  # sub"))
    write_files(
        repo,
        {
            "tests/test_flags.py": """
                def make_flag():
                    return None


                def test_flag_default():
                    flag = make_flag()
                    assert flag is True


                def test_flag_set():
                    assert make_flag() is None
            """
        },
    )
    git(repo, "add", "calc", "tests")
    git(repo, "commit", "-q", "-m", "fix sub by hand, add flags")
    commits = int(git(repo, "rev-list", "--count", f"{base}..HEAD"))
    # The unknown group now has an agent; the new model_defaults failure (priority high) too.
    agents(unknown=doubles.FixCorrectly, model_defaults=doubles.Crash)
    before = checkout(repo)

    code, report, err = run_cli(
        capsys,
        "run",
        str(repo),
        "--from-handoff",
        str(path),
        "--parallel",
        "1",
    )

    assert code == 0, err
    assert checkout(repo) == before  # the only change: the new handoff under handoffs/
    assert (
        f"orchestrate: from {path}: test command `{PY}`, 0 ignores, 0 deselected, 2 categories"
        in err
    )
    # a fresh baseline: the suite as it is now, not as the handoff saw it
    assert report["before"] == {**report["before"], "total": 6, "passed": 4, "failed": 2}
    log = [line.split(" ", 1)[1] for line in err.splitlines() if re.match(r"\d\d:\d\d:\d\d ", line)]
    stale = [line for line in log if line.startswith("info: since the handoff: ")]
    assert stale == [
        f"info: since the handoff: HEAD is {git(repo, 'rev-parse', 'HEAD')[:10]}, "
        f"the handoff was written at {base[:10]} ({commits} commits since)",
        f"info: since the handoff: fixed since: 1 tests the handoff lists as failing pass now: {SUB}",
        f"info: since the handoff: new failures: 1 tests fail now that the handoff does not list: "
        f"{FLAG}",
    ]
    # the handoff's categories go first, though model_defaults outranks unknown on priority
    plan = log[log.index("plan: 2 categories") + 1 :][:2]
    assert [line.split() for line in plan] == [
        ["unknown", "1", "low", "double_FixCorrectly"],
        ["model_defaults", "1", "high", "double_Crash"],
    ]
    started = [m.group(1) for line in log if (m := re.match(r"agent (\w+) .*: proposing", line))]
    assert started == ["unknown", "model_defaults"]  # one at a time (--parallel 1), in that order
    results = {a["category"]: a for a in report["agents"]}
    assert results["unknown"]["status"] == "accepted" and results["unknown"]["fixed"] == [ADD]
    assert report["after"]["failed"] == 1

    second = Path(report["handoff"])
    assert second.name == f"{dt.date.today().isoformat()}-session-2.md"
    state = read_handoff(second).state
    assert state.base_commit == git(repo, "rev-parse", "HEAD")  # no snapshot of handoffs/
    assert state.previous == read_handoff(path).state.after
    text = second.read_text(encoding="utf-8")
    assert "- Failures this session: 2 → 1" in text
    assert "- Failures since the previous handoff: 2 → 1 (pass rate 50.0% → 83.3%)" in text
    assert [(c.id, c.tests) for c in state.remaining] == [("model_defaults", [FLAG])]

    # `orchestrate resume FILE REPO` continues the chain from session 2.
    git(repo, "merge", "-q", "--ff-only", report["integration_branch"])
    code, third, err = run_cli(capsys, "resume", str(second), str(repo))
    assert code == 0, err
    assert f"orchestrate: from {second}: test command `{PY}`" in err
    stale = [line for line in err.splitlines() if "since the handoff: " in line]
    assert len(stale) == 1 and "commits since)" in stale[0]  # nothing fixed, nothing new
    assert Path(third["handoff"]).name == f"{dt.date.today().isoformat()}-session-3.md"
    assert read_handoff(Path(third["handoff"])).state.previous == state.after


FREE_FORM = """\
# Calc suite - next phase

## Current State
**Test Status:**
- Total: 4 tests
- Passed: 2
- Failed: 2
- Runtime: 3 seconds

## Failure Categories Analysis (2 failures)

### 1. Arithmetic logic (1 failure) - HIGHEST PRIORITY
**Pattern**: `assert -1 == 5`
**Affected Files**:
- `tests/test_ops.py`

### 2. Something odd in the slow tests
**Decision**: look later

## Command to Run Focused Tests
```bash
# Quick verification after fixes
python -m pytest tests/test_ops.py::test_add -v

# Full test run (excluding slow tests)
python -m pytest tests/ --tb=short -q \\
  --ignore=tests/test_slow.py
```

## Old notes
```bash
pytest tests; touch {canary}
```
"""


def test_a_persons_handoff_gives_its_command_and_ignores_and_nothing_else_runs(
    make_repo, tmp_path, capsys, monkeypatch
):
    repo = make_repo(
        {
            **{k: v for k, v in CALC.items() if k != "tests/test_text.py"},
            "tests/test_slow.py": """
                def test_slow_and_broken():
                    assert False


                def test_slow_too():
                    pass
            """,
        }
    )
    canary = tmp_path / "CANARY"
    handoff = tmp_path / "notes.md"
    handoff.write_text(FREE_FORM.format(canary=canary), encoding="utf-8")
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")

    code, report, err = run_cli(
        capsys,
        "run",
        str(repo),
        "--from-handoff",
        str(handoff),
        "--handoff-dir",
        str(tmp_path / "handoffs"),
    )

    assert code == 0, err
    taken = "python -m pytest tests/ --tb=short -q"
    assert (
        f"orchestrate: from {handoff}: test command `{taken}`, 1 ignores, 0 deselected, 2 categories"
        in err
    )
    assert (
        "orchestrate: could not read: category heading without a count: "
        "2. Something odd in the slow tests" in err
    )
    assert (
        f"orchestrate: note: dropped `; touch {canary}` after pytest command `pytest tests`" in err
    )
    assert not canary.exists() and not (repo / "CANARY").exists()
    # the slow file is ignored: only test_ops.py's three tests ran
    assert report["before"]["total"] == 3 and report["before"]["failed"] == 2
    assert "tests/test_slow.py::" not in err
    state = read_handoff(Path(report["handoff"])).state
    assert state.test_command == taken and state.ignores == ["tests/test_slow.py"]
    assert (state.previous.total, state.previous.passed, state.previous.failed) == (4, 2, 2)
    assert "Failures since the previous handoff: 2 → 2 (pass rate 50.0% → 33.3%)" in Path(
        report["handoff"]
    ).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("content", "problem"),
    [(b"", "is empty"), (b"# Handoff\x00\x01\x02\xff", "is binary (NUL bytes)")],
)
@pytest.mark.parametrize("command", ["run", "resume"])
def test_a_malformed_handoff_is_one_line_and_nothing_runs(
    make_repo, tmp_path, capsys, content, problem, command
):
    repo = make_repo(CALC)
    handoff = tmp_path / "handoff.md"
    handoff.write_bytes(content)
    argv = (
        ["run", str(repo), "--from-handoff", str(handoff)]
        if command == "run"
        else ["resume", str(handoff), str(repo)]
    )

    code, report, err = run_cli(capsys, *argv, "--handoff-dir", str(tmp_path / "handoffs"))

    assert code == 2 and report is None
    assert err.count("\n") == 1
    assert err.startswith(f"orchestrate: error: handoff {handoff} {problem}")
    assert not (tmp_path / "handoffs").exists()
    assert not (repo / ".git" / "orchestrate").exists()  # no checkpoints, no worktrees
    assert git(repo, "branch", "--list", "orchestrate/*") == ""


def _outcome(report: dict) -> tuple:
    """What a run achieved, without its timings, session names and paths."""
    counts = {k: v for k, v in report["after"].items() if k != "duration_s"}
    agents = sorted(
        (a["category"], a["status"], tuple(a["fixed"]), a["reason"] is None)
        for a in report["agents"]
    )
    return counts, agents


def test_sigterm_mid_run_then_resume_finishes_with_the_uninterrupted_result(
    make_repo, capsys, agents
):
    import threading

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers need the main thread")
    agents(unknown=doubles.FixCorrectly, async_event_loop=doubles.FixLower)
    code, expected, err = run_cli(capsys, "run", str(make_repo(CALC)), "--parallel", "1")
    assert code == 0, err

    agents(unknown=doubles.TermOnce, async_event_loop=doubles.FixLower)
    repo = make_repo(CALC)
    code, report, err = run_cli(capsys, "run", str(repo), "--parallel", "1")
    assert code == 130 and report is None
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    session = re.search(r"--resume (\S+)`", last).group(1)
    assert last == (
        f"orchestrate: error: run {session} stopped; "
        f"resume with `orchestrate run {repo} --resume {session}`"
    )
    [handoff] = (repo / "handoffs").glob("*.md")
    assert f"orchestrate run {repo} --resume {session}" in handoff.read_text()

    # what a SIGKILL would have left too: a worktree holding an agent branch, a scratch branch
    worktrees = GitRepo(repo).state_dir / "worktrees"
    git(
        repo,
        "worktree",
        "add",
        "-q",
        "-b",
        f"orchestrate/{session}/unknown-x",
        str(worktrees / f"orchestrate-{session}-unknown-x"),
    )
    git(repo, "branch", f"orchestrate/{session}/scratch-final")

    # the interrupted handoff continues the same session, like --resume
    code, resumed, err = run_cli(capsys, "resume", str(handoff), str(repo))
    assert code == 0, err
    assert f"is interrupted session {session}: it goes on from where it stopped" in err
    assert "resume: removed what the interrupted run left: 2" in err
    assert resumed["session"] == session
    assert _outcome(resumed) == _outcome(expected)
    assert not list((GitRepo(repo).state_dir / "worktrees").iterdir())


def test_resuming_our_own_finished_handoff_keeps_merged_work_and_finds_nothing_new(
    make_repo, capsys, agents
):
    repo, first, path = first_session(make_repo, capsys, agents, None)
    integration = first["integration_branch"]  # not merged: HEAD is still session 1's base

    code, second, err = run_cli(capsys, "resume", str(path), str(repo))

    assert code == 0, err
    assert f"orchestrate: starting from {integration}: the handoff's merged fixes are kept" in err
    assert "since the handoff: the handoff matches the repository" in err
    assert "new failures" not in err
    # the fix merged in session 1 is not redone: the event-loop agent ran once
    calls = GitRepo(repo).state_dir / "calls-FixLower.log"
    assert calls.read_text().split() == ["async_event_loop"]
    assert second["before"]["failed"] == 2  # counted from the integration branch
    assert [a["category"] for a in second["agents"]] == []  # the rest needs a model
    state = read_handoff(Path(second["handoff"])).state
    assert state.base_commit == git(repo, "rev-parse", integration)
    assert [c.tests for c in state.remaining] == [[ADD], [SUB]]

    # HEAD moves on beside the unmerged branch: the choice is the user's, named exactly
    (repo / "NOTES.md").write_text("notes\n")
    git(repo, "add", "NOTES.md")
    git(repo, "commit", "-q", "-m", "notes")
    code, _, err = run_cli(capsys, "resume", str(path), str(repo))
    assert code == 2
    assert err.strip().splitlines()[-1] == (
        f"orchestrate: error: HEAD has moved since the handoff and its integration branch "
        f"{integration} is not merged: pass `--base {integration}` to continue from that branch, "
        "or `--base HEAD` to start over from HEAD"
    )
