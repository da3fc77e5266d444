from __future__ import annotations

from orchestrator.events import (
    AgentUpdate,
    Log,
    PhaseStarted,
    PlanReady,
    RunFinished,
    RunStarted,
    SuiteFinished,
    SuiteStarted,
    TestFinished,
    TestStarted,
)
from orchestrator.models import Category, Counts, Usage
from orchestrator.view.progress import (
    RunProgress,
    SuiteProgress,
    fmt_counts,
    fmt_list,
    fmt_phase,
    fmt_remaining,
    fmt_status,
)

BEFORE = Counts(total=4, passed=2, failed=2)
AFTER = Counts(total=4, passed=4)
DIFF = "--- a/m.py\n+++ b/m.py\n@@ -1 +1 @@\n-x = 1\n+x = 2\n"


def category(cid: str, count: int) -> Category:
    return Category(
        id=cid,
        title=cid,
        count=count,
        tests=[],
        affected_files=[],
        root_cause="",
        fix_strategy="",
        agent="codemod",
        priority="high",
    )


def update(status: str, attempt: int = 1, category: str = "model_defaults", **fields):
    return AgentUpdate(category=category, agent="codemod", status=status, attempt=attempt, **fields)


def test_a_run_folds_into_suites_before_now_agents_and_the_finish():
    progress = RunProgress()
    run = RunStarted(repo="/src/shop", session="s1", base_commit="abc")
    assert progress.apply(run)
    assert progress.run is run

    phase = PhaseStarted(phase="baseline", detail="whole suite")
    assert progress.apply(phase)
    assert progress.phase is phase

    assert progress.apply(SuiteStarted(label="baseline", total=4))
    assert progress.apply(TestStarted(label="baseline", nodeid="t.py::test_0"))
    assert progress.suites["baseline"] == SuiteProgress("baseline", 4, current="t.py::test_0")
    for i, outcome in enumerate(["passed", "failed", "xpassed", "timeout"]):
        assert progress.apply(TestFinished(label="baseline", nodeid=f"t::{i}", outcome=outcome))
    assert progress.suites["baseline"] == SuiteProgress(
        "baseline", 4, done=4, passed=2, failed=2, current="t.py::test_0"
    )
    assert progress.apply(TestFinished(label="not running", nodeid="t::x", outcome="failed"))
    assert list(progress.suites) == ["baseline"]  # a test of an unknown suite counts nowhere

    assert progress.apply(SuiteFinished(label="baseline", counts=BEFORE))
    assert progress.suites == {}
    assert (progress.before, progress.now) == (BEFORE, None)
    progress.apply(SuiteFinished(label="baseline", counts=AFTER))
    assert progress.before == BEFORE  # only the first baseline is "before"
    progress.apply(SuiteFinished(label="verify model_defaults", counts=AFTER))
    assert progress.now is None  # only the final run is "now"

    plan = [category("model_defaults", 2), category("uuid_type", 1)]
    assert progress.apply(PlanReady(categories=plan))
    assert progress.categories == plan

    assert progress.apply(update("proposing", usage=Usage(cost_usd=0.25, model="m1")))
    assert not progress.apply(update("proposing", fixed=1))  # same status and attempt: no news
    assert progress.agents["model_defaults"].update.fixed == 1  # yet folded in
    assert progress.apply(update("accepted", diff=DIFF, verify_output="2 passed"))
    assert progress.apply(update("merged"))  # carries no diff, output or usage
    agent = progress.agents["model_defaults"]
    assert agent.update.status == "merged"
    assert (agent.diff, agent.verify_output) == (DIFF, "2 passed")
    assert agent.usage == Usage(cost_usd=0.25, model="m1")
    assert progress.apply(update("proposing", category="uuid_type", usage=Usage(cost_usd=0.5)))
    assert progress.usage == Usage(cost_usd=0.75, model="m1")  # the latest usage per agent, summed

    assert progress.apply(Log(message="docker is not running"))

    progress.apply(SuiteStarted(label="final", total=4))
    assert progress.apply(SuiteFinished(label="final", counts=AFTER))
    assert progress.now == AFTER
    progress.apply(SuiteStarted(label="verify straggler", total=1))
    finished = RunFinished(
        before=BEFORE, after=AFTER, merged=["o/model_defaults"], remaining=[], handoff="/h.md"
    )
    assert progress.apply(finished)
    assert progress.finished is finished
    assert (progress.before, progress.now) == (BEFORE, AFTER)
    assert progress.suites == {}


def test_the_first_update_is_news_and_each_agent_is_deduped_on_its_own():
    progress = RunProgress()
    assert progress.usage is None
    assert progress.apply(update("queued", attempt=0))
    assert not progress.apply(update("queued", attempt=0))
    assert progress.apply(update("proposing", attempt=1))
    assert progress.apply(update("proposing", attempt=2))  # a new attempt is news
    assert progress.apply(update("proposing", attempt=2, category="uuid_type"))
    assert not progress.apply(update("proposing", attempt=2, category="uuid_type"))
    assert list(progress.agents) == ["model_defaults", "uuid_type"]
    assert progress.usage is None  # no agent reported usage


def test_the_words_both_viewers_use():
    assert fmt_counts(BEFORE) == "2/4 passed (50.0%)"
    assert (
        fmt_phase(PhaseStarted(phase="agents", detail="2 specialists")) == "agents: 2 specialists"
    )
    assert fmt_phase(PhaseStarted(phase="handoff")) == "handoff"
    assert fmt_status("no_patch") == "no patch"
    assert fmt_list([]) == "nothing"
    assert fmt_list(["a", "b"]) == "a, b"
    assert fmt_remaining([category("uuid_type", 2), category("timeout", 1)]) == (
        "uuid_type (2), timeout (1)"
    )
