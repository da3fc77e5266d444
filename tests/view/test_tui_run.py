"""The real app driving a real run (Pilot): a person cancels an agent, stops the run, reads the end.

The run is `orchestrator.run.session.run` on a throwaway repo with a test-double agent judged by
the real verifier, in the app's thread worker, exactly as `orchestrate run` starts it.
"""

from __future__ import annotations

import asyncio
import io
import time

import pytest
from textual.widgets import DataTable

from orchestrator.events import Controls, Emit
from orchestrator.git import GitRepo
from orchestrator.run.context import RunOptions, new_session
from orchestrator.run.session import run
from orchestrator.view.tui import OrchestrateApp
from tests.helpers import doubles

SLOW_WHEN_FIXED = {
    "calc/__init__.py": "",
    "calc/ops.py": """
        def add(a, b):
            return a - b  # add


        def mul(a, b):
            return a * b
    """,
    "tests/test_ops.py": """
        import time

        from calc.ops import add, mul


        def test_add():
            if add(2, 3) == 5:
                time.sleep(60)  # the fixed code's check is slow: verification is still running
            assert add(2, 3) == 5


        def test_mul():
            assert mul(2, 3) == 6
    """,
}


def options(repo) -> RunOptions:
    return RunOptions(
        repo=str(repo),
        session=new_session(),
        isolation=False,
        timeout_s=120,
        parallel=1,
        max_attempts=1,
    )


def status(app: OrchestrateApp, key: str) -> str | None:
    table = app.query_one("#agents", DataTable)
    return str(table.get_cell(key, "status")) if key in table.rows else None


async def until(predicate, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


@pytest.mark.asyncio
async def test_c_on_a_verifying_agent_cancels_it_and_nothing_is_merged(make_repo, agents):
    agents(unknown=doubles.FixCorrectly)
    repo = make_repo(SLOW_WHEN_FIXED)
    opts = options(repo)

    def work(emit: Emit, controls: Controls):
        return run(opts, emit, controls)

    app = OrchestrateApp(work=work)
    async with app.run_test(size=(120, 36)) as pilot:
        await until(lambda: status(app, "unknown") == "verifying")
        started = time.monotonic()
        app.query_one("#agents").focus()
        await pilot.press("c")
        await until(lambda: not app._working, 40)
        assert time.monotonic() - started < 30  # its pytest was killed, not waited for
        await pilot.pause()
        assert status(app, "unknown") == "cancelled"
        await pilot.press("q")
    report = app.result
    assert app.error is None and report is not None
    [result] = report.agents
    assert (result.status, result.reason, result.merged) == (
        "error",
        "cancelled by the user",
        False,
    )
    assert report.integration_branch is None
    assert GitRepo(repo).branches(f"orchestrate/{opts.session}/integration") == []
    out = io.StringIO()
    app.print_summary(out)  # what the terminal shows once the app has closed
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("orchestrate: Pass rate: 1/2 passed (50.0%) → 1/2 passed")
    assert lines[-1] == f"orchestrate: Handoff: {report.handoff}"


@pytest.mark.asyncio
async def test_ctrl_c_stops_the_run_gracefully_and_the_run_can_resume(make_repo, agents):
    agents(unknown=doubles.FixCorrectly)
    repo = make_repo(SLOW_WHEN_FIXED)
    opts = options(repo)

    app = OrchestrateApp(work=lambda emit, controls: run(opts, emit, controls))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(lambda: status(app, "unknown") == "verifying")
        await pilot.press("ctrl+c")
        assert app.controls.stop_requested
        await until(lambda: not app.is_running, 40)  # it leaves by itself once the run stopped
    assert type(app.error).__name__ == "Cancelled"
    assert f"--resume {opts.session}" in str(app.error)
    handoffs = list((repo / "handoffs").glob("*.md"))
    assert len(handoffs) == 1
    text = handoffs[0].read_text()
    assert f"orchestrate run {repo} --resume {opts.session}" in text  # the command the CLI says
    assert "| Failed | 1 | not run |" in text
    assert "tests/test_ops.py::test_add" in text.split("## Remaining failures")[1]
