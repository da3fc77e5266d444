"""The model specialist against the real Anthropic SDK, with a scripted Messages API behind it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import anthropic
import httpx2
import pytest

from orchestrator.agents.llm import (
    DEFAULT_MODEL,
    GUESS_MODEL,
    MISSING_KEY,
    LLMSpecialist,
    category_notes,
    guess_category,
    static_prompt,
)
from orchestrator.errors import ModelError
from orchestrator.models import Failure, IsolationFinding, WorkOrder
from tests.helpers.fake_anthropic import call, reply

KEY = "sk-ant-test-0123456789-SECRET"
NODE = "tests/test_calc.py::test_add"


def error(status: int, kind: str, message: str, **headers: str) -> httpx2.Response:
    body = {"type": "error", "error": {"type": kind, "message": message}}
    return httpx2.Response(status, json=body, headers=headers)


class FakeAPI:
    """Answers each request with the next scripted reply (a body, a Response, or an exception)."""

    def __init__(self, *replies: object) -> None:
        self.replies = list(replies)
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        assert self.replies, "the loop asked for more turns than scripted"
        answer = self.replies.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer if isinstance(answer, httpx2.Response) else httpx2.Response(200, json=answer)

    def client(self, max_retries: int = 0) -> anthropic.Anthropic:
        transport = httpx2.MockTransport(self)
        return anthropic.Anthropic(
            api_key=KEY, http_client=httpx2.Client(transport=transport), max_retries=max_retries
        )

    @property
    def bodies(self) -> list[dict]:
        return [json.loads(r.content) for r in self.requests]

    def results(self, index: int) -> list[dict]:
        """The tool results sent with request `index` (the last user message)."""
        return self.bodies[index]["messages"][-1]["content"]


def work_order(**changes: object) -> WorkOrder:
    failure = Failure(
        nodeid=NODE,
        outcome="failed",
        category="unknown",
        signature="AssertionError: assert -1 == 5",
        message="assert -1 == 5",
        file="tests/test_calc.py",
        line=4,
        exc_type="AssertionError",
        longrepr="    def test_add():\n>       assert add(2, 3) == 5\nE       assert -1 == 5",
    )
    fields = dict(
        category="unknown",
        title="add returns the wrong sum",
        tests=[NODE],
        affected_files=["calc.py"],
        root_cause="calc.add subtracts its arguments",
        fix_strategy="make add add",
        priority="high",
        agent="llm",
        target=1,
        failures=[failure],
        findings=[IsolationFinding(victim=NODE, kind="unresolved", note="fails alone too")],
        notes="the handoff says calc was refactored last week",
    )
    return WorkOrder(**{**fields, **changes})


def pytest_in(worktree: Path) -> subprocess.CompletedProcess:
    """Real pytest in the worktree (without this venv's plugins: they take seconds to load)."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", NODE],
        cwd=worktree,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
    )


