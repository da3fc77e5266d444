from __future__ import annotations

import io
import re
import threading

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
from orchestrator.models import Category, Counts
from orchestrator.view.plain import PlainLog


def category(cid: str, count: int, priority: str = "high", agent: str | None = "codemod"):
    return Category(
        id=cid,
        title=cid,
        count=count,
        tests=[],
        affected_files=[],
        root_cause="",
        fix_strategy="",
        agent=agent,
        priority=priority,
    )


def lines_of(stream: io.StringIO) -> list[str]:
    """The lines without their timestamps (checked to be HH:MM:SS)."""
    out = []
    for line in stream.getvalue().splitlines():
        assert re.match(r"\d\d:\d\d:\d\d ", line), line
        out.append(line[9:])
    return out


def test_a_run_prints_one_line_per_event_worth_a_line():
    stream = io.StringIO()
    log = PlainLog(stream)
    log(RunStarted(repo="/src/shop", session="s1", base_commit="3f2a9c1d8e7b6a5", model="m1"))
    log(PhaseStarted(phase="baseline", detail="whole suite"))
    log(SuiteStarted(label="baseline", total=4))
    for i, outcome in enumerate(["passed", "failed", "passed", "timeout"]):
        log(TestStarted(label="baseline", nodeid=f"t.py::test_{i}"))
        log(TestFinished(label="baseline", nodeid=f"t.py::test_{i}", outcome=outcome))
    log(
        SuiteFinished(label="baseline", counts=Counts(total=4, passed=2, failed=2, duration_s=1.25))
    )
    log(
        PlanReady(
            categories=[
                category("model_defaults", 2, "critical"),
                category("timeout", 1, "low", None),
            ]
        )
    )
    update = dict(
        category="model_defaults", agent="codemod", target=2, branch="o/s1/model_defaults"
    )
    log(AgentUpdate(status="proposing", attempt=1, **update))
    log(AgentUpdate(status="proposing", attempt=1, **update))  # no state change: no line
    log(AgentUpdate(status="rejected", attempt=1, reason="1 regression", **update))
    log(Log(level="warning", message="docker is not running"))
    log(
        RunFinished(
            before=Counts(total=4, passed=2, failed=2),
            after=Counts(total=4, passed=3, failed=1),
            merged=["o/s1/model_defaults"],
            remaining=[category("timeout", 1)],
            handoff="/h.md",
        )
    )

    assert lines_of(stream) == [
        "run s1: /src/shop at 3f2a9c1d8e, model m1",
        "== baseline: whole suite",
        "suite baseline: 4 tests",
        "  FAILED t.py::test_1 (baseline)",
        "  TIMEOUT t.py::test_3 (baseline)",
        "suite baseline done: 4 tests: 2 passed, 2 failed, 0 errors, 0 skipped in 1.2s",
        "plan: 2 categories",
        "  model_defaults           2  critical  codemod",
        "  timeout                  1  low       -",
        "agent model_defaults (codemod): proposing, attempt 1, fixed 0/2 [o/s1/model_defaults]",
        "agent model_defaults (codemod): rejected, attempt 1, fixed 0/2 [o/s1/model_defaults]: 1 regression",
        "warning: docker is not running",
        "finished: 2/4 passed (50.0%) -> 3/4 passed (75.0%)",
        "merged: o/s1/model_defaults",
        "remaining: timeout (1)",
        "handoff: /h.md",
    ]


def test_a_big_suite_prints_progress_every_ten_percent_not_every_pass():
    stream = io.StringIO()
    log = PlainLog(stream)
    log(SuiteStarted(label="baseline", total=1300))
    for i in range(1300):
        outcome = "error" if i == 500 else "passed"
        log(TestFinished(label="baseline", nodeid=f"t.py::test_{i}", outcome=outcome))

    lines = lines_of(stream)
    assert lines[0] == "suite baseline: 1300 tests"
    assert "  ERROR t.py::test_500 (baseline)" in lines
    progress = [line for line in lines[1:] if line.startswith("suite baseline:")]
    assert progress[0] == "suite baseline: 130/1300 (10%), 0 failing"
    assert progress[-1] == "suite baseline: 1300/1300 (100%), 1 failing"
    assert len(progress) == 10
    assert len(lines) == 12


def test_small_suites_print_no_progress_and_threads_do_not_interleave_lines():
    stream = io.StringIO()
    log = PlainLog(stream)

    def agent(n: int) -> None:
        for i in range(200):
            log(Log(message=f"agent {n} step {i} " + "x" * 50))

    threads = [threading.Thread(target=agent, args=(n,)) for n in range(4)]
    log(SuiteStarted(label="verify x", total=5))
    for i in range(5):
        log(TestFinished(label="verify x", nodeid=f"t.py::test_{i}", outcome="passed"))
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    lines = lines_of(stream)
    assert lines[0] == "suite verify x: 5 tests"
    assert len(lines) == 1 + 800
    assert all(re.fullmatch(r"info: agent \d step \d+ x{50}", line) for line in lines[1:])


def test_a_verification_is_read_against_the_baseline_fixed_already_failing_new():
    stream = io.StringIO()
    log = PlainLog(stream)
    log(SuiteStarted(label="baseline", total=4))
    for nodeid, outcome in [("t::a", "failed"), ("t::b", "failed"), ("t::c", "passed")]:
        log(TestFinished(label="baseline", nodeid=nodeid, outcome=outcome))
    log(SuiteFinished(label="baseline", counts=Counts(total=3, passed=1, failed=2)))
    stream.truncate(0)
    stream.seek(0)
    log(SuiteStarted(label="verify uuid_type", total=3))
    for nodeid, outcome in [("t::a", "passed"), ("t::b", "failed"), ("t::c", "failed")]:
        log(TestFinished(label="verify uuid_type", nodeid=nodeid, outcome=outcome))
    log(SuiteFinished(label="verify uuid_type", counts=Counts(total=3, passed=1, failed=2)))
    assert lines_of(stream) == [
        "suite verify uuid_type: 3 tests",
        "  FAILED t::c (verify uuid_type)",  # only the new failure is named
        "suite verify uuid_type done: 1 fixed, 1 already failing, 1 new "
        "(3 tests: 1 passed, 2 failed, 0 errors, 0 skipped in 0.0s)",
    ]
