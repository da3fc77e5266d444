"""The sandbox, with real commands: writes stay in the workdir, the home and passwd are not ours
to read, secrets are not in the environment, and nothing started inside outlives the run."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from orchestrator.suite import sandbox

pytestmark = pytest.mark.skipif(
    sandbox.available() is None and not os.environ.get("CI"),
    reason="no sandbox (bubblewrap) on this machine; CI installs it",
)

HOSTILE = """
import os, pathlib, subprocess, sys, time
out = {}
pathlib.Path("inside.txt").write_text("ok")
out["inside"] = pathlib.Path("inside.txt").exists()
for name, target in (("outside", sys.argv[1]), ("tmp", sys.argv[2])):
    try:
        pathlib.Path(target).write_text("escaped")
        out[name] = "written"
    except OSError as exc:
        out[name] = type(exc).__name__
try:
    out["home"] = pathlib.Path(sys.argv[3]).read_text()
except OSError as exc:
    out["home"] = type(exc).__name__
out["passwd"] = open("/etc/passwd").read()
out["env"] = os.environ.get("ANTHROPIC_API_KEY", "absent")
if os.fork() == 0:  # a daemon: double fork, new session
    os.setsid()
    if os.fork() == 0:
        os.execvp("sleep", ["sleep", sys.argv[4]])
    os._exit(0)
print(repr(out))
"""


def _run(tmp_path: Path, network: str = "loopback") -> tuple[dict, Path, Path, str]:
    work, outside, home = tmp_path / "work", tmp_path / "outside", tmp_path / "home"
    for d in (work, outside, home):
        d.mkdir()
    (home / ".netrc").write_text("machine example.com password hunter2-hunter2")
    (work / "hostile.py").write_text(textwrap.dedent(HOSTILE))
    marker = f"{os.getpid() % 1000 + 1000}.{time.monotonic_ns() % 10_000}"
    env = sandbox.scrubbed_env(
        {**os.environ, "HOME": str(home), "ANTHROPIC_API_KEY": "sk-ant-test-0123456789"}
    )
    argv = [
        sys.executable,
        "hostile.py",
        str(outside / "x.txt"),
        "/tmp/orchestrate-escape-test.txt",
        str(home / ".netrc"),
        marker,
    ]
    cmd = sandbox.confined(argv, workdir=work, env=env, readable=[outside], network=network)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return eval(proc.stdout), work, outside, marker  # noqa: S307 - our own script's repr


def test_a_hostile_script_is_contained(tmp_path: Path) -> None:
    out, work, outside, marker = _run(tmp_path)
    assert out["inside"] and (work / "inside.txt").read_text() == "ok"
    assert out["outside"] == "OSError" and not (outside / "x.txt").exists()
    assert out["tmp"] == "written"  # into the private /tmp, not ours
    assert not Path("/tmp/orchestrate-escape-test.txt").exists()
    assert out["home"] in ("FileNotFoundError", "PermissionError")
    assert out["env"] == "absent"
    users = [line.split(":")[0] for line in out["passwd"].splitlines()]
    assert len(users) <= 2 and "daemon" not in users
    time.sleep(0.2)
    left = subprocess.run(["pgrep", "-f", f"sleep {marker}"], capture_output=True, text=True)
    assert left.stdout == "", "a daemon outlived the sandbox"


def test_loopback_is_private_and_host_is_shared(tmp_path: Path) -> None:
    probe = "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); print(len(socket.if_nameindex()))"
    env = sandbox.scrubbed_env(os.environ)
    counts = {}
    for network in ("loopback", "host"):
        cmd = sandbox.confined(
            [sys.executable, "-c", probe], workdir=tmp_path, env=env, network=network
        )
        counts[network] = int(
            subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
        )
    assert counts["loopback"] == 1  # lo only
    assert counts["host"] == len(__import__("socket").if_nameindex())


def test_scrubbed_env_drops_secrets_and_keeps_the_allow_list() -> None:
    env = {
        "PATH": "/usr/bin",
        "GITHUB_TOKEN": "ghp_abcdefghijklmnop",
        "DATABASE_URL": "postgres://app:s3cretpw@localhost/db",
        "SERVICE_URL": "http://localhost:8000",
        "MY_API_KEY": "xyz",
        "GIT_DIR": "/repo/.git",
        "GIT_AUTHOR_NAME": "Test",
    }
    assert sandbox.scrubbed_env(env) == {
        "PATH": "/usr/bin",
        "SERVICE_URL": "http://localhost:8000",
        "GIT_AUTHOR_NAME": "Test",
    }
    kept = sandbox.scrubbed_env(env, keep=["DATABASE_URL"])
    assert kept["DATABASE_URL"] == env["DATABASE_URL"] and "GITHUB_TOKEN" not in kept
