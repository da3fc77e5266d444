"""Screenshots of the TUI's main screens from a real run of the bundled demo, as SVG in docs/.

    .venv/bin/python bench/tui_screenshots.py [OUT_DIR]      default: docs/screenshots

Each screen is saved at 120x36 and at 80x24: the agents at work, the finished run, the detail of
a category left for a model or a person, and the detail of an agent (its diff and verification).
Offline: no API key is used, so the logic bug and the hang are left, and say why.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from textual.widgets import DataTable

from orchestrator.demo import build_demo
from orchestrator.run.context import RunOptions, new_session
from orchestrator.run.session import run
from orchestrator.view.tui import OrchestrateApp

SIZES = [(120, 36), (80, 24)]
ROOT = Path(__file__).resolve().parent.parent


async def until(predicate: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def rows(app: OrchestrateApp, table: str) -> list[str]:
    found = app.query_one(table, DataTable)
    return [str(key.value) for key in found.rows]


def status_of(app: OrchestrateApp, key: str) -> str:
    return str(app.query_one("#agents", DataTable).get_cell(key, "status"))


async def main(out: Path) -> None:
    os.environ.pop("ANTHROPIC_API_KEY", None)
    out.mkdir(parents=True, exist_ok=True)
    repo = build_demo(Path(tempfile.mkdtemp(prefix="orchestrate-shots-")))
    options = RunOptions(repo=str(repo), session=new_session(), timeout_s=20, parallel=2)
    app = OrchestrateApp(work=lambda emit, controls: run(options, emit, controls))

    async with app.run_test(size=SIZES[0]) as pilot:

        async def shoot(name: str) -> None:
            for width, height in SIZES:
                await pilot.resize_terminal(width, height)
                await pilot.pause(0.3)
                path = app.save_screenshot(f"tui-{name}-{width}x{height}.svg", str(out))
                print(
                    f"saved {Path(path).relative_to(ROOT) if Path(path).is_relative_to(ROOT) else path}"
                )
            await pilot.resize_terminal(*SIZES[0])
            await pilot.pause()

        await until(
            lambda: any(
                status_of(app, k) in ("verifying", "proposing") for k in rows(app, "#agents")
            ),
            300,
        )
        await shoot("agents")
        await until(lambda: app.result is not None or app.error is not None, 600)
        await pilot.pause(0.5)
        await shoot("finished")
        plan = rows(app, "#plan")
        left = [key for key in plan if key not in rows(app, "#agents")]
        if left:
            app.query_one("#plan").focus()
            await pilot.press(*["down"] * plan.index(left[-1]), "enter")
            await shoot("left-detail")
        app.query_one("#agents").focus()
        await pilot.press("enter")
        await shoot("agent-detail")
        await pilot.press("q")
    if app.error is not None:
        raise SystemExit(f"the demo run failed: {app.error}")


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots"))
