"""The docker watchdog inside `orchestrate run`: a repair is reported, and never counted as a fix."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.agents.test_specialists_e2e import agent, run
from tests.helpers import doubles
from tests.helpers.fake_docker import fake_docker, states

FILES = {
    "tests/__init__.py": "",
    "tests/conftest.py": """
        import subprocess

        import pytest


        @pytest.fixture
        def redis_paused():
            subprocess.run(["docker", "pause", "cos_redis"], check=True)
            yield
    """,
    "tests/test_a_pause.py": """
        def test_degraded_mode(redis_paused):
            assert "degraded" in "service degraded"
    """,
    "tests/test_b_redis.py": """
        import subprocess


        def test_redis_is_up():
            out = subprocess.run(
                ["docker", "inspect", "-f", "{{.State.Status}}", "cos_redis"],
                capture_output=True, text=True,
            )
            assert out.stdout.strip() == "running", f"Container cos_redis is {out.stdout.strip()}"
    """,
}


def test_a_patch_whose_victim_passes_only_after_a_repair_is_rejected(
    make_repo, tmp_path: Path, capsys, monkeypatch, agents
) -> None:
    _, state = fake_docker(tmp_path, {"cos_redis": "running"})
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("ORCHESTRATE_WRITABLE", str(state.parent))  # the daemon's state, shared
    agents(docker_lifecycle=doubles.CommentOnly)
    repo = make_repo(FILES)
    report = run(repo, tmp_path, capsys)
    result = agent(report, "docker_lifecycle")
    # Verification reruns the test that paused the container before its victim: still red.
    assert result["status"] == "rejected", result
    assert result["fixed"] == [] and "test_redis_is_up" in (result["reason"] or "")
    assert report["after"]["failed"] == 1  # the repair did not turn the suite green on paper
    handoff = Path(report["handoff"]).read_text()
    assert "- `cos_redis` was paused during `baseline`: unpaused" in handoff
    assert "left so by one of: `tests/test_a_pause.py::test_degraded_mode`" in handoff
    repairs = json.loads(handoff.split("```json\n")[-1].split("\n```")[0])["repairs"]
    assert {r["container"] for r in repairs} == {"cos_redis"}
    assert states(state)["cos_redis"] == "running"  # every run's closing check restored it
