"""The docker preflight and watchdog, against a fake `docker` executable that keeps state in JSON."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from orchestrator.events import SuiteStarted, TestStarted
from orchestrator.models import Failure, Repair, SuiteRun, TestResult
from orchestrator.suite.docker import Watchdog, containers_from_failures, ensure_running, uncredited
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


def wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_repair_under_way_when_stop_is_called_is_returned(tmp_path: Path) -> None:
    docker, state = fake_docker(tmp_path, {"cos_redis": "paused"}, delays={"unpause": 1.0})
    watchdog = Watchdog(["cos_redis"], docker=str(docker), interval_s=0.01).start()
    wait_for(lambda: ["unpause", "cos_redis"] in json.loads(state.read_text()).get("calls", []))
    # The thread is inside the slow `docker unpause`: stop() must wait for it and return it.
    repairs = watchdog.stop()
    assert [(r.container, r.was, r.action) for r in repairs] == [
        ("cos_redis", "paused", "unpaused")
    ]


def test_a_round_on_another_thread_ends_before_stop_reads_the_record(tmp_path: Path) -> None:
    docker, _ = fake_docker(tmp_path, {"cos_redis": "paused"}, delays={"unpause": 1.0})
    watchdog = Watchdog(["cos_redis"], docker=str(docker), interval_s=60)
    checker = threading.Thread(target=watchdog.check)  # a suite run's closing check
    checker.start()
    time.sleep(0.3)  # the check is waiting on docker
    repairs = watchdog.stop()
    checker.join()
    assert [r.action for r in repairs] == ["unpaused"]


def test_a_deliberate_outage_the_test_restores_is_left_alone(tmp_path: Path) -> None:
    docker, state = fake_docker(tmp_path, {"cos_redis": "running"})
    with Watchdog(["cos_redis"], docker=str(docker), interval_s=1.0) as watchdog:
        time.sleep(1.2)  # one round saw it running
        subprocess.run([str(docker), "pause", "cos_redis"], check=True)
        time.sleep(0.4)  # at most one round sees it paused: a second look is needed to act
        subprocess.run([str(docker), "unpause", "cos_redis"], check=True)
        time.sleep(1.5)
    assert watchdog.stop() == []
    assert states(state)["cos_redis"] == "running"


def test_a_repair_names_the_tests_that_ran_since_the_container_was_fine(tmp_path: Path) -> None:
    docker, _ = fake_docker(tmp_path, {"cos_redis": "running"})
    reported: list[Repair] = []
    watchdog = Watchdog(["cos_redis"], docker=str(docker), on_repair=reported.append)
    watchdog.observe(SuiteStarted(label="baseline"))
    watchdog.observe(TestStarted(label="baseline", nodeid="tests/test_a.py::test_before"))
    time.sleep(0.01)
    assert watchdog.check() == []  # seen running
    time.sleep(0.01)
    watchdog.observe(TestStarted(label="baseline", nodeid="tests/test_b.py::test_pauses"))
    watchdog.observe(TestStarted(label="baseline", nodeid="tests/test_c.py::test_victim"))
    subprocess.run([str(docker), "pause", "cos_redis"], check=True)
    with watchdog.window("baseline") as seen:
        pass  # the run ends: its closing check repairs what it left broken
    [repair] = seen
    assert reported == [repair] == watchdog.stop()
    assert repair.during == ["baseline"]
    assert repair.suspects == [
        "tests/test_a.py::test_before",  # it was running when the container was last seen fine
        "tests/test_b.py::test_pauses",
        "tests/test_c.py::test_victim",
    ]
    assert repair.describe() == (
        "cos_redis was paused: unpaused during baseline; left so by one of: "
        "tests/test_a.py::test_before, tests/test_b.py::test_pauses, tests/test_c.py::test_victim"
    )


def test_what_passes_after_a_repair_is_not_counted_as_fixed() -> None:
    def run(**outcomes: str) -> SuiteRun:
        results = [TestResult(nodeid=n, outcome=o) for n, o in outcomes.items()]
        return SuiteRun(command=["pytest"], cwd=".", results=results)

    baseline = run(t_victim="failed", t_fine="passed", t_other="failed")
    final = run(t_victim="passed", t_fine="passed", t_other="failed")
    repair = Repair(container="cos_redis", was="paused", action="unpaused")
    assert uncredited(final, baseline, []) is final
    after = uncredited(final, baseline, [repair])
    assert [(r.nodeid, r.outcome) for r in after.results] == [
        ("t_victim", "failed"),
        ("t_fine", "passed"),
        ("t_other", "failed"),
    ]
    assert "not counted as fixed" in (after.results[0].message or "")
    assert after.counts().failed == 2
