"""The model loop's stop reasons, retries and tools, with the real SDK talking to a local server."""

from __future__ import annotations

import time
from pathlib import Path

import anthropic
import pytest

from orchestrator.agents.llm import OUTPUT_TOKENS, OUTPUT_TOKENS_CAP, LLMSpecialist
from orchestrator.agents.tools import ToolError, Worktree
from orchestrator.errors import ModelBusy
from orchestrator.models import Usage, WorkOrder
from tests.agents.test_llm import KEY, work_order
from tests.helpers.fake_anthropic import FakeAnthropic, call, error, reply

FIX = call("replace_in_file", path="calc.py", old="return a - b", new="return a + b")


@pytest.fixture
def api():
    with FakeAnthropic() as server:
        yield server


def agent(server: FakeAnthropic, retries: int = 0, **options: object) -> LLMSpecialist:
    client = anthropic.Anthropic(api_key=KEY, base_url=server.url, max_retries=retries)
    return LLMSpecialist(client=client, **options)  # type: ignore[arg-type]


def test_a_refusal_ends_the_attempt_or_moves_to_the_fallback(api, calc_repo: Path) -> None:
    api.scripts["unknown"] = [reply(text="I can't help with that.", stop_reason="refusal")]
    proposal = agent(api).propose(work_order(), calc_repo, [])
    assert proposal.declined and "refusal" in proposal.explanation
    assert len(api.requests) == 1  # not nudged 29 times

    api.requests.clear()
    api.scripts["unknown"] = [
        [reply(stop_reason="refusal"), reply(call("finish", explanation="done"))]
    ]
    proposal = agent(api, fallback_model="claude-opus-5").propose(work_order(), calc_repo, [])
    assert proposal.explanation == "done"
    assert [r.body["model"] for r in api.requests] == ["claude-sonnet-5-5", "claude-opus-5"]


def test_prose_only_ends_after_a_few_nudges(api, calc_repo: Path) -> None:
    api.scripts["unknown"] = [reply(text="I think the code is fine.")] * 10
    proposal = agent(api).propose(work_order(), calc_repo, [])
    assert len(api.requests) == 3
    assert proposal.declined and "3 replies without a tool call" in proposal.explanation


