"""The TUI end to end in a real terminal (tmux): the demo runs to its summary, and `q` stops a run."""

from __future__ import annotations

import json
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
from tests.helpers import ROOT, git

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

ORCHESTRATE = str(Path(sys.executable).with_name("orchestrate"))
STEADY_AGENTS = {"model_defaults", "api_conflict", "uuid_type", "async_event_loop"}
SUFFIX = "{uuid.uuid4().hex[:8]}"  # what api_conflict appends to a repeated name


@pytest.fixture(autouse=True)
def _needs_the_cli() -> None:
    if not Path(ORCHESTRATE).exists():
        pytest.skip(f"{ORCHESTRATE} is not installed (pip install -e .)")


@pytest.mark.xdist_group("demo")
def test_demo_fixes_all_a_codemod_can_and_says_so_on_screen_and_in_json(tmp_path: Path) -> None:
    """The bundled demo, offline, as a person runs it: the TUI to its summary, then the record."""
    assert "ANTHROPIC_API_KEY" not in os.environ
    proc = subprocess.run(
        ["bash", str(ROOT / "bench" / "tui_tmux.sh"), ORCHESTRATE, "demo", "--dir", str(tmp_path)],
        env={**os.environ, "TIMEOUT": "300", "WIDTH": "160", "HEIGHT": "50"},
        capture_output=True,
        text=True,
        timeout=340,
    )
    screen = proc.stdout
    assert proc.returncode == 0, f"{proc.stderr}\n{screen}"
    # the script closed the terminal at the summary: the hang-up ends the process, none lingers
    assert not processes_mentioning(str(tmp_path), within=15), "orchestrate outlived its terminal"

    repo = tmp_path / "shop"
    handoffs = list((repo / "handoffs").glob("*.md"))
    assert len(handoffs) == 1
    assert f"Handoff: {handoffs[0]}" in screen
    assert "finished" in screen
    assert re.search(r"Pass rate: \d+/\d+ passed \([\d.]+%\) → \d+/\d+ passed", screen), screen
    assert "Integration branch: orchestrate/" in screen
    rows = agent_rows(screen)
    assert set(rows) >= STEADY_AGENTS, screen
    for category, status in rows.items():
        assert status in ("merged", "accepted"), f"{category} is {status}:\n{screen}"

    shown = subprocess.run(
        [ORCHESTRATE, "handoff", "show", str(handoffs[0]), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    view = json.loads(shown.stdout)
    assert view["source"] == "orchestrate"
    assert view["previous"]["failed"] == 2  # the logic bug and the hang, left for a model
    assert {c["category"] for c in view["categories"]} == {"unknown", "timeout"}
    state = read_handoff(handoffs[0]).state
    assert state is not None
    assert state.after.passed == state.before.total - 2
    results = {a.category: a for a in state.agents}
    assert {c: (a.agent, a.status) for c, a in results.items()} == {
        "model_defaults": ("model_defaults", "accepted"),
        "uuid_type": ("uuid_type", "accepted"),
        "api_conflict": ("api_conflict", "accepted"),
        "async_event_loop": ("async_event_loop", "accepted"),
        "mock_not_called": ("patch_target", "accepted"),
        "test_isolation": ("test_pollution", "accepted"),
        "db_schema": ("db_schema", "accepted"),
    }
    branch = state.integration_branch
    assert branch is not None
    merged = git(repo, "branch", "--list", "orchestrate/*", "--merged", branch)
    assert all(a.branch in merged for a in results.values())
    assert 'monkeypatch.setenv("SHOP_MODE", "readonly")' in git(
        repo, "show", f"{branch}:tests/test_a_settings.py"
    )
    assert "await fetch_count(n)" in git(repo, "show", f"{branch}:tests/test_stock.py")
    assert 'patch("shop.notify.send")' in git(repo, "show", f"{branch}:tests/test_notify.py")
    assert 'kwargs.setdefault("active", True)' in git(repo, "show", f"{branch}:shop/models.py")
    assert "import shop.health" in git(repo, "show", f"{branch}:tests/conftest.py")
    assert f'name=f"widget_{SUFFIX}"' in git(repo, "show", f"{branch}:tests/test_catalog.py")
    left = git(repo, "show", f"{branch}:shop/pricing.py")
    assert "price * percent / 100" in left  # the logic bug is no codemod's to guess


def processes_mentioning(text: str, within: float) -> list[int]:
    """The pids whose command line mentions `text`, once `within` seconds have let them exit."""
    deadline = time.monotonic() + within
    while True:
        pids = []
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                if text in cmdline.read_bytes().decode(errors="replace"):
                    pids.append(int(cmdline.parent.name))
            except OSError:  # it exited while we looked
                continue
        if not pids or time.monotonic() > deadline:
            return pids
        time.sleep(0.2)


def agent_rows(screen: str) -> dict[str, str]:
    """category -> status, from the Agents table as the terminal shows it."""
    lines = screen.splitlines()
    header = next(
        i for i, line in enumerate(lines) if line.split()[:3] == ["category", "status", "fixed"]
    )
    rows = {}
    for line in lines[header + 1 :]:
        cells = line.split()
        if len(cells) < 3 or line.startswith("─"):
            break
        rows[cells[0]] = cells[1]
    return rows


class Tmux:
    """One tmux server of our own, one 80x24 window running a command."""

    def __init__(self, command: str, width: int = 80, height: int = 24) -> None:
        self.socket = f"tui-e2e-{os.getpid()}-{time.monotonic_ns()}"
        self(
            *("-f", "/dev/null", "new-session", "-d", "-s", "main"),
            *("-x", str(width), "-y", str(height)),
            f'{command}; echo "[exit status $?]"; sleep 600',
        )

    def __call__(self, *args: str) -> str:
        proc = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True
        )
        return proc.stdout

    def wait_for(self, pattern: str, timeout_s: float) -> str:
        deadline, screen = time.monotonic() + timeout_s, ""
        while time.monotonic() < deadline:
            screen = self("capture-pane", "-p", "-t", "main")
            if re.search(pattern, screen):
                return screen
            time.sleep(0.25)
        raise AssertionError(f"{pattern!r} not on the screen after {timeout_s} s:\n{screen}")

    def keys(self, *keys: str) -> None:
        self("send-keys", "-t", "main", *keys)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


def test_at_80_by_24_a_left_category_opens_and_q_leaves_the_summary_on_the_terminal(
    make_repo,
) -> None:
    repo = make_repo(
        {
            "calc.py": "def add(a, b):\n    return a - b\n",
            "tests/test_calc.py": "from calc import add\n\n\ndef test_add():\n"
            "    assert add(2, 3) == 5\n\n\ndef test_ok():\n    pass\n",
        }
    )
    command = shlex.join([ORCHESTRATE, "run", str(repo), "--no-isolation"])
    tmux = Tmux(f"env -u ANTHROPIC_API_KEY {command}")
    try:
        tmux.wait_for(r"Handoff:", 90)  # finished: the summary is up
        tmux.keys("Enter")  # on the plan's one row (no agent ran): left for a model or a person
        detail = tmux.wait_for(r"would take it", 10)
        assert "unknown: left (no offline specialist; needs a model" in detail
        assert "tests/test_calc.py::test_add" in detail
        tmux.keys("q")
        screen = tmux.wait_for(r"\[exit status \d+\]", 30)
    finally:
        tmux.close()
    assert "[exit status 0]" in screen, screen
    after = screen[screen.rindex("orchestrate: Pass rate:") :]  # on the terminal, after the app
    assert after.startswith("orchestrate: Pass rate: 1/2 passed (50.0%) → 1/2 passed (50.0%)")
    assert "orchestrate: Left: unknown (1)" in after
    assert f"orchestrate: Handoff: {repo}/handoffs/" in after.replace("\n", "")  # wrapped at 80


@pytest.mark.xdist_group("demo")
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
