"""`orchestrate run` end to end with the real Anthropic SDK talking to a scripted local Messages API.

Nothing is stubbed inside the run: the CLI, the graph, the worktrees, the verifier and the SDK's
HTTP client all do their real work; only the far end of the socket is scripted.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.agents.llm import DEFAULT_MODEL, GUESS_MODEL, category_notes, static_prompt
from orchestrator.cli import main
from orchestrator.git import GitRepo
from orchestrator.suite import sandbox
from tests.helpers import git
from tests.helpers.fake_anthropic import DROP, FakeAnthropic, call, error, reply

KEY = "sk-ant-test-SECRET123"
ADD = "tests/test_ops.py::test_add"
UUID = "tests/test_crud.py::test_other"
GUESS = {"title": "Addition subtracts", "root_cause": "calc.ops.add uses minus"}

CALC = {
    "calc/__init__.py": "",
    "calc/ops.py": """
        def add(a, b):
            return a - b  # add


        def mul(a, b):
            return a * b
    """,
    "tests/__init__.py": "",
    "tests/test_ops.py": """
        from calc.ops import add, mul


        def test_add():
            assert add(2, 3) == 5


        def test_mul():
            assert mul(2, 3) == 6
    """,
}
# a uuid_type failure the offline UuidType codemod fixes (no model needed)
CRUD = {
    "app/__init__.py": "",
    "app/crud.py": """
        import uuid


        def get_module(module_id):
            return uuid.UUID(str(module_id)).hex
    """,
    "tests/test_crud.py": """
        from app.crud import get_module


        def test_other():
            other_id = "mod-002"
            assert len(get_module(other_id)) == 32
    """,
}
FIRST = {  # the first turn writes the cache, later turns read it
    "input_tokens": 2000,
    "output_tokens": 100,
    "cache_creation_input_tokens": 3000,
    "cache_read_input_tokens": 0,
}
LATER = {
    "input_tokens": 500,
    "output_tokens": 50,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 3000,
}
FIX = call(
    "replace_in_file", path="calc/ops.py", old="return a - b  # add", new="return a + b  # add"
)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch):
    """The local Messages API, with the SDK pointed at it and a key set."""
    with FakeAnthropic(guess=reply(text=f"Here you go:\n{json.dumps(GUESS)}")) as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
        monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        monkeypatch.setenv("no_proxy", "127.0.0.1")
        yield server


def run_cli(repo: Path, tmp_path: Path, capsys, *extra: str) -> tuple[int, dict, str, str]:
    """`orchestrate run` with lanes one at a time (concurrent `git worktree add`s can race)."""
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
            "--parallel",
            "1",
            *extra,
        ]
    )
    out, err = capsys.readouterr()
    return code, json.loads(out), out, err


def by_category(report: dict) -> dict[str, dict]:
    return {a["category"]: a for a in report["agents"]}


def test_model_fixes_an_unknown_bug_through_the_real_sdk(make_repo, tmp_path, capsys, api):
    api.scripts["unknown"] = [
        reply(call("list_files", pattern="*.py"), text="Looking around.", usage=FIRST),
        reply(call("read_file", path="calc/ops.py"), usage=LATER),
        reply(FIX, usage=LATER),
        reply(call("run_tests"), usage=LATER),
        reply(call("finish", explanation="add subtracted; it adds now"), usage=LATER),
    ]
    repo = make_repo(CALC)
    before = GitRepo(repo).fingerprint()

    code, report, _, err = run_cli(repo, tmp_path, capsys)

    assert code == 0, err
    assert GitRepo(repo).fingerprint() == before
    result = by_category(report)["unknown"]
    assert (result["agent"], result["status"]) == ("llm", "accepted"), result["reason"]
    assert result["fixed"] == [ADD] and result["files_changed"] == ["calc/ops.py"]
    assert (report["before"]["failed"], report["after"]["failed"]) == (1, 0)
    assert "return a + b" in git(repo, "show", f"{report['integration_branch']}:calc/ops.py")
    message = git(repo, "log", "-1", "--format=%B", result["branch"])
    assert "add subtracted; it adds now" in message
    assert "Addition subtracts (model's guess)" in message

    # 5 turns: 2000+4*500 in, 100+4*50 out, 3000 cache write, 4*3000 cache read, at Sonnet 5.5 prices
    cost = (4000 * 2 + 300 * 10 + 3000 * 2.5 + 12000 * 0.1) / 1e6
    guess = (100 * 0.1 + 20 * 0.5) / 1e6  # the category guess: 100 in, 20 out at Haiku 5.5
    handoff = Path(report["handoff"]).read_text()
    assert f"Total usage: 19,420 tokens, ${cost + guess:.4f} ({DEFAULT_MODEL})" in handoff
    assert "| llm | unknown | 1/1 | accepted |" in handoff
    assert result["usage"]["cost_usd"] == pytest.approx(cost)
    assert result["usage"]["requests"] == 5
    assert report["usage"]["requests"] == 6  # every call: the agent's five and the guess
    assert report["usage"]["cost_usd"] == pytest.approx(cost + guess)
    assert report["usage"]["cost_per_fixed_test_usd"] == pytest.approx(cost + guess)

    # what the SDK sent
    [guess] = [r for r in api.requests if r.category is None]
    assert guess.body["model"] == GUESS_MODEL and ADD in guess.body["messages"][0]["content"]
    turns = api.agent_requests("unknown")
    assert [r.turn for r in turns] == [0, 1, 2, 3, 4]
    first = turns[0].body
    assert first["model"] == DEFAULT_MODEL
    names = [t["name"] for t in first["tools"]]
    assert names[:3] == ["list_files", "read_file", "search"] and names[-1] == "finish"
    assert {"run_tests", "git_log", "read_package_file"} <= set(names)
    assert ("run" in names) == (sandbox.available() is not None)
    assert first["tools"][-1]["cache_control"] == {"type": "ephemeral"}
    static, order = first["system"]
    assert static["text"] == static_prompt() and static["cache_control"] == {"type": "ephemeral"}
    assert order["text"].startswith(category_notes("unknown"))
    assert ADD in order["text"]
    assert "# Work order: Addition subtracts (model's guess)" in order["text"]
    assert "### calc/ops.py" in order["text"]  # the code under test, not only the test
    assert all(r.body["cache_control"] == {"type": "ephemeral"} for r in turns)
    assert "cache_control" not in guess.body
    assert "calc/ops.py" in turns[1].results()[0]["content"]
    assert "return a - b" in turns[2].results()[0]["content"]
    assert turns[3].results()[0]["content"] == "calc/ops.py: replaced 1 occurrence"
    assert "1 tests: 1 passed" in turns[4].results()[0]["content"]  # run_tests ran the edit
    assert f"passed: {ADD}" in turns[4].results()[0]["content"]
    for request in api.requests:
        assert request.path == "/v1/messages"
        assert request.headers["authorization"] == f"Bearer {KEY}"
        assert KEY not in request.raw.decode()
        assert not [k for k, v in request.headers.items() if KEY in v and k != "authorization"]


def test_connection_drop_is_that_agents_error_and_the_run_goes_on(
    make_repo, tmp_path, capsys, api, monkeypatch
):
    monkeypatch.setattr("anthropic._base_client.INITIAL_RETRY_DELAY", 0.01)  # quick backoff
    api.scripts["unknown"] = [
        reply(call("list_files"), usage=FIRST),
        reply(call("read_file", path="calc/ops.py"), usage=LATER),
        DROP,  # the third turn (and every retry of it) gets a closed socket
    ]
    repo = make_repo({**CALC, **CRUD})
    before = GitRepo(repo).fingerprint()

    code, report, _, err = run_cli(repo, tmp_path, capsys)

    assert code == 0, err
    assert GitRepo(repo).fingerprint() == before
    results = by_category(report)
    assert results["unknown"]["status"] == "error"
    reason = results["unknown"]["reason"]
    assert reason.startswith("could not reach the Anthropic API: ")
    assert "disconnected" in reason.lower()
    assert results["uuid_type"]["agent"] == "uuid_type", err
    assert results["uuid_type"]["status"] == "accepted"
    assert results["uuid_type"]["fixed"] == [UUID]
    assert (report["before"]["failed"], report["after"]["failed"]) == (2, 1)
    turns = api.agent_requests("unknown")
    # the SDK retried the dropped turn (4 retries) before giving up
    assert [r.turn for r in turns] == [0, 1, 2, 2, 2, 2, 2]
    assert [r.headers["x-stainless-retry-count"] for r in turns[2:]] == ["0", "1", "2", "3", "4"]
    assert not api.agent_requests("uuid_type")  # the codemod fixed it; no model needed
    # the errored lane's two paid turns are counted, and so is the guess
    assert results["unknown"]["usage"]["requests"] == 2
    assert report["usage"]["requests"] == 3

    # the planner's guess named the group, marked as a guess, and the handoff says so
    handoff = Path(report["handoff"]).read_text()
    assert "### 1. Addition subtracts (model's guess) (1 failure)" in handoff
    assert "calc.ops.add uses minus (model's guess)" in handoff
    assert "could not reach the Anthropic API" in handoff
    assert "agent unknown (llm): error" in err


def test_refused_key_is_an_error_naming_the_variable_and_the_run_completes(
    make_repo, tmp_path, capsys, api
):
    refused = error(401, "authentication_error", f"invalid x-api-key {KEY}")
    api.guess = refused
    api.scripts["unknown"] = [refused]
    repo = make_repo({**CALC, **CRUD})

    code, report, _, err = run_cli(repo, tmp_path, capsys)

    assert code == 0, err
    results = by_category(report)
    assert results["unknown"]["status"] == "error"
    assert results["unknown"]["reason"] == (
        "the Anthropic API refused the key (401): check ANTHROPIC_API_KEY"
    )
    assert results["uuid_type"]["status"] == "accepted"
    assert report["after"]["failed"] == 1
    assert "warning: model could not name the unknown group: the Anthropic API refused" in err
    assert len(api.agent_requests("unknown")) == 1  # a refused key is not retried
    handoff = Path(report["handoff"]).read_text()
    assert "(model's guess)" not in handoff
    assert "check ANTHROPIC_API_KEY" in handoff
    assert KEY not in err + handoff


def test_the_key_is_written_nowhere(make_repo, tmp_path, capsys, api):
    """Even a model that echoes the key back (in its guess, text, tool calls, explanation)."""
    api.guess = reply(text=json.dumps({"title": f"Leak {KEY}", "root_cause": f"saw {KEY}"}))
    api.scripts["unknown"] = [
        reply(call("read_file", path=f"{KEY}.txt"), text=f"my key is {KEY}", usage=FIRST),
        reply(call("search", pattern=KEY), usage=LATER),
        reply(FIX, usage=LATER),
        reply(call("run_tests"), usage=LATER),
        reply(call("finish", explanation=f"add subtracted; by the way {KEY}"), usage=LATER),
    ]
    repo = make_repo({**CALC, **CRUD})

    code, report, out, err = run_cli(repo, tmp_path, capsys)

    assert code == 0, err
    assert {a["status"] for a in report["agents"]} == {"accepted"}
    assert KEY not in out and KEY not in err
    written = [*(tmp_path / "handoffs").rglob("*"), *GitRepo(repo).state_dir.rglob("*")]
    checkpoints = GitRepo(repo).state_dir / "checkpoints.sqlite"
    assert checkpoints in written
    leaks = [p for p in written if p.is_file() and KEY.encode() in p.read_bytes()]
    assert leaks == []
    history = git(repo, "log", "-p", "--format=%H%n%B", "--branches=orchestrate/*")
    assert "add subtracted; by the way [redacted]" in history
    assert "fix(unknown): Leak [redacted] (model's guess)" in history  # the guess, scrubbed
    assert KEY not in history
    for request in api.agent_requests("unknown"):
        assert not [r for r in request.results() if KEY in json.dumps(r)]
    [first, *_] = api.agent_requests("unknown")
    assert KEY not in first.raw.decode()  # the work order, with the guess in it, is scrubbed


def test_without_a_key_the_run_says_once_what_waits_for_a_model(
    make_repo, tmp_path, capsys, api, monkeypatch
):
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    repo = make_repo({**CALC, **CRUD})

    code, report, _, err = run_cli(repo, tmp_path, capsys)

    assert code == 0, err
    assert api.requests == []  # no guess, no agent
    assert [a["category"] for a in report["agents"]] == ["uuid_type"]
    assert report["agents"][0]["status"] == "accepted"
    assert git(repo, "branch", "--list", "orchestrate/*/unknown") == ""
    left = [line for line in err.splitlines() if "unknown" in line and "left" in line]
    assert len(left) == 1
    assert left[0].split(" ", 1)[1] == (
        "warning: left: unknown: no offline specialist; needs a model (set ANTHROPIC_API_KEY)"
    )
    assert "model could not name" not in err and ", model " not in err
    handoff = Path(report["handoff"]).read_text()
    assert "`llm` on `unknown`: target 1 test (" in handoff


def test_a_fix_without_finish_is_verified_and_merged(make_repo, tmp_path, capsys, api, monkeypatch):
    """An overloaded API makes the lane wait and go on; the turn limit stops the loop after a
    good edit: the edit goes to the verifier, passes, is merged; the steps are in the log; the
    transcript is saved (scrubbed) and shown."""
    monkeypatch.setattr("anthropic._base_client.INITIAL_RETRY_DELAY", 0.01)
    monkeypatch.setattr("anthropic._base_client.MAX_RETRY_DELAY", 0.02)
    monkeypatch.setattr("orchestrator.run.lanes.OVERLOAD_WAITS_S", [0.05])
    busy = error(529, "overloaded_error", "Overloaded")
    api.scripts["unknown"] = [
        # the SDK's 5 tries all meet a 529; the lane waits and asks again, which works
        [*[busy] * 5, reply(FIX, text=f"Fixing it (key {KEY}).", usage=FIRST)],
        reply(call("run_tests", tests=["tests/test_ops.py"]), usage=LATER),
        reply(call("list_files"), usage=LATER),
    ]
    repo = make_repo(CALC)

    code, report, _, err = run_cli(repo, tmp_path, capsys, "--max-turns", "3")

    assert code == 0, err
    result = by_category(report)["unknown"]
    assert result["status"] == "accepted", result["reason"]
    assert result["fixed"] == [ADD]
    assert "return a + b" in git(repo, "show", f"{report['integration_branch']}:calc/ops.py")
    message = git(repo, "log", "-1", "--format=%B", result["branch"])
    assert "turn limit (3 turns)" in message and "edits go to the verifier" in message
    turns = api.agent_requests("unknown")
    assert [r.turn for r in turns] == [0] * 6 + [1, 2]
    assert "unknown: the Anthropic API failed (529): Overloaded; retrying in 0 s" in err
    assert result["usage"]["requests"] == 3  # errors are not billed; the three replies are
    # run_tests took a path: both tests of the file ran, pytest's report came back
    ran = turns[7].results()[0]["content"]
    assert "2 tests: 2 passed" in ran and "test_mul" in ran
    # the plain log shows the model's steps
    assert "unknown (llm) #1: replace_in_file" in err
    assert "unknown (llm) #1: says: Fixing it (key [redacted])" in err

    transcripts = GitRepo(repo).state_dir / "sessions" / report["session"] / "transcripts"
    [saved] = list(transcripts.glob("*.json"))
    assert saved.name == "unknown-attempt-1.json" and KEY not in saved.read_text()
    data = json.loads(saved.read_text())
    assert data["usage"]["requests"] == 3 and data["stopped"].startswith("the turn limit")
    assert main(["transcript", report["session"], "--repo", str(repo)]) == 0
    listing = capsys.readouterr().out
    assert listing.startswith("unknown-attempt-1: claude-sonnet-5-5, ") and "3 requests" in listing
    assert main(["transcript", report["session"], "unknown", "--repo", str(repo)]) == 0
    shown = capsys.readouterr().out
    assert "-- assistant tool_use: replace_in_file" in shown and "2 tests: 2 passed" in shown
    assert main(["transcript", "nope", "--repo", str(repo)]) == 2
    assert "no transcripts for session 'nope'" in capsys.readouterr().err


def test_a_retry_sees_the_rejected_diff_and_the_budget_covers_every_attempt(
    make_repo, tmp_path, capsys, api
):
    costly = {"input_tokens": 100_000, "output_tokens": 0}  # $0.20 a call at Sonnet 5.5
    wrong = call("replace_in_file", path="calc/ops.py", old="return a - b", new="return a * b")
    api.scripts["unknown"] = [
        reply(wrong, usage=costly),
        reply(call("finish", explanation="multiply"), usage=costly),
        reply(FIX, usage=costly),  # attempt 2, in the same conversation
        reply(call("finish", explanation="add"), usage=costly),
        reply(call("finish", explanation="never asked"), usage=costly),
    ]
    repo = make_repo(CALC)

    code, report, _, err = run_cli(
        repo, tmp_path, capsys, "--budget-usd", "0.7", "--max-attempts", "3"
    )

    assert code == 0, err
    result = by_category(report)["unknown"]
    turns = api.agent_requests("unknown")
    assert len(turns) == 3  # a fourth call would pass $0.70 over the attempts
    # the budget stopped attempt 2 after its fix: the fix went to the verifier and holds
    assert result["status"] == "accepted", result["reason"]
    assert "return a + b" in git(repo, "show", f"{report['integration_branch']}:calc/ops.py")
    assert result["usage"]["cost_usd"] == pytest.approx(0.6)
    assert result["usage"]["cost_usd"] <= 0.7
    guess = (100 * 0.1 + 20 * 0.5) / 1e6
    assert report["usage"]["cost_usd"] == pytest.approx(0.6 + guess)
    assert report["usage"]["requests"] == 4
    # the retry is the next turn of the same conversation: the verdict and the rejected diff
    retry = turns[2].body["messages"]
    assert retry[:3] == turns[1].body["messages"]
    [verdict] = retry[-1]["content"]
    assert (
        verdict["type"] == "tool_result" and verdict["tool_use_id"] == retry[-2]["content"][0]["id"]
    )
    assert "Attempt 1 was rejected by the verifier" in verdict["content"]
    assert "```diff" in verdict["content"]
    assert "-    return a - b  # add" in verdict["content"]
    assert "+    return a * b  # add" in verdict["content"]
    assert "[redacted]" not in verdict["content"] and KEY not in turns[2].raw.decode()
