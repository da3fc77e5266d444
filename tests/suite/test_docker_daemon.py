"""The watchdog and a docker_lifecycle run against a real Docker daemon.

No registry is reachable, so the image is made here: `docker import` of a root filesystem that
holds one static busybox. `.ci/run` installs docker.io and busybox-static and starts a daemon;
without one these tests are skipped, saying why.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.suite.docker import Watchdog, ensure_running
from tests.agents.test_specialists_e2e import assert_all_fixed, run, show

IMAGE = "orchestrate-test-busybox:1"
pytestmark = pytest.mark.xdist_group("docker-daemon")  # one worker: the image is built once


def docker(*args: str, check: bool = True) -> str:
    out = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=60)
    if check and out.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout.strip()


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> str:
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI on PATH (apt-get install docker.io; .ci/run does)")
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
    if info.returncode != 0:
        pytest.skip(
            "no Docker daemon answers (start one: dockerd --iptables=false --bridge=none "
            f"--storage-driver=vfs; .ci/run does): {info.stderr.strip()[:200]}"
        )
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.skip("no busybox to build the test image from (apt-get install busybox-static)")
    if docker("images", "-q", IMAGE) == "":
        rootfs = tmp_path_factory.mktemp("rootfs") / "rootfs.tar"
        with tarfile.open(rootfs, "w") as tar:
            tar.add(busybox, arcname="bin/busybox")
            for applet in ("sh", "sleep"):
                link = tarfile.TarInfo(f"bin/{applet}")
                link.type, link.linkname = tarfile.SYMTYPE, "busybox"
                tar.addfile(link)
        docker("import", str(rootfs), IMAGE)
    return IMAGE


@pytest.fixture
def container(image: str) -> Iterator[str]:
    name = f"orch-test-{uuid.uuid4().hex[:8]}"
    docker("run", "-d", "--name", name, "--network", "none", image, "/bin/sleep", "3600")
    yield name
    docker("rm", "-f", name, check=False)


def status(name: str) -> str:
    return docker("inspect", "-f", "{{.State.Status}}", name)


def test_watchdog_restores_a_real_container_paused_mid_run(container: str) -> None:
    with Watchdog([container], interval_s=0.2) as watchdog:
        time.sleep(0.5)
        docker("pause", container)  # a test that never resumes it
        deadline = time.monotonic() + 30
        while status(container) != "running":
            assert time.monotonic() < deadline, "the watchdog never unpaused it"
            time.sleep(0.1)
    repairs = watchdog.stop()
    assert [(r.container, r.was, r.action) for r in repairs] == [(container, "paused", "unpaused")]


def test_preflight_starts_a_killed_container_and_names_a_missing_one(container: str) -> None:
    docker("kill", container)
    repairs = ensure_running([container, f"{container}-gone"])
    assert [(r.was, r.action) for r in repairs] == [("exited", "started"), ("missing", "none")]
    assert status(container) == "running"


DOCKER_REPO = {
    "tests/__init__.py": "",
    "tests/conftest.py": """
        import subprocess

        import pytest

        CACHE = "{name}"


        @pytest.fixture
        def cache_down():
            subprocess.run(["docker", "pause", CACHE], check=True)
            yield
    """,
    "tests/test_a_outage.py": """
        def test_outage_is_reported(cache_down):
            assert "degraded" in "service degraded: cache unavailable"
    """,
    "tests/test_b_cache.py": """
        import subprocess

        from tests.conftest import CACHE


        def test_cache_is_up():
            out = subprocess.run(
                ["docker", "inspect", "-f", "{{{{.State.Status}}}}", CACHE],
                capture_output=True, text=True, check=True,
            )
            assert out.stdout.strip() == "running", f"Container {{CACHE}} is {{out.stdout.strip()}}"
    """,
}


def test_a_run_fixes_the_pausing_fixture_and_reports_the_repair(
    container: str, make_repo, tmp_path: Path, capsys
) -> None:
    files = {path: text.format(name=container) for path, text in DOCKER_REPO.items()}
    pyproject = (
        f'[tool.orchestrator]\ntest-cmd = "{sys.executable} -m pytest"\n'
        f'containers = ["{container}"]\nenv = {{ PYTEST_DISABLE_PLUGIN_AUTOLOAD = "1" }}\n'
    )
    repo = make_repo(files, pyproject=pyproject)
    report = run(repo, tmp_path, capsys, "--agents", "docker_lifecycle")
    assert_all_fixed(report, "docker_lifecycle", 1)
    assert (
        '    subprocess.run(["docker", "pause", CACHE], check=True)\n'
        "    try:\n"
        "        yield\n"
        "    finally:\n"
        '        subprocess.run(["docker", "unpause", CACHE], check=True)\n'
        "        _wait_until_running(CACHE)\n"
    ) in show(repo, report, "tests/conftest.py")
    assert status(container) == "running"
    handoff = Path(report["handoff"]).read_text()
    assert "## Containers the watchdog restored" in handoff
    assert f"- `{container}` was paused during `baseline`: unpaused" in handoff
    assert "tests/test_a_outage.py::test_outage_is_reported" in handoff
    state = json.loads(handoff.split("```json\n")[-1].split("\n```")[0])
    assert [(r["container"], r["action"]) for r in state["repairs"]] == [(container, "unpaused")]