def test_full_loop_fixes_the_bug(calc_repo: Path) -> None:
    (calc_repo / ".env").write_text(f"ANTHROPIC_API_KEY={KEY}\n")
    assert pytest_in(calc_repo).returncode == 1
    api = FakeAPI(
        reply(call("list_files"), text="Let me look around."),
        reply(call("read_file", path="calc.py"), call("read_file", path=".env")),
        reply(call("replace_in_file", path="calc.py", old="return a - b", new="return a + b")),
        reply(call("run_tests")),
        reply(call("finish", explanation="add subtracted instead of adding; it adds now")),
    )
    lines: list[str] = []
    agent = LLMSpecialist(
        client=api.client(),
        run_tests=lambda tests, k: pytest_in(calc_repo).stdout,
        emit=lines.append,
    )

    feedback = [f"attempt 1: FAILED tests/test_calc.py::test_add with ANTHROPIC_API_KEY={KEY}"]
    proposal = agent.propose(work_order(), calc_repo, feedback)

    assert not proposal.declined
    assert proposal.explanation == "add subtracted instead of adding; it adds now"
    assert pytest_in(calc_repo).returncode == 0
    assert (calc_repo / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"

    first = api.bodies[0]
    assert first["model"] == DEFAULT_MODEL
    names = [t["name"] for t in first["tools"]]
    assert names == [
        "list_files",
        "read_file",
        "search",
        "git_log",
        "list_packages",
        "package_files",
        "read_package_file",
        "replace_in_file",
        "create_file",
        "run_tests",
        "finish",
    ]
    assert first["tools"][-1]["cache_control"] == {"type": "ephemeral"}
    assert all("cache_control" not in t for t in first["tools"][:-1])
    # the static part (shared by every lane) is cached on its own; the order follows uncached
    static, order = first["system"]
    assert static == {
        "type": "text",
        "text": static_prompt(),
        "cache_control": {"type": "ephemeral"},
    }
    assert "cache_control" not in order
    assert order["text"].startswith(category_notes("unknown"))
    # the rolling breakpoint: the API caches up to the last block of every request
    assert all(b["cache_control"] == {"type": "ephemeral"} for b in api.bodies)
    system = {"text": order["text"] + first["messages"][0]["content"]}
    for part in (
        "add returns the wrong sum",
        "calc.add subtracts its arguments",
        "make add add",
        NODE,
        "E       assert -1 == 5",
        "fails alone too",
        "## Code under test",
        "return a - b",
        "attempt 1: FAILED",
        "ANTHROPIC_API_KEY=[redacted]",
        "refactored last week",
    ):
        assert part in system["text"]

    # every turn resends the same cached prefix, and the tool results answer the right calls
    assert all(b["system"] == first["system"] and b["tools"] == first["tools"] for b in api.bodies)
    assert "calc.py" in api.results(1)[0]["content"]
    sent = api.bodies[1]["messages"]
    assert sent[1]["role"] == "assistant" and sent[1]["content"][0]["text"] == "Let me look around."
    assert sent[2]["content"][0]["tool_use_id"] == sent[1]["content"][1]["id"]
    code, env_file = api.results(2)
    assert "return a - b" in code["content"]
    assert env_file["content"].endswith("ANTHROPIC_API_KEY=[redacted]")
    assert "1 passed" in api.results(4)[0]["content"]

    for request in api.requests:
        assert request.headers["authorization"] == f"Bearer {KEY}"
        assert KEY not in request.content.decode()
        assert all(KEY not in v for k, v in request.headers.items() if k != "authorization")
    assert not any(KEY in line for line in lines)
    assert any("replace_in_file" in line for line in lines)

    assert proposal.usage is not None
    assert (proposal.usage.input_tokens, proposal.usage.output_tokens) == (500, 100)


def test_escapes_are_refused_and_reported_to_the_model(calc_repo: Path, tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("TOP SECRET\n")
    (calc_repo / "link").symlink_to(tmp_path / "secret.txt")
    head = (tmp_path / "repo0" / ".git" / "HEAD").read_text()
    api = FakeAPI(
        reply(
            call("read_file", path="../secret.txt"),
            call("read_file", path="/etc/passwd"),
            call("read_file", path="link"),
            call("create_file", path="../pwned.py", content="import os"),
            call("replace_in_file", path=".git", old="gitdir", new="x"),
            call("list_files", path=".."),
            call("search", pattern="SECRET", path=str(tmp_path)),
            call("run_shell", command="cat ../secret.txt"),
        ),
        reply(call("finish", explanation="could not get out", declined=True)),
    )
    agent = LLMSpecialist(client=api.client())

    proposal = agent.propose(work_order(), calc_repo, [])

    assert proposal.declined and proposal.explanation == "could not get out"
    assert "run_tests" not in [t["name"] for t in api.bodies[0]["tools"]]
    results = api.results(1)
    assert len(results) == 8
    assert all(r["is_error"] is True for r in results)
    assert not any("TOP SECRET" in r["content"] or "root:" in r["content"] for r in results)
    assert "outside the repository" in results[0]["content"]
    assert "unknown tool 'run_shell'" in results[7]["content"]
    assert not (tmp_path / "pwned.py").exists()
    assert (tmp_path / "secret.txt").read_text() == "TOP SECRET\n"
    assert (tmp_path / "repo0" / ".git" / "HEAD").read_text() == head
    assert (calc_repo / ".git").read_text().startswith("gitdir")


def test_turn_limit_stops_and_says_so(calc_repo: Path) -> None:
    api = FakeAPI(
        reply(call("replace_in_file", path="calc.py", old="a - b", new="a * b")),
        reply(call("list_files")),
        reply(call("list_files")),
    )
    proposal = LLMSpecialist(client=api.client(), max_turns=3).propose(work_order(), calc_repo, [])

    assert len(api.requests) == 3
    assert not proposal.declined  # no lost work: the edits go to the verifier
    assert "turn limit (3 turns)" in proposal.explanation
    assert "its edits go to the verifier: calc.py" in proposal.explanation


def test_a_reply_without_tool_calls_is_nudged(calc_repo: Path) -> None:
    api = FakeAPI(reply(text="I think it is fine."), reply(call("finish", explanation="done")))
    proposal = LLMSpecialist(client=api.client()).propose(work_order(), calc_repo, [])
    assert proposal.explanation == "done"
    assert "finish(explanation)" in api.bodies[1]["messages"][-1]["content"]


@pytest.mark.parametrize(
    "first",
    [
        error(429, "rate_limit_error", "slow down", **{"retry-after-ms": "1"}),
        error(529, "overloaded_error", "overloaded", **{"retry-after-ms": "1"}),
    ],
)
def test_rate_limit_and_overload_are_retried_by_the_sdk(
    calc_repo: Path, first: httpx2.Response
) -> None:
    api = FakeAPI(first, reply(call("finish", explanation="ok")))
    proposal = LLMSpecialist(client=api.client(max_retries=2)).propose(work_order(), calc_repo, [])
    assert proposal.explanation == "ok"
    assert [r.headers["x-stainless-retry-count"] for r in api.requests] == ["0", "1"]


def test_rate_limit_after_all_retries_is_a_model_error(calc_repo: Path) -> None:
    api = FakeAPI(*[error(429, "rate_limit_error", "slow\ndown", **{"retry-after-ms": "1"})] * 3)
    with pytest.raises(ModelError, match=r"^the Anthropic API failed \(429\): slow down$"):
        LLMSpecialist(client=api.client(max_retries=2)).propose(work_order(), calc_repo, [])
    assert len(api.requests) == 3


@pytest.mark.parametrize("status", [401, 403])
def test_refused_key_is_a_model_error_naming_the_variable(calc_repo: Path, status: int) -> None:
    api = FakeAPI(error(status, "authentication_error", f"invalid x-api-key {KEY}"))
    with pytest.raises(ModelError, match="ANTHROPIC_API_KEY") as raised:
        LLMSpecialist(client=api.client(max_retries=2)).propose(work_order(), calc_repo, [])
    assert KEY not in str(raised.value)
    assert len(api.requests) == 1  # never retried


def test_bad_request_is_a_one_line_model_error_without_the_key(calc_repo: Path) -> None:
    api = FakeAPI(error(400, "invalid_request_error", f"tools.0: bad schema\nkey {KEY}"))
    with pytest.raises(ModelError) as raised:
        LLMSpecialist(client=api.client()).propose(work_order(), calc_repo, [])
    message = str(raised.value)
    assert message.startswith("the Anthropic API failed (400): tools.0: bad schema")
    assert "\n" not in message and KEY not in message


def test_missing_key_is_a_model_error(calc_repo: Path) -> None:
    with pytest.raises(ModelError) as raised:
        LLMSpecialist().propose(work_order(), calc_repo, [])
    assert str(raised.value) == MISSING_KEY


def test_connection_drop_mid_run_is_a_model_error(calc_repo: Path) -> None:
    drop = httpx2.ConnectError("connection reset by peer")
    api = FakeAPI(reply(call("list_files")), reply(call("list_files")), drop, drop)
    with pytest.raises(ModelError, match="^could not reach the Anthropic API"):
        LLMSpecialist(client=api.client(max_retries=1)).propose(work_order(), calc_repo, [])
    assert len(api.requests) == 4  # two turns, then the failed call and the SDK's one retry


def test_budget_limit_stops_before_a_call_that_would_pass_it(calc_repo: Path) -> None:
    costly = {"input_tokens": 100_000, "output_tokens": 0}  # $0.20 a turn at $2/MTok
    api = FakeAPI(*[reply(call("list_files"), usage=costly)] * 3)
    proposal = LLMSpecialist(client=api.client(), budget_usd=0.5).propose(
        work_order(), calc_repo, []
    )
    assert len(api.requests) == 2  # a third call, priced like the last, would pass $0.50
    assert proposal.declined and "budget limit ($0.4000 of $0.50" in proposal.explanation
    assert proposal.usage.cost_usd == pytest.approx(0.4)
    assert proposal.usage.requests == 2


def test_token_and_wall_time_limits(calc_repo: Path) -> None:
    api = FakeAPI(*[reply(call("list_files"))] * 3)  # 120 tokens a turn
    proposal = LLMSpecialist(client=api.client(), max_tokens_total=250).propose(
        work_order(), calc_repo, []
    )
    assert len(api.requests) == 3 and "token limit (360 of 250 tokens)" in proposal.explanation

    idle = FakeAPI()
    proposal = LLMSpecialist(client=idle.client(), wall_time_s=0).propose(
        work_order(), calc_repo, []
    )
    assert idle.requests == [] and proposal.declined and "wall-time limit" in proposal.explanation


def test_usage_and_cost_are_summed_across_turns(
    calc_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    turns = [
        {
            "input_tokens": 1000,
            "output_tokens": 200,
            "cache_creation_input_tokens": 4000,
            "cache_read_input_tokens": 0,
        },
        {
            "input_tokens": 300,
            "output_tokens": 100,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 4000,
        },
    ]
    script = [
        reply(call("list_files"), usage=turns[0]),
        reply(call("finish", explanation="x"), usage=turns[1]),
    ]

    api = FakeAPI(*script)
    usage = LLMSpecialist(client=api.client()).propose(work_order(), calc_repo, []).usage
    assert (usage.input_tokens, usage.output_tokens) == (1300, 300)
    assert (usage.cache_write_tokens, usage.cache_read_tokens) == (4000, 4000)
    # Sonnet 5.5: $2 input, $10 output, $2.50 cache write, $0.10 cache read per MTok
    assert usage.cost_usd == pytest.approx((1300 * 2 + 300 * 10 + 4000 * 2.5 + 4000 * 0.1) / 1e6)
    assert usage.model == DEFAULT_MODEL

    monkeypatch.setenv("ORCHESTRATOR_MODEL", "claude-haiku-4-5")
    api = FakeAPI(*script)
    usage = LLMSpecialist(client=api.client()).propose(work_order(), calc_repo, []).usage
    assert api.bodies[0]["model"] == "claude-haiku-4-5" and usage.model == "claude-haiku-4-5"
    assert usage.cost_usd == pytest.approx((1300 * 1 + 300 * 5 + 4000 * 1.25 + 4000 * 0.1) / 1e6)


def test_guess_category_is_one_cheap_call() -> None:
    failures = work_order().failures
    api = FakeAPI(
        reply(
            text='Here:\n```json\n{"title": "Arithmetic bug", "root_cause": "add subtracts"}\n```'
        )
    )
    assert guess_category(failures, client=api.client()) == {
        "title": "Arithmetic bug",
        "root_cause": "add subtracts",
    }
    [body] = api.bodies
    assert body["model"] == GUESS_MODEL and "tools" not in body
    assert NODE in body["messages"][0]["content"]

    api = FakeAPI(reply(text="no idea"))
    with pytest.raises(ModelError, match="not the JSON asked for: no idea"):
        guess_category(failures, client=api.client())


def test_registry_builds_the_specialist() -> None:
    from orchestrator.specialists import Specialist, load_specialist

    agent = load_specialist("llm", prompt="unknown", client=FakeAPI().client(), max_turns=5)
    assert isinstance(agent, LLMSpecialist) and isinstance(agent, Specialist)
    assert agent.name == "llm" and agent.max_turns == 5 and agent.model == DEFAULT_MODEL
