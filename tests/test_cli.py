"""The smaller commands through the real CLI: `handoff show`, `bisect`, `clean`, `--help`, and
`triage --shuffle`."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from orchestrator.cli import main
from tests.helpers import HANDOFFS, ROOT, git, innocents

CONTRACT_KEYS = {
    "source",
    "test_command",
    "ignores",
    "deselect",
    "previous",
    "categories",
    "commands",
    "unread",
}
COUNT_KEYS = {"total", "passed", "failed", "errors", "skipped", "duration_s"}
CATEGORY_KEYS = {"title", "category", "count", "tests", "affected_files"}


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- handoff show ----------------------------------------------------------------------------

# Read off the files by hand: the full-suite command each one says to run, its --ignores, the
# counts it reports as current, the numbered failure categories and every pytest command.
SLOW_EIGHT = [
    "tests/common/test_base_subscriber.py",
    "tests/common/test_pubsub.py",
    "tests/common/test_pubsub_circuit_breaker.py",
    "tests/integration/test_redis_foundation.py",
    "tests/integration/test_redis_pubsub.py",
    "tests/integration/test_redis_performance.py",
    "tests/performance/test_failure_scenarios.py",
    "tests/unit/common/test_redis_pubsub_comprehensive.py",
]
SLOW_TWO = ["tests/common/test_pubsub.py", "tests/unit/common/test_redis_pubsub_comprehensive.py"]
UV = "uv run pytest tests/ --tb=short -q"
EXPECTED = {
    "model-schema-fixes-handoff.md": {
        "test_command": UV + "".join(f" --ignore={p}" for p in SLOW_EIGHT),
        "ignores": SLOW_EIGHT,
        "previous": {
            "total": 1433,
            "passed": 1209,
            "failed": 113,
            "errors": 4,
            "skipped": 56,
            "duration_s": 265.0,  # "4 minutes 25 seconds"
        },
        "categories": [
            ("Model Default Values", "model_defaults", 23),
            ("UUID Type Issues", "uuid_type", 15),
            ("API 409 Conflicts", "api_conflict", 16),
            ("Redis/Circuit Breaker", None, 28),
            ("Database Schema", "db_schema", 8),
        ],
        "commands": [
            "uv run pytest tests/backend/cc/test_models_coverage.py -v",
            "uv run pytest tests/backend/cc/test_crud.py::TestModuleCRUD"
            "::test_create_module_success -v",
            "uv run pytest tests/backend/cc/test_router.py::TestModuleRouterEndpoints"
            "::test_create_module_success -v",
            "uv run pytest tests/unit/backend/cc/test_database_schema.py -v",
            UV + "".join(f" --ignore={p}" for p in SLOW_EIGHT),
        ],
    },
    "infrastructure-stability-handoff.md": {
        "test_command": UV + "".join(f" --ignore={p}" for p in SLOW_TWO),
        "ignores": SLOW_TWO,
        "previous": {
            "total": 1322,
            "passed": 1269,
            "failed": 53,
            "errors": None,
            "skipped": None,
            "duration_s": 240.0,  # "~4 minutes"
        },
        "categories": [  # "12-15 failures" is taken at its lower bound
            ("Async Event Loop Conflicts", "async_event_loop", 12),
            ("Docker Container Lifecycle Issues", "docker_lifecycle", 8),
            ("API Endpoint & Dependencies", "api_routing", 10),
            ("Redis Pub/Sub Integration Broken", "mock_not_called", 12),
            ("Performance & Load Testing Issues", None, 5),
        ],
        "commands": [
            "uv run pytest tests/performance/test_comprehensive_benchmarks.py::"
            "TestAPIEndpointBenchmarks::test_cc_module_endpoints_latency -v",
            "uv run pytest tests/performance/test_failure_scenarios.py::"
            "TestRedisFailureScenarios::test_redis_connection_failure_graceful_degradation -v",
            "uv run pytest tests/unit/backend/cc/test_deps.py::test_get_cc_db_returns_session -v",
            "uv run pytest tests/unit/backend/cc/test_logging_redis_publish.py::"
            "TestLogL1RedisPublishAfterCommit::test_publish_after_commit_event_log -v",
            UV + "".join(f" --ignore={p}" for p in SLOW_TWO),
            UV,
        ],
    },
    "session-9-handoff.md": {
        "test_command": "pytest -v",
        "ignores": [],
        "previous": {
            "total": 78,
            "passed": 74,
            "failed": 4,
            "errors": None,
            "skipped": None,
            "duration_s": None,
        },
        "categories": [],  # its numbered headings are lessons and files, not failure groups
        "commands": [
            "pytest tests/test_telemetry_ingestion.py -v",
            "pytest -v",
            "pytest tests/test_telemetry_ingestion.py --cov=app.services --cov-report=term-missing",
        ],
    },
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_handoff_show_json_is_the_contract(capsys, name: str) -> None:
    code, out, err = cli(capsys, "handoff", "show", str(HANDOFFS / name), "--json")
    assert code == 0 and err == ""
    view = json.loads(out)
    assert set(view) == CONTRACT_KEYS
    assert set(view["previous"]) == COUNT_KEYS
    assert all(set(c) == CATEGORY_KEYS for c in view["categories"])
    expected = EXPECTED[name]
    assert view["source"] == "free-form"
    assert view["test_command"] == expected["test_command"]
    assert view["ignores"] == expected["ignores"]
    assert view["deselect"] == []
    assert view["previous"] == expected["previous"]
    assert [(c["title"], c["category"], c["count"]) for c in view["categories"]] == expected[
        "categories"
    ]
    assert view["commands"] == expected["commands"]
    assert view["unread"] == []


def test_handoff_show_readable(capsys) -> None:
    code, out, _ = cli(capsys, "handoff", "show", str(HANDOFFS / "model-schema-fixes-handoff.md"))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "source:        free-form"
    assert lines[1] == "suite command: " + EXPECTED["model-schema-fixes-handoff.md"]["test_command"]
    assert lines[2] == "ignores:       8"
    assert lines[3:11] == [f"  {p}" for p in SLOW_EIGHT]
    assert lines[11] == "previous:      total 1433, passed 1209, failed 113, errors 4, skipped 56"
    assert "category:      Model Default Values -> model_defaults (23 tests)" in lines
    assert "category:      Redis/Circuit Breaker -> ? (28 tests)" in lines
    assert "command:       uv run pytest tests/backend/cc/test_models_coverage.py -v" in lines

    code, out, _ = cli(
        capsys, "handoff", "show", str(HANDOFFS / "infrastructure-stability-handoff.md")
    )
    assert code == 0
    # counts the handoff does not give read as unknown, never as Python's None
    assert "previous:      total 1322, passed 1269, failed 53, errors ?, skipped ?" in out
    assert "None" not in out
    assert (
        "note:          category 'Async Event Loop Conflicts' gives a range of 12-15 failures; "
        "its count is the lower bound" in out
    )


def test_handoff_show_of_a_missing_file_is_one_line(capsys, tmp_path) -> None:
    code, out, err = cli(capsys, "handoff", "show", str(tmp_path / "nope.md"), "--json")
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and err.startswith("orchestrate: error: handoff ")


# --- bisect ----------------------------------------------------------------------------------


POLLUTED = {
    "tests/test_a_setup.py": "import os\n"
    + innocents("early", 4)
    + '\n\ndef test_readonly_mode():\n    os.environ["SHOP_MODE"] = "readonly"\n'
    + innocents("late", 3),
    "tests/test_b_more.py": innocents("more", 3),
    "tests/test_c_shop.py": """
        import os


        def test_mode_is_writable():
            assert os.environ.get("SHOP_MODE", "writable") == "writable"
        """,
}
POLLUTER = "tests/test_a_setup.py::test_readonly_mode"
VICTIM = "tests/test_c_shop.py::test_mode_is_writable"
LEAK = "SHOP_MODE='readonly' left in os.environ"


def test_bisect_names_the_polluter_and_its_leak(make_repo, capsys) -> None:
    repo = make_repo(POLLUTED)

    code, out, err = cli(capsys, "bisect", str(repo), VICTIM, "--timeout", "20")

    assert code == 0
    lines = dict(line.split(":", 1) for line in out.splitlines())
    assert lines["victim"].strip() == VICTIM
    assert lines["verdict"].strip() == "polluter"
    assert lines["polluter"].strip() == POLLUTER
    assert lines["leak"].strip() == LEAK
    runs = int(lines["runs"])
    assert 3 <= runs <= 6  # the suite, the victim alone, then halving the 11 tests before it
    assert len(re.findall(r"isolation run \d+: ", err)) == runs  # progress goes to stderr

    code, out, _ = cli(capsys, "bisect", str(repo), VICTIM, "--json", "--timeout", "20")
    assert code == 0
    finding = json.loads(out)
    assert finding["victim"] == VICTIM and finding["kind"] == "polluter"
    assert finding["culprits"] == [POLLUTER]
    assert finding["leak"] == LEAK
    assert finding["runs"] == runs


def test_bisect_of_an_unknown_node_id_is_one_line(make_repo, capsys, monkeypatch) -> None:
    repo = make_repo(POLLUTED)
    nodeid = "tests/test_c_shop.py::test_no_such_test"
    monkeypatch.chdir(repo)  # no repository given: the current directory, as pytest

    code, out, err = cli(capsys, "bisect", nodeid, "--timeout", "20")

    assert (code, out) == (2, "")
    errors = [line for line in err.splitlines() if line.startswith("orchestrate: error:")]
    assert errors == [
        f"orchestrate: error: {nodeid} was not collected in {repo}: check the node id"
    ]
    assert err.rstrip("\n").splitlines()[-1] == errors[0]


# --- clean -----------------------------------------------------------------------------------


def test_clean_removes_leftover_worktrees_and_locks_then_branches(make_repo, capsys) -> None:
    repo = make_repo({"tests/test_ok.py": "def test_ok():\n    pass\n"})
    leftover = repo / ".git" / "orchestrate" / "worktrees" / "s1-uuid_type"
    git(repo, "worktree", "add", "-q", "-b", "orchestrate/s1/uuid_type", str(leftover))
    (leftover / "scratch.txt").write_text("half-done agent work\n")
    lock = repo / ".git" / "worktrees" / "s1-uuid_type" / "index.lock"
    lock.write_text("")
    git(repo, "branch", "orchestrate/s1/integration")
    (repo / ".git" / "orchestrate" / "sessions" / "s1").mkdir(parents=True)  # a session of ours
    # The user's own branch under orchestrate/, with a commit nowhere else: never ours to delete.
    git(repo, "checkout", "-q", "-b", "orchestrate/my-feature")
    (repo / "feature.txt").write_text("mine\n")
    git(repo, "add", "feature.txt")
    git(repo, "commit", "-q", "-m", "my feature")
    mine = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "main")
    (repo / "feature.txt").unlink(missing_ok=True)
    user_files = sorted(p.name for p in repo.iterdir())

    code, out, _ = cli(capsys, "clean", str(repo))

    assert code == 0
    assert out.splitlines() == [f"removed lock {lock}", f"removed worktree {leftover}"]
    assert not leftover.exists() and not lock.exists()
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert sorted(p.name for p in repo.iterdir()) == user_files
    branches = git(repo, "branch", "--format=%(refname:short)").split()
    assert "orchestrate/s1/uuid_type" in branches  # branches go only with --branches

    # The user is looking at the integration branch: --branches never deletes it.
    git(repo, "checkout", "-q", "orchestrate/s1/integration")
    code, out, _ = cli(capsys, "clean", str(repo), "--branches", "--dry-run")
    assert (code, out) == (0, "would remove branch orchestrate/s1/uuid_type\n")
    assert "orchestrate/s1/uuid_type" in git(repo, "branch", "--format=%(refname:short)")
    code, out, _ = cli(capsys, "clean", str(repo), "--branches")
    assert code == 0
    assert out.splitlines() == ["removed branch orchestrate/s1/uuid_type"]
    assert git(repo, "branch", "--format=%(refname:short)").split() == [
        "main",
        "orchestrate/my-feature",
        "orchestrate/s1/integration",
    ]
    assert git(repo, "rev-parse", "orchestrate/my-feature") == mine
    assert git(repo, "symbolic-ref", "--short", "HEAD") == "orchestrate/s1/integration"

    code, out, _ = cli(capsys, "clean", str(repo), "--branches")
    assert (code, out) == (0, "nothing to clean\n")


# --- help and imports --------------------------------------------------------------------------


def test_help_lists_every_command(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    listed = re.findall(r"^    (\w+)\s", out, re.M)
    assert listed == ["triage", "run", "resume", "bisect", "handoff", "transcript", "clean", "demo"]


HEAVY = ("langgraph", "anthropic", "textual", "libcst", "git", "rich")
PROBE = f"""
import sys
from orchestrator import cli

