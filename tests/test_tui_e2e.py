"""The TUI end to end in a real terminal (tmux): the demo runs to its summary, and `q` stops a run."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.handoff import read_handoff
from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

ORCHESTRATE = str(Path(sys.executable).with_name("orchestrate"))
STEADY_AGENTS = {"model_defaults", "api_conflict", "uuid_type", "async_event_loop"}


@pytest.fixture(autouse=True)
def _needs_the_cli() -> None:
    if not Path(ORCHESTRATE).exists():
        pytest.skip(f"{ORCHESTRATE} is not installed (pip install -e .)")


def test_demo_runs_to_its_summary_in_the_tui(tmp_path: Path) -> None:
    proc = subprocess.run(
        ["bash", str(ROOT / "bench" / "tui_tmux.sh"), ORCHESTRATE, "demo", "--dir", str(tmp_path)],
        env={**os.environ, "TIMEOUT": "110", "WIDTH": "160", "HEIGHT": "50"},
        capture_output=True,
        text=True,
        timeout=150,
    )
    screen = proc.stdout
    assert proc.returncode == 0, f"{proc.stderr}\n{screen}"

    handoffs = list((tmp_path / "shop" / "handoffs").glob("*.md"))
    assert len(handoffs) == 1
    assert f"Handoff: {handoffs[0]}" in screen
    assert "finished" in screen
    assert re.search(r"Pass rate: \d+/\d+ passed \([\d.]+%\) → \d+/\d+ passed", screen), screen
    assert "Integration branch: orchestrate/" in screen
    rows = agent_rows(screen)
    assert set(rows) >= STEADY_AGENTS, screen
    for category, status in rows.items():
        assert status in ("merged", "accepted"), f"{category} is {status}:\n{screen}"


def agent_rows(screen: str) -> dict[str, str]:
    """category -> status, from the Agents table as the terminal shows it."""
    lines = screen.splitlines()
    header = next(
        i for i, line in enumerate(lines) if line.split()[:3] == ["category", "agent", "status"]
    )
    rows = {}
    for line in lines[header + 1 :]:
        cells = line.split()
        if len(cells) < 3 or line.startswith("─"):
            break
        rows[cells[0]] = cells[2]
    return rows


def test_q_during_a_run_stops_it_and_leaves_an_interrupted_handoff(tmp_path: Path) -> None:
    socket = f"tui-e2e-{os.getpid()}"

    def tmux(*args: str) -> str:
        proc = subprocess.run(
            ["tmux", "-L", socket, *args], capture_output=True, text=True, check=True
        )
        return proc.stdout

    def wait_for(pattern: str, timeout_s: float) -> str:
        deadline, screen = time.monotonic() + timeout_s, ""
        while time.monotonic() < deadline:
            screen = tmux("capture-pane", "-p", "-t", "main")
            if re.search(pattern, screen):
                return screen
            time.sleep(0.25)
        raise AssertionError(f"{pattern!r} not on the screen after {timeout_s} s:\n{screen}")

    command = shlex.join([ORCHESTRATE, "demo", "--dir", str(tmp_path)])
    tmux(
        *("-f", "/dev/null", "new-session", "-d", "-s", "main", "-x", "160", "-y", "50"),
        f'{command}; echo "[exit status $?]"; sleep 600',
    )
    try:
        wait_for(r"\b(proposing|verifying)\b", 90)  # agents are at work
        tmux("send-keys", "-t", "main", "q")
        screen = wait_for(r"\[exit status \d+\]", 30)
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True)

    assert "[exit status 130]" in screen, screen
    assert "stopped; resume with `orchestrate run" in screen.replace("\n", "")
    repo = tmp_path / "shop"
    worktrees = repo / ".git" / "orchestrate" / "worktrees"
    assert not worktrees.exists() or not list(worktrees.iterdir())
    listed = subprocess.run(
        ["git", "-C", str(repo), "worktree", "list", "--porcelain"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert listed.count("worktree ") == 1  # only the user's checkout
    handoffs = list((repo / "handoffs").glob("*.md"))
    assert len(handoffs) == 1
    assert "INTERRUPTED" in handoffs[0].read_text()
    state = read_handoff(handoffs[0]).state
    assert state is not None and state.interrupted
    assert state.interrupted_reason == "stopped by the user"
