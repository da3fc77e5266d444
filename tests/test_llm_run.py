"""`orchestrate run` end to end with the real Anthropic SDK talking to a scripted local Messages API.

Nothing is stubbed inside the run: the CLI, the graph, the worktrees, the verifier and the SDK's
HTTP client all do their real work; only the far end of the socket is scripted.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from agents.base import prompt_text
from agents.llm import DEFAULT_MODEL, GUESS_MODEL
from orchestrator.cli import main
from orchestrator.gitops import GitRepo
from tests.conftest import git
from tests.fake_anthropic import DROP, FakeAnthropic, call, error, reply

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
            return uuid.UUID(module_id).hex
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
FIX = call("replace_in_file", path="calc/ops.py", old="return a - b  # add", new="return a + b  # add")


def guessed(request) -> dict:
    return reply(text=f"Here you go:\n{json.dumps(GUESS)}", usage={"input_tokens": 300, "output_tokens": 30})


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch):
    """The local Messages API, with the SDK pointed at it and a key set."""
    with FakeAnthropic(guess=guessed) as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
        monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        monkeypatch.setenv("no_proxy", "127.0.0.1")
        yield server


def run_cli(repo: Path, tmp_path: Path, capsys, *extra: str) -> tuple[int, dict, str, str]:
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
    assert (result["agent"], result["status"]) == ("llm", "accepted")
    assert result["fixed"] == [ADD] and result["files_changed"] == ["calc/ops.py"]
    assert (report["before"]["failed"], report["after"]["failed"]) == (1, 0)
    assert "return a + b" in git(repo, "show", f"{report['integration_branch']}:calc/ops.py")
    message = git(repo, "log", "-1", "--format=%B", result["branch"])
    assert "add subtracted; it adds now" in message
    assert "Addition subtracts (model's guess)" in message

    # 5 turns: 2000+4*500 in, 100+4*50 out, 3000 cache write, 4*3000 cache read, at Sonnet 5.5 prices
    cost = (4000 * 2 + 300 * 10 + 3000 * 2.5 + 12000 * 0.1) / 1e6
    handoff = Path(report["handoff"]).read_text()
    assert f"Total usage: 19,300 tokens, ${cost:.4f} ({DEFAULT_MODEL})" in handoff
    assert f"| llm | unknown | 1/1 | accepted |" in handoff

    # what the SDK sent
    [guess] = [r for r in api.requests if r.category is None]
    assert guess.body["model"] == GUESS_MODEL and ADD in guess.body["messages"][0]["content"]
    turns = api.agent_requests("unknown")
    assert [r.turn for r in turns] == [0, 1, 2, 3, 4]
    first = turns[0].body
    assert first["model"] == DEFAULT_MODEL
    assert [t["name"] for t in first["tools"]] == [
        "list_files",
        "read_file",
        "search",
        "replace_in_file",
        "create_file",
        "run_tests",
        "finish",
    ]
    assert first["tools"][-1]["cache_control"] == {"type": "ephemeral"}
    [system] = first["system"]
    assert system["cache_control"] == {"type": "ephemeral"}
    assert system["text"].startswith(prompt_text("unknown").rstrip())
    assert ADD in system["text"]
    assert "# Work order: Addition subtracts (model's guess)" in system["text"]
    assert "calc/ops.py" in turns[1].results()[0]["content"]
    assert "return a - b" in turns[2].results()[0]["content"]
    assert turns[3].results()[0]["content"] == "calc/ops.py: replaced 1 occurrence"
    assert f"{ADD}: passed" in turns[4].results()[0]["content"]  # run_tests ran the edit
    for request in api.requests:
        assert request.path == "/v1/messages"
        assert request.headers["authorization"] == f"Bearer {KEY}"
        assert KEY not in request.raw.decode()
        assert not [k for k, v in request.headers.items() if KEY in v and k != "authorization"]