def test_a_tool_call_cut_by_max_tokens_is_asked_again_with_more_room(api, calc_repo: Path) -> None:
    broken = call(
        "create_file", path="calc.py", content="def add(a, b):\n    return a +", overwrite=True
    )
    api.scripts["unknown"] = [
        [reply(broken, stop_reason="max_tokens"), reply(FIX)],
        reply(call("finish", explanation="fixed")),
    ]
    proposal = agent(api).propose(work_order(), calc_repo, [])
    assert proposal.explanation == "fixed"
    assert [r.body["max_tokens"] for r in api.requests] == [
        OUTPUT_TOKENS,
        OUTPUT_TOKENS * 2,
        OUTPUT_TOKENS,
    ]
    assert (calc_repo / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"


def test_a_truncated_tool_call_is_never_run(api, calc_repo: Path) -> None:
    broken = call(
        "create_file", path="calc.py", content="def add(a, b):\n    return a +", overwrite=True
    )
    api.scripts["unknown"] = [
        [reply(broken, stop_reason="max_tokens")],  # cut at every size
        reply(call("finish", explanation="gave up", declined=True)),
    ]
    proposal = agent(api).propose(work_order(), calc_repo, [])
    assert proposal.declined
    assert (calc_repo / "calc.py").read_text() == "def add(a, b):\n    return a - b\n"
    rooms = [r.body["max_tokens"] for r in api.requests]
    assert rooms == [OUTPUT_TOKENS, OUTPUT_TOKENS * 2, OUTPUT_TOKENS_CAP, OUTPUT_TOKENS]
    last = api.requests[-1].body["messages"]
    assert all(b["type"] != "tool_use" for b in last[-2]["content"])  # the cut call is not sent
    assert "cut off at the output limit" in last[-1]["content"]


def test_pause_turn_sends_the_content_back_to_continue(api, calc_repo: Path) -> None:
    api.scripts["unknown"] = [
        reply(text="Searching the docs first.", stop_reason="pause_turn"),
        reply(call("finish", explanation="done")),
    ]
    proposal = agent(api).propose(work_order(), calc_repo, [])
    assert proposal.explanation == "done"
    second = api.requests[1].body["messages"]
    assert [m["role"] for m in second] == ["user", "assistant"]  # no nudge between
    assert second[-1]["content"][0]["text"] == "Searching the docs first."


def test_overloaded_after_the_sdk_retries_resumes_the_same_turn(api, calc_repo: Path) -> None:
    api.scripts["unknown"] = [
        reply(call("list_files")),
        [error(529, "overloaded_error", "Overloaded"), reply(call("finish", explanation="ok"))],
    ]
    model = agent(api)
    with pytest.raises(ModelBusy, match=r"\(529\): Overloaded"):
        model.propose(work_order(), calc_repo, [])
    proposal = model.propose(work_order(), calc_repo, [])  # the lane's retry, later
    assert proposal.explanation == "ok"
    busy, again = api.requests[1].body, api.requests[2].body
    assert busy["messages"] == again["messages"]  # the same turn, nothing added
    assert proposal.usage is not None and proposal.usage.requests == 1


def test_parallel_tool_calls_run_in_order_and_answer_their_ids(api, calc_repo: Path) -> None:
    first = reply(
        call("read_file", path="calc.py"),
        call("search", pattern="add"),
        FIX,
        call("read_file", path="missing.py"),
    )
    api.scripts["unknown"] = [first, reply(call("finish", explanation="done"))]
    agent(api).propose(work_order(), calc_repo, [])
    results = api.requests[1].results()
    assert [r["tool_use_id"] for r in results] == [b["id"] for b in first["content"]]
    assert "return a - b" in results[0]["content"]  # read before the edit, in order
    assert results[2]["content"] == "calc.py: replaced 1 occurrence"
    assert results[3]["is_error"] is True and "no such file" in results[3]["content"]


def test_one_budget_over_all_attempts_and_the_retry_continues_the_conversation(
    api, calc_repo: Path
) -> None:
    costly = {"input_tokens": 100_000, "output_tokens": 0}  # $0.20 a call at $2/MTok
    api.scripts["unknown"] = [
        reply(call("replace_in_file", path="calc.py", old="a - b", new="a * b"), usage=costly),
        reply(call("finish", explanation="multiplied"), usage=costly),
        reply(call("list_files"), usage=costly),
        reply(call("list_files"), usage=costly),
    ]
    seen: list[Usage] = []
    model = agent(api, budget_usd=0.7, on_usage=seen.append)
    first = model.propose(work_order(), calc_repo, [])
    assert not first.declined and first.usage is None  # spend went to on_usage, once
    verdict = "Attempt 1 was rejected by the verifier: still failing\n```diff\n-a - b\n+a * b\n```"
    second = model.propose(work_order(), calc_repo, [verdict])

    assert len(api.requests) == 3  # a fourth call would pass $0.70 over both attempts
    assert sum(u.cost_usd for u in seen) == pytest.approx(0.6)
    assert "budget limit ($0.6000 of $0.70 spent over all attempts)" in second.explanation
    retry = api.requests[2].body
    assert retry["messages"][:3] == api.requests[1].body["messages"]  # the same conversation
    [result] = retry["messages"][-1]["content"]
    assert result["type"] == "tool_result" and "+a * b" in result["content"]
    finish_id = retry["messages"][-2]["content"][0]["id"]
    assert result["tool_use_id"] == finish_id


def test_the_last_attempt_escalates(api, calc_repo: Path) -> None:
    api.scripts["unknown"] = [
        reply(call("finish", explanation="one")),
        reply(call("finish", explanation="two")),
    ]
    model = agent(api, escalate_model="claude-opus-5-5")
    model.propose(work_order(), calc_repo, [])
    model.escalate()
    model.propose(work_order(), calc_repo, ["rejected"])
    assert [r.body["model"] for r in api.requests] == ["claude-sonnet-5-5", "claude-opus-5-5"]


def test_transcripts_are_kept_even_when_the_call_fails(api, calc_repo: Path) -> None:
    api.scripts["unknown"] = [reply(call("list_files")), error(400, "invalid_request_error", "bad")]
    kept: list[tuple[int, dict]] = []
    with pytest.raises(Exception, match="bad"):
        agent(api, on_transcript=lambda n, data: kept.append((n, data))).propose(
            work_order(), calc_repo, []
        )
    [(attempt, data)] = kept
    assert attempt == 1 and data["stopped"].endswith("bad")
    assert data["messages"][1]["content"][0]["name"] == "list_files"
    assert data["usage"]["requests"] == 1


# --- the tools ---------------------------------------------------------------------------------


def test_a_catastrophic_regex_is_stopped_within_the_limit(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a" * 48 + "!\n")
    tree = Worktree(tmp_path, search_timeout_s=1.0)
    started = time.monotonic()
    with pytest.raises(ToolError, match="timed out after 1 s"):
        tree.search("(a+)+$", regex=True)
    assert time.monotonic() - started < 5
    assert tree.search("a{3}!", regex=True).startswith("a.txt:1: ")
    with pytest.raises(ToolError, match="invalid regular expression"):
        tree.search("(", regex=True)


def test_an_edit_that_breaks_python_is_refused_with_the_error(calc_repo: Path) -> None:
    tree = Worktree(calc_repo)
    with pytest.raises(ToolError, match=r"calc.py: edit refused.*SyntaxError.*line 2"):
        tree.replace_in_file("calc.py", "return a - b", "return a +")
    with pytest.raises(ToolError, match="SyntaxError"):
        tree.create_file("new.py", "def f(:\n")
    assert (calc_repo / "calc.py").read_text() == "def add(a, b):\n    return a - b\n"
    assert not (calc_repo / "new.py").exists() and tree.changed == set()
    tree.create_file("notes.txt", "def f(:\n")  # only Python is checked
    assert tree.changed == {"notes.txt"}


def test_installed_packages_are_read_only_views(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    (site / "oldlib").mkdir(parents=True)
    (site / "oldlib" / "__init__.py").write_text("def renamed():\n    return 1\n")
    info = site / "oldlib-2.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: OldLib\nVersion: 2.0\n\nbody\n")
    (info / "RECORD").write_text(
        "oldlib/__init__.py,sha256=x,10\noldlib-2.0.dist-info/METADATA,,\n"
    )
    (tmp_path / "secret.txt").write_text("TOP SECRET")
    (tmp_path / "wt").mkdir()
    tree = Worktree(tmp_path / "wt", site_dirs=[str(site)])

    assert tree.call("list_packages", {}) == "OldLib 2.0"
    assert tree.call("package_files", {"package": "oldlib"}) == "oldlib/__init__.py"
    text = tree.call("read_package_file", {"package": "OLDLIB", "path": "oldlib/__init__.py"})
    assert "def renamed" in text
    for path in ("../secret.txt", "oldlib/../../secret.txt", str(tmp_path / "secret.txt")):
        with pytest.raises(ToolError, match="has no file"):
            tree.read_package_file("oldlib", path)
    with pytest.raises(ToolError, match="not installed"):
        tree.package_files("numpy")


def test_git_log_shows_the_history_of_a_path(calc_repo: Path) -> None:
    tree = Worktree(calc_repo)
    log = tree.call("git_log", {"path": "calc.py"})
    assert "+    return a - b" in log and "calc.py" in log
    with pytest.raises(ToolError, match="outside the repository"):
        tree.git_log("..")


def test_the_work_order_shows_the_code_under_test(calc_repo: Path) -> None:
    from orchestrator.agents.llm import code_under_test, render_order

    order: WorkOrder = work_order()
    assert code_under_test(order, calc_repo) == ["calc.py"]
    text = render_order(order, calc_repo)
    assert "### calc.py" in text and "return a - b" in text
