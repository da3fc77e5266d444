"""The lane's side of the model agent: routing, the sandboxed `run` tool, the session budget."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from orchestrator.agents.llm import LLMSpecialist, category_notes, has_prompt, system_blocks
from orchestrator.models import AgentResult, Usage
from orchestrator.run import lanes
from orchestrator.run.context import RunContext, RunOptions, Spend
from orchestrator.suite import sandbox
from tests.agents.test_llm import work_order

PYPROJECT = (
    f'[tool.orchestrator]\ntest-cmd = "{sys.executable} -m pytest"\n'
    'models = { unknown = "claude-opus-5" }\nescalate-model = "claude-opus-5-5"\n'
)


@pytest.fixture
def ctx(make_repo, monkeypatch: pytest.MonkeyPatch) -> RunContext:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-lane-test-SECRET-000")
    repo = make_repo({"app.py": "X = 1\n"}, pyproject=PYPROJECT)
    return RunContext(RunOptions(repo=str(repo), session="s1", budget_usd=1.5, max_turns=7))


def model_agent(ctx: RunContext, **order: object) -> LLMSpecialist:
    result = AgentResult(agent="llm", category="unknown", branch="b", status="no_patch")
    agent = lanes._model_agent(work_order(**order), ctx, Path(ctx.options.repo), result)
    assert isinstance(agent, LLMSpecialist)
    return agent


def test_routing_and_limits_come_from_the_config_and_the_options(ctx: RunContext) -> None:
    agent = model_agent(ctx)
    assert (agent.model, agent.escalate_model) == ("claude-opus-5", "claude-opus-5-5")
    assert (agent.budget_usd, agent.max_turns) == (1.5, 7)
    assert agent.session_left is None  # no session budget asked for
    assert model_agent(ctx, category="transaction_state").model == ctx.model  # not routed
    ctx.options.models = {"unknown": "claude-haiku-5-5"}  # --model-for wins over the config
    assert model_agent(ctx).model == "claude-haiku-5-5"
    assert any(p.endswith("-packages") for p in agent.site_dirs)  # the suite's interpreter's


def test_the_session_budget_is_shared_and_stops_the_next_call() -> None:
    spend = Spend(budget_usd=0.5)
    spend.add(Usage(cost_usd=0.3, requests=1))
    spend.add(Usage(cost_usd=0.1, requests=1))
    assert spend.left() == pytest.approx(0.1) and spend.total.requests == 2
    agent = LLMSpecialist(client=object(), session_left=spend.left)
    agent.last_cost = 0.2
    with pytest.raises(Exception, match=r"the session budget \(\$0.1000 left\)"):
        agent.check_limits(started=float("inf"))
    assert Spend().left() is None


@pytest.mark.parametrize(
    "category, codemod, note",
    [
        ("transaction_state", None, "transaction state"),
        ("mapper_conflict", None, "mapper conflicts"),
        ("validation_error", "uuid_type", "request validation"),
        ("collection_error", "renamed_import", "collection errors"),
        ("api_routing", "api_routing", "routing"),
        ("dependency_upgrade", "dependency_upgrade", "upgrade"),
        ("unknown", None, "logic bugs"),
        ("mock_not_called", "patch_target", "patch"),
    ],
)
def test_every_model_category_gets_the_rules_then_its_notes(
    category: str, codemod: str | None, note: str
) -> None:
    assert has_prompt(category) or (codemod and has_prompt(codemod))
    static, order = system_blocks(work_order(category=category), None, category, codemod or "")
    for part in ("# Mission", "# Tools", "# What not to do (the verifier rejects it)"):
        assert part in static["text"]
    assert order["text"].startswith(category_notes(category, codemod or ""))
    assert note in order["text"].split("# Work order")[0].lower()
    assert "never the code under test" not in category_notes("uuid_type")


@pytest.mark.skipif(sandbox.available() is None, reason="no sandbox on this machine")
def test_the_run_tool_is_sandboxed_timed_and_capped(ctx: RunContext, tmp_path: Path) -> None:
    worktree = Path(ctx.options.repo)
    run = lanes._command_runner(ctx, worktree)
    out = run("python -c 'import app; print(app.X)'; echo $ANTHROPIC_API_KEY; touch made", 30)
    assert out.splitlines()[:2] == ["exit code 0", "1"]
    assert "SECRET" not in out  # secrets never reach the sandbox
    assert (worktree / "made").exists()
    out = run(f"touch {tmp_path}/outside; echo done", 30)
    assert not (tmp_path / "outside").exists()  # only the worktree is writable
    out = run("sleep 30", 1)
    assert out.startswith("killed at its 1 s timeout")
    out = run("python -c \"print('x' * 100000)\"", 30)
    assert "characters left out" in out and len(out) < lanes.OUTPUT_CHARS + 200
