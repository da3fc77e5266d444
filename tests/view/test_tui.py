from __future__ import annotations

import asyncio
import threading
import time

import pytest
from textual.widgets import DataTable, ProgressBar, RichLog, Static

from orchestrator.events import (
    AgentStep,
    AgentUpdate,
    Controls,
    Emit,
    LeftCategory,
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
from orchestrator.view.tui import HelpScreen, OrchestrateApp

T0 = 1_700_000_000.0  # every scripted event happens at T0 + n seconds
SIZE = (100, 32)
BRANCH = "orchestrate/s1/"
DIFF = "--- a/app/models.py\n+++ b/app/models.py\n@@ -1 +1 @@\n-status = Column(String)\n+status = Column(String, default='new')\n"


@pytest.fixture(autouse=True)
def _utc(monkeypatch: pytest.MonkeyPatch):
    """Log timestamps are local time: pin the zone so snapshots match on any machine."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def category(cid: str, count: int, priority: str = "high", agent: str | None = "codemod"):
    return Category(
        id=cid,
        title=cid.replace("_", " "),
        count=count,
        tests=[],
        affected_files=[],
        root_cause="",
        fix_strategy="",
        agent=agent,
        priority=priority,
    )


PLAN = [
    category("model_defaults", 3, "critical", "model_defaults"),
    category("uuid_type", 2, "high", "uuid_type"),
    category("test_isolation", 1, "low", None),
]


def agent(cid: str, status: str, at: float, **fields) -> AgentUpdate:
    target = next(c.count for c in PLAN if c.id == cid)
    return AgentUpdate(
        category=cid,
        agent=cid,
        status=status,
        target=target,
        branch=BRANCH + cid,
        at=T0 + at,
        **fields,
    )


def start_events() -> list:
    """Run started, baseline running: 4 of 10 tests done, one failing."""
    events = [
        RunStarted(
            repo="/src/shop", session="s1", base_commit="3f2a9c1d8e7b", model="claude-x", at=T0
        ),
        PhaseStarted(phase="baseline", detail="whole suite", at=T0 + 1),
        SuiteStarted(label="baseline", total=10, at=T0 + 1),
    ]
    for i, outcome in enumerate(["passed", "failed", "passed", "skipped"]):
        nodeid = f"tests/test_shop.py::test_{i}[param]"
        events += [
            TestStarted(label="baseline", nodeid=nodeid, at=T0 + 2),
            TestFinished(label="baseline", nodeid=nodeid, outcome=outcome, at=T0 + 2),
        ]
    events.append(TestStarted(label="baseline", nodeid="tests/test_shop.py::test_4", at=T0 + 3))
    return events


BEFORE = Counts(total=10, passed=4, failed=5, skipped=1)
AFTER = Counts(total=10, passed=9, failed=0, skipped=1)


def agent_events() -> list:
    """Baseline done, plan ready, one agent accepted (with usage and diff), one proposing."""
    return [
        SuiteFinished(label="baseline", counts=BEFORE, at=T0 + 5),
        PhaseStarted(phase="agents", detail="2 specialists", at=T0 + 6),
        PlanReady(categories=PLAN, at=T0 + 6),
        agent("model_defaults", "queued", 7),
        agent("uuid_type", "queued", 7),
        agent("model_defaults", "proposing", 8, attempt=1, usage=Usage(cost_usd=0.25)),
        agent(
            "model_defaults",
            "accepted",
            9,
            attempt=1,
            fixed=3,
            diff=DIFF,
            verify_output="3 passed in 0.12s",
            usage=Usage(cost_usd=0.5, model="claude-x"),
        ),
        agent("uuid_type", "proposing", 10, attempt=2, usage=Usage(cost_usd=0.25)),
        Log(level="warning", message="docker [not] running", at=T0 + 11),
    ]


def finish_events() -> list:
    return [
        agent("uuid_type", "no_patch", 12, attempt=2, reason="declined"),
        agent("model_defaults", "merged", 13, attempt=1, fixed=3),
        SuiteFinished(label="final", counts=AFTER, at=T0 + 14),
        RunFinished(
            before=BEFORE,
            after=AFTER,
            merged=[BRANCH + "model_defaults"],
            remaining=[PLAN[1], PLAN[2]],
            handoff="/src/shop/.git/orchestrate/handoff.md",
            integration_branch=BRANCH + "integration",
            at=T0 + 15,
        ),
    ]


def make_app(**kwargs) -> OrchestrateApp:
    return OrchestrateApp(clock=lambda: T0 + 75, **kwargs)


def text(app: OrchestrateApp, selector: str) -> str:
    return str(app.query_one(selector, Static).content)


def cell(app: OrchestrateApp, table: str, row: str, column: str) -> str:
    return str(app.query_one(table, DataTable).get_cell(row, column))


def log_text(app: OrchestrateApp) -> str:
    return "\n".join(line.text for line in app.query_one("#log", RichLog).lines)


async def feed(app: OrchestrateApp, pilot, events: list) -> None:
    for event in events:
        app.feed(event)
    await pilot.pause()


@pytest.mark.asyncio
async def test_the_screen_follows_the_event_stream():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot, start_events())
        header = text(app, "#header")
        assert "shop · s1 · 3f2a9c1d · 0:01:15 · claude-x" in header
        assert "$" not in header  # no usage yet
        assert app.query_one("#suite").has_class("running")
        assert app.query_one("#suite").display
        bar = app.query_one("#suite-bar", ProgressBar)
        assert (bar.total, bar.progress) == (10, 4)
        assert text(app, "#suite-counts") == "4/10 tests  2 passed  1 failing"
        assert text(app, "#suite-now") == "now: tests/test_shop.py::test_4"
        track = "baseline › isolation › triage › agents › integrate › final"
        assert text(app, "#status") == track

        await feed(app, pilot, agent_events())
        assert not app.query_one("#suite").display
        assert text(app, "#status") == f"{track}   40.0% → …"  # the phase follows the run
        plan = app.query_one("#plan", DataTable)
        assert [str(row[0]) for row in map(plan.get_row_at, range(plan.row_count))] == [
            "model_defaults",
            "uuid_type",
            "test_isolation",
        ]
        assert cell(app, "#plan", "test_isolation", "count") == "1"
        assert cell(app, "#plan", "test_isolation", "priority") == "low"
        assert cell(app, "#plan", "test_isolation", "agent") == "-"
        agents = app.query_one("#agents", DataTable)
        assert agents.row_count == 2
        assert cell(app, "#agents", "model_defaults", "status") == "accepted"
        assert cell(app, "#agents", "model_defaults", "fixed") == "3/3"
        assert cell(app, "#agents", "model_defaults", "branch") == "…/model_defaults"
        assert cell(app, "#agents", "uuid_type", "status") == "proposing"
        assert cell(app, "#agents", "uuid_type", "attempt") == "2"
        # the latest usage per agent: 0.5 + 0.25
        assert text(app, "#header").endswith("claude-x $0.75")
        log = log_text(app)
        assert "model_defaults: accepted" in log
        assert "docker [not] running" in log
        assert "queued" not in log

        await feed(app, pilot, finish_events())
        assert cell(app, "#agents", "uuid_type", "status") == "no patch"
        assert cell(app, "#agents", "model_defaults", "status") == "merged"
        assert text(app, "#status") == "finished   40.0% → 90.0%"
        assert "0:00:15" in text(app, "#header")  # elapsed stops at RunFinished
        summary = text(app, "#summary")
        assert summary.splitlines() == [
            "Pass rate: 4/10 passed (40.0%) → 9/10 passed (90.0%)",
            "Merged: model_defaults",
            "Integration branch: orchestrate/s1/integration",
            "Left: uuid_type (2), test_isolation (1)",
            "Handoff: /src/shop/.git/orchestrate/handoff.md",
        ]
        assert app.query_one("#summary").display
        assert app.query_one("#plan").display  # what is left stays one key away


@pytest.mark.asyncio
async def test_keys_show_the_diff_toggle_the_log_help_and_cancel():
    controls = Controls()
    app = make_app(controls=controls)
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot, start_events() + agent_events())
        assert app.query_one("#agents").has_focus

        await pilot.press("d")
        detail = text(app, "#detail-body")
        assert detail.startswith("model_defaults (model_defaults): accepted")
        assert "+status = Column(String, default='new')" in detail
        assert "3 passed in 0.12s" in detail
        assert app.query_one("#detail").display and not app.query_one("#log").display

        await pilot.press("down")  # the detail follows the selection
        assert text(app, "#detail-body").startswith("uuid_type (uuid_type): proposing")
        assert "(no diff yet)" in text(app, "#detail-body")

        await pilot.press("l")
        assert app.query_one("#log").has_focus and app.query_one("#log").display
        await pilot.press("l")
        assert not app.query_one("#bottom").display
        assert app.query_one("#agents").has_focus
        await pilot.press("l")
        assert app.query_one("#bottom").display

        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert "cancel the selected agent" in str(app.screen.query_one("#help", Static).content)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)

        app.query_one("#agents").focus()
        await pilot.press("c")  # uuid_type is selected and still proposing
        assert controls.is_cancelled("uuid_type")
        assert "uuid_type: cancel requested" in log_text(app)
        await pilot.press("up", "c")  # model_defaults is accepted: nothing to cancel
        assert not controls.is_cancelled("model_defaults")

        await pilot.press("q")  # no work running: leaves at once
    assert not controls.stop_requested


@pytest.mark.asyncio
async def test_q_stops_the_work_gracefully_and_exits_when_it_returns():
    release = threading.Event()

    def work(emit: Emit, controls: Controls) -> str:
        emit(RunStarted(repo="/src/shop", session="s1", base_commit="abc", at=T0))
        emit(SuiteStarted(label="baseline", total=None, at=T0))
        n = 0
        while not controls.stop_requested:
            emit(TestFinished(label="baseline", nodeid=f"t.py::test_{n}", outcome="passed"))
            n += 1
            time.sleep(0.001)
        release.wait(5)
        return f"stopped after {n}"

    controls = Controls()
    app = make_app(work=work, controls=controls)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.3)
        assert "passed" in text(app, "#suite-counts")
        await pilot.press("q")
        assert controls.stop_requested
        assert "stopping…" in text(app, "#header")
        assert app.is_running  # still waiting for the work
        release.set()
        for _ in range(200):  # the app exits by itself once the work returns
            if app.return_value is not None:
                break
            await asyncio.sleep(0.01)
        assert app.return_value is not None
    assert not app.is_running
    assert app.error is None
    assert str(app.result).startswith("stopped after ")
    assert app.return_value == app.result


@pytest.mark.asyncio
async def test_emitted_test_events_are_coalesced_into_few_repaints():
    def work(emit: Emit, controls: Controls) -> int:
        emit(SuiteStarted(label="baseline", total=3000))
        for i in range(3000):
            emit(TestStarted(label="baseline", nodeid=f"t.py::test_{i}"))
            emit(
                TestFinished(
                    label="baseline",
                    nodeid=f"t.py::test_{i}",
                    outcome="failed" if i % 10 == 0 else "passed",
                )
            )
        return 3000

    app = make_app(work=work)
    refreshes = 0
    original = app._refresh

    def counting_refresh() -> None:
        nonlocal refreshes
        refreshes += 1
        original()

    app._refresh = counting_refresh
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause(0.2)
        assert text(app, "#suite-counts") == "3000/3000 tests  2700 passed  300 failing"
        assert app.result == 3000
        assert refreshes < 50
        assert text(app, "#summary").splitlines() == ["The run ended without a result."]


@pytest.mark.asyncio
async def test_a_failing_work_is_kept_for_the_cli_and_shown():
    def work(emit: Emit, controls: Controls) -> None:
        emit(Log(level="info", message="starting"))
        raise ValueError("not a git repository: /tmp/x")

    app = make_app(work=work)
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "Run failed: not a git repository: /tmp/x" in text(app, "#summary")
        assert "run failed: not a git repository" in log_text(app)
        await pilot.press("q")
    assert isinstance(app.error, ValueError)
    assert not app.is_running


@pytest.mark.asyncio
async def test_everything_fits_at_80_by_24():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await feed(app, pilot, start_events())
        assert app.query_one("#suite-now").region.bottom <= 24
        await feed(app, pilot, agent_events() + finish_events())
        screen = app.screen.region
        for selector in ("#header", "#status", "#summary", "#agents", "#bottom", "Footer"):
            region = app.query_one(selector).region
            assert region.height > 0 and screen.contains_region(region), selector
        assert app.query_one("#summary").region.height >= 6  # border + five lines, none cut
        assert app.query_one("#agents").region.height >= 4  # title, header and two rows


def test_snapshot_plan_and_agents_running(snap_compare):
    async def run_before(pilot) -> None:
        await feed(pilot.app, pilot, start_events() + agent_events()[:-2])
        await feed(
            pilot.app,
            pilot,
            [
                SuiteStarted(label="verify model_defaults", total=13, at=T0 + 9),
                TestStarted(
                    label="verify model_defaults",
                    nodeid="tests/test_models.py::test_default",
                    at=T0 + 9,
                ),
            ],
        )

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_snapshot_finished_summary(snap_compare):
    async def run_before(pilot) -> None:
        await feed(pilot.app, pilot, start_events() + agent_events() + finish_events())

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_snapshot_diff_at_80_by_24(snap_compare):
    async def run_before(pilot) -> None:
        await feed(pilot.app, pilot, start_events() + agent_events())
        await pilot.press("d")

    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=run_before)


def left_plan() -> PlanReady:
    hang = category("timeout", 2, "high", None).model_copy(
        update={
            "tests": ["tests/test_net.py::test_fetch", "tests/test_net.py::test_retry"],
            "root_cause": "waits on a server that is not running",
            "fix_strategy": "bounded waits, a fake server",
        }
    )
    return PlanReady(
        categories=PLAN[:2],
        left=[
            LeftCategory(
                category=hang,
                reason="no offline specialist; needs a model (set ANTHROPIC_API_KEY)",
                needs="a key (ANTHROPIC_API_KEY), or a person",
            )
        ],
        failure_text={"timeout": "tests/test_net.py::test_fetch\nFailed: Timeout >20.0s"},
        at=T0 + 6,
    )


@pytest.mark.asyncio
async def test_enter_on_a_left_category_shows_its_tests_and_why_it_is_left():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot, [*start_events(), SuiteFinished(label="baseline", counts=BEFORE)])
        await feed(app, pilot, [left_plan()])
        assert cell(app, "#plan", "timeout", "agent") == "left"
        assert (
            cell(app, "#plan", "timeout", "title") == "needs a key (ANTHROPIC_API_KEY), or a person"
        )
        app.query_one("#plan").focus()
        await pilot.press("down", "down", "enter")
        detail = text(app, "#detail-body")
        assert detail.startswith("timeout: left (no offline specialist; needs a model")
        assert "would take it: a key (ANTHROPIC_API_KEY), or a person" in detail
        assert "cause: waits on a server that is not running" in detail
        assert (
            "tests (2)\n  tests/test_net.py::test_fetch\n  tests/test_net.py::test_retry" in detail
        )
        assert "failure\ntests/test_net.py::test_fetch\nFailed: Timeout >20.0s" in detail
        await pilot.press("up")  # the detail follows the plan's cursor
        assert text(app, "#detail-body").startswith("uuid_type: planned, not started")


@pytest.mark.asyncio
async def test_enter_on_an_agent_shows_its_verification_and_statuses_are_coloured():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot, start_events() + agent_events())
        await pilot.press("enter")
        detail = text(app, "#detail-body")
        assert detail.startswith("model_defaults (model_defaults): accepted")
        assert f"branch {BRANCH}model_defaults" in detail  # the whole name
        assert "3 passed in 0.12s" in detail
        table = app.query_one("#agents", DataTable)
        accepted = table.get_cell("model_defaults", "status")
        proposing = table.get_cell("uuid_type", "status")
        assert accepted.style and proposing.style and accepted.style != proposing.style


@pytest.mark.asyncio
async def test_every_agent_shows_at_80_by_24_and_the_palette_has_the_apps_commands():
    many = [category(f"cat_{i}", 2) for i in range(7)]
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await feed(app, pilot, start_events())
        await feed(app, pilot, [PlanReady(categories=many, at=T0 + 6)])
        await feed(
            app,
            pilot,
            [
                AgentUpdate(
                    category=c.id, agent=c.id, status="proposing", target=2, branch=BRANCH + c.id
                )
                for c in many
            ],
        )
        agents = app.query_one("#agents", DataTable)
        assert agents.region.height >= 2 + 7  # border title, header, seven rows
        assert app.screen.region.contains_region(agents.region)
        assert cell(app, "#agents", "cat_6", "branch") == "…/cat_6"
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert titles[:5] == ["Stop the run", "Cancel agent", "Detail", "Log", "Keys"]


@pytest.mark.asyncio
async def test_ctrl_c_is_the_graceful_stop_and_twice_leaves():
    release = threading.Event()

    def work(emit: Emit, controls: Controls) -> str:
        while not controls.stop_requested:
            time.sleep(0.01)
        release.wait(5)
        return "stopped"

    app = make_app(work=work)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+c")
        assert app.controls.stop_requested and app.is_running
        assert "stopping…" in text(app, "#header")
        await pilot.press("ctrl+c")  # again: leave now
        await pilot.pause()
    assert not app.is_running
    release.set()


@pytest.mark.asyncio
async def test_a_stop_signal_after_the_run_finished_leaves_the_app():
    """A closed terminal (SIGHUP) sets the stop; with nothing running the app must not linger."""
    app = make_app(work=lambda emit, controls: "done")
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.is_running
        app.controls.request_stop()  # what the SIGHUP/SIGTERM handler does
        for _ in range(100):
            if not app.is_running:
                break
            await asyncio.sleep(0.02)
    assert app.result == "done" and not app.is_running


@pytest.mark.asyncio
async def test_the_agent_detail_follows_what_the_model_is_doing():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, pilot, start_events() + agent_events())
        await pilot.press("enter")
        steps = [
            AgentStep(
                category="model_defaults", agent="llm", attempt=1, text=f"read_file app{i}.py"
            )
            for i in range(10)
        ]
        await feed(app, pilot, steps)
        detail = text(app, "#detail-body")
        assert "what the model is doing\n  #1 read_file app2.py\n" in detail  # the latest eight
        assert "app1.py" not in detail and "#1 read_file app9.py" in detail