for argv in (["--help"], ["run", "--help"], ["handoff", "show", "--help"], ["bisect", "--help"]):
    try:
        cli.main(argv)
    except SystemExit:
        pass
print([m for m in {HEAVY!r} if m in sys.modules])
"""


def test_help_imports_nothing_heavy() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "usage: orchestrate" in proc.stdout
    assert proc.stdout.splitlines()[-1] == "[]"


# --- triage --shuffle --------------------------------------------------------------------------


def test_triage_shuffle_names_its_seed_and_replays(make_repo, capsys) -> None:
    repo = make_repo(
        {
            "tests/test_many.py": "".join(
                f"\n\ndef test_{i:02d}():\n    assert {i} == -1\n" for i in range(12)
            )
        }
    )
    seed_line = "suite ran in shuffled order, seed 7 (replay with --shuffle 7)"

    def failed_order(err: str) -> list[str]:
        return re.findall(r"FAILED (tests/test_many\.py::test_\d+) \(suite\)", err)

    code, out, err = cli(
        capsys, "triage", str(repo), "--shuffle", "7", "--json", "-v", "--no-isolation"
    )
    assert code == 1
    report = json.loads(out)
    assert set(report) == {
        "repo",
        "test_command",
        "baseline",
        "failures",
        "categories",
        "slow_tests",
        "environment",
    }
    assert report["baseline"]["failed"] == 12
    assert seed_line in err
    order = failed_order(err)
    assert sorted(order) == [f"tests/test_many.py::test_{i:02d}" for i in range(12)]
    assert order != sorted(order)  # it did run shuffled

    code, out, err = cli(capsys, "triage", str(repo), "--shuffle", "7", "--no-isolation")
    assert code == 1  # pytest's: tests fail
    assert "Failure categories" in out  # the readable table
    assert seed_line in err
    assert failed_order(err) == order  # the same seed, the same order

    code, _, err = cli(capsys, "triage", str(repo), "--json", "--no-isolation")
    assert code == 1 and "seed" not in err


# --- pytest's conventions --------------------------------------------------------------------

RED = {
    "tests/test_red.py": "".join(f"\n\ndef test_{i}():\n    assert {i} == -1\n" for i in range(5)),
    "tests/test_green.py": "def test_ok():\n    pass\n",
}


def test_triage_exits_like_pytest_lists_tests_and_passes_arguments_after_dashes(
    make_repo, capsys
) -> None:
    repo = make_repo(RED)
    code, out, _ = cli(capsys, "triage", str(repo), "--no-isolation")
    assert code == 1  # tests fail
    assert "tests/test_red.py::test_0\n" in out and "tests/test_red.py::test_2\n" in out
    assert "tests/test_red.py::test_3\n" not in out and "… and 2 more" in out

    code, out, _ = cli(capsys, "triage", str(repo), "--json", "--no-isolation", "--", "-k", "ok")
    assert code == 0  # only the passing test was selected
    assert json.loads(out)["baseline"]["total"] == 1

    code, _, err = cli(capsys, "triage", str(repo), "--no-isolation", "--", "-k", "nothing")
    assert code == 5  # no tests collected
    assert err.strip().splitlines()[-1].startswith("orchestrate: error: no tests collected")


def test_bad_input_is_one_line_and_pytest_spellings_are_accepted(capsys, tmp_path) -> None:
    code, out, err = cli(capsys, "triage", str(tmp_path), "--test-cmd", "pytest 'tests")
    assert (code, out) == (2, "")
    assert (
        err
        == 'orchestrate: error: --test-cmd "pytest \'tests": no closing quotation: close the quote\n'
    )

    from orchestrator.cli.arguments import parser

    assert parser().parse_args(["run", "-n", "3"]).parallel == 3


def test_handoff_show_into_a_closed_pipe_is_quiet(tmp_path) -> None:
    tests = "".join(f"- `tests/test_big.py::test_{i:05d}`\n" for i in range(4000))
    handoff = tmp_path / "big.md"  # its JSON is larger than a pipe holds
    handoff.write_text(f"## Remaining failures\n### 1. Many (4000 failures)\n{tests}")
    proc = subprocess.run(
        f"{sys.executable} -m orchestrator.cli handoff show {handoff} --json | head -c 10",
        shell=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.stdout == '{\n  "sourc'
    assert proc.stderr == ""


def test_a_second_ctrl_c_leaves_at_once_without_a_traceback(make_repo) -> None:
    import signal
    import time

    repo = make_repo(
        {"tests/test_slow.py": "import time\n\n\ndef test_slow():\n    time.sleep(30)\n"}
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli", "run", str(repo), "--no-tui", "--no-isolation"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:  # wait for the suite to be running
        seen.append(line)
        if "suite baseline:" in line:
            break
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    code = proc.wait(timeout=30)
    # 130, or killed by the SIGINT itself when it lands as the interpreter is finishing (a shell
    # shows 130 for both)
    assert code in (130, -signal.SIGINT), "".join(seen) + rest
    assert time.monotonic() - started < 15
    err = "".join(seen) + rest
    assert "Traceback" not in err and "Exception ignored" not in err, err
