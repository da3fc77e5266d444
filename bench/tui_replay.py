"""Run OrchestrateApp on a replayed, realistic event stream (for bench/tui_tmux.sh and eyeballing).

    .venv/bin/python bench/tui_replay.py [--speed 1.0] [--tests 240]

The replay runs as the app's work function in its thread worker, honours `q` (stop) and `c`
(cancel), and returns a small dict that is printed after the app exits.
"""

from __future__ import annotations

import argparse
import time

from orchestrator.events import (
    AgentUpdate,
    Controls,
    Emit,
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
from orchestrator.view.tui import OrchestrateApp

PLAN = [  # id, failing tests, priority, agent
    ("model_defaults", 14, "critical", "model_defaults"),
    ("uuid_type", 6, "high", "uuid_type"),
    ("async_event_loop", 4, "high", "llm"),
    ("mock_not_called", 3, "medium", "llm"),
    ("test_isolation", 2, "low", None),
]
OUTCOMES = {"model_defaults": "accepted", "uuid_type": "accepted", "async_event_loop": "rejected"}
DIFF = """\
--- a/app/models.py
+++ b/app/models.py
@@ -12,7 +12,7 @@ class Order(Base):
     id = Column(Integer, primary_key=True)
-    status = Column(String)
+    status = Column(String, default="pending", nullable=False)
     created = Column(DateTime)
"""


def category(cid: str, count: int, priority: str, agent: str | None) -> Category:
    tests = [f"tests/test_{cid}.py::test_{i}" for i in range(count)]
    return Category(
        id=cid,
        title=cid.replace("_", " "),
        count=count,
        tests=tests,
        affected_files=[f"app/{cid}.py"],
        root_cause="",
        fix_strategy="",
        agent=agent,
        priority=priority,  # type: ignore[arg-type]
    )


def replay(total: int, speed: float):
    def work(emit: Emit, controls: Controls) -> dict:
        def pause(seconds: float) -> None:
            time.sleep(seconds / speed)

        def suite(label: str, count: int, failing: int) -> Counts:
            """Run `count` fake tests, `failing` of them (spread evenly) failing."""
            emit(SuiteStarted(label=label, total=count))
            fails = 0
            for i in range(count):
                nodeid = f"tests/test_shop.py::test_case[{i}]"
                emit(TestStarted(label=label, nodeid=nodeid))
                pause(0.004)
                failed = i * failing % count < failing
                fails += failed
                outcome = "failed" if failed else "passed"
                emit(TestFinished(label=label, nodeid=nodeid, outcome=outcome, duration_s=0.004))
            counts = Counts(
                total=count, passed=count - fails, failed=fails, duration_s=count * 0.004
            )
            emit(SuiteFinished(label=label, counts=counts))
            return counts

        emit(
            RunStarted(
                repo="/src/shop",
                session="20250101-120000",
                base_commit="3f2a9c1d8e7b",
                model="claude-sonnet-4-5",
            )
        )
        for phase in ("preflight", "baseline"):
            emit(PhaseStarted(phase=phase))
            pause(0.3)
        before = suite("baseline", total, sum(p[1] for p in PLAN))
        if controls.stop_requested:
            return {"stopped": "after baseline"}
        emit(PhaseStarted(phase="triage"))
        pause(0.4)
        emit(PhaseStarted(phase="isolation", detail="2 tests fail only in the suite"))
        emit(Log(level="warning", message="tests/test_cache.py::test_hit passes alone: polluted"))
        pause(0.6)
        categories = [category(*p) for p in PLAN]
        emit(PhaseStarted(phase="plan"))
        emit(PlanReady(categories=categories))
        pause(0.4)
        emit(PhaseStarted(phase="agents", detail=f"{len(PLAN) - 1} specialists"))
        working = [c for c in categories if c.agent]
        for c in working:
            emit(AgentUpdate(category=c.id, agent=c.agent or "", status="queued", target=c.count))
        merged = []
        for c in working:
            if controls.is_cancelled(c.id):
                emit(AgentUpdate(category=c.id, agent=c.agent or "", status="cancelled"))
                continue
            branch = f"orchestrate/20250101-120000/{c.id}"
            usage = Usage(
                input_tokens=9000, output_tokens=800, cost_usd=0.05, model="claude-sonnet-4-5"
            )
            common = {"category": c.id, "agent": c.agent or "", "target": c.count, "branch": branch}
            emit(AgentUpdate(status="proposing", attempt=1, usage=usage, **common))
            pause(0.8)
            emit(AgentUpdate(status="verifying", attempt=1, diff=DIFF, **common))
            suite(f"verify {c.id}", c.count + 10, 0)
            status = OUTCOMES.get(c.id, "no_patch")
            fixed = c.count if status == "accepted" else 0
            reason = {
                "rejected": "2 regressions",
                "no_patch": "declined: needs a design decision",
            }.get(status)
            emit(
                AgentUpdate(
                    status=status,
                    attempt=1,
                    fixed=fixed,
                    reason=reason,
                    diff=DIFF,
                    verify_output=f"{c.count + 10} passed in 0.4s",
                    usage=usage,
                    **common,
                )
            )
            if status == "accepted":
                merged.append(branch)
            if controls.stop_requested:
                return {"stopped": "during agents"}
        emit(PhaseStarted(phase="integrate"))
        for branch in merged:
            cid = branch.rsplit("/", 1)[1]
            emit(
                AgentUpdate(
                    category=cid,
                    agent=cid,
                    status="merged",
                    attempt=1,
                    branch=branch,
                    fixed=dict((p[0], p[1]) for p in PLAN)[cid],
                    target=dict((p[0], p[1]) for p in PLAN)[cid],
                )
            )
            pause(0.2)
        emit(PhaseStarted(phase="final"))
        after = suite("final", total, 9)
        emit(PhaseStarted(phase="handoff"))
        handoff = "/src/shop/.git/orchestrate/handoff-20250101-120000.md"
        remaining = [c for c in categories if c.id not in OUTCOMES or OUTCOMES[c.id] != "accepted"]
        emit(
            RunFinished(
                before=before,
                after=after,
                merged=merged,
                remaining=remaining,
                handoff=handoff,
                integration_branch="orchestrate/20250101-120000/integration",
            )
        )
        return {"merged": merged, "handoff": handoff}

    return work


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", type=float, default=1.0, help="replay speed factor")
    parser.add_argument("--tests", type=int, default=240, help="tests in a whole-suite run")
    args = parser.parse_args()
    app = OrchestrateApp(replay(args.tests, args.speed), Controls())
    app.run()
    print("result:", app.result, "error:", app.error)


if __name__ == "__main__":
    main()
