"""The docker preflight and watchdog, against a fake `docker` executable that keeps state in JSON."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.models import Failure
from orchestrator.suite.docker import Watchdog, containers_from_failures, ensure_running
from tests.helpers.fake_docker import fake_docker, states


@pytest.fixture
def docker_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    _, state = fake_docker(
        tmp_path, {"cos_redis": "paused", "cos_db": "exited", "cos_api": "running"}
    )
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{Path(sys.executable).parent}:/usr/bin:/bin")
    return state


def test_containers_from_failures_reads_cli_and_status_messages() -> None:
    def failure(message: str) -> Failure:
        return Failure(
            nodeid="t.py::t",
            outcome="failed",
            category="docker_lifecycle",
            signature="s",
            message=message,
        )

    failures = [
        failure(
            "subprocess.CalledProcessError: Command '['/usr/local/bin/docker', 'unpause', 'cos_redis']' returned non-zero exit status 1."
        ),
        failure("RuntimeError: Container cos_db is paused"),
        failure("ConnectionError: Error 111 connecting to localhost:6379. Connection refused."),
        failure("Command '['docker', 'pause', 'cos_redis']' returned non-zero exit status 1."),
    ]
    assert containers_from_failures(failures) == ["cos_redis", "cos_db"]


def test_preflight_unpauses_and_starts_and_reports(docker_on_path: Path) -> None:
    repairs = ensure_running(["cos_redis", "cos_db", "cos_api", "gone"])
    assert [(r.container, r.was, r.action) for r in repairs] == [
        ("cos_redis", "paused", "unpaused"),
        ("cos_db", "exited", "started"),
        ("cos_api", "running", "none"),
        ("gone", "missing", "none"),
    ]
    assert "No such container" in repairs[3].detail
    assert states(docker_on_path) == {
        "cos_redis": "running",
        "cos_db": "running",
        "cos_api": "running",
    }


def test_preflight_reports_a_failing_unpause(tmp_path: Path) -> None:
    docker, state = fake_docker(tmp_path, {"cos_redis": "paused"}, broken=["cos_redis"])
    [repair] = ensure_running(["cos_redis"], docker=str(docker))
    assert (repair.was, repair.action) == ("paused", "failed")
    assert "docker unpause cos_redis failed" in repair.detail
    assert "not paused" in repair.detail
    assert states(state) == {"cos_redis": "paused"}


def test_watchdog_repairs_a_container_paused_mid_run(tmp_path: Path) -> None:
    docker, state = fake_docker(tmp_path, {"cos_redis": "running"})
    with Watchdog(["cos_redis"], docker=str(docker), interval_s=0.05) as watchdog:
        time.sleep(0.2)
        assert watchdog.repairs == []  # nothing to do while it runs
        subprocess.run([str(docker), "pause", "cos_redis"], check=True)  # a test never resumes it
        deadline = time.monotonic() + 10
        while states(state)["cos_redis"] != "running" and time.monotonic() < deadline:
            time.sleep(0.05)
    repairs = watchdog.stop()
    assert states(state)["cos_redis"] == "running"
    assert [(r.container, r.was, r.action) for r in repairs] == [
        ("cos_redis", "paused", "unpaused")
    ]
    assert watchdog._thread is None


def test_docker_missing_is_a_note_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    [repair] = ensure_running(["cos_redis"])
    assert (repair.container, repair.action) == ("cos_redis", "none")
    assert "not found" in repair.detail
    assert ensure_running([], docker=str(tmp_path / "nope")) == []
    with Watchdog(["cos_redis"], docker=str(tmp_path / "nope"), interval_s=0.01) as watchdog:
        time.sleep(0.05)
    assert watchdog.repairs == []
