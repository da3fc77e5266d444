"""Keep the containers a suite depends on running: a preflight repair and a watchdog thread.

Suites that `docker pause` a service container and fail before unpausing it leave it paused for
every later test (and for the next run): people end up clicking "play" in Docker Desktop. The
preflight unpauses or starts those containers before a run; the watchdog does it again during the
run. Everything goes through the docker CLI whose path is passed in, so tests use a fake.
"""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel

from orchestrator.models import Failure

TIMEOUT_S = 20.0
_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]+"
_PATTERNS = (
    re.compile(
        rf"""['"](?:pause|unpause|start|stop|restart|inspect|kill)['"],\s*['"]({_NAME})['"]"""
    ),
    re.compile(rf"docker (?:pause|unpause|start|stop|restart|kill) ({_NAME})"),
    re.compile(rf"[Cc]ontainer ['\"]?({_NAME})['\"]? is (?:paused|not running|stopped|exited)"),
)


class Repair(BaseModel):
    """What the watchdog found one container in and what it did about it."""

    container: str
    was: Literal["paused", "exited", "missing", "running", "unknown"]
    action: Literal["unpaused", "started", "none", "failed"]
    detail: str = ""


def containers_from_failures(failures: Iterable[Failure]) -> list[str]:
    """Container names the failures' messages mention, in order of first mention."""
    names: list[str] = []
    for failure in failures:
        text = f"{failure.message}\n{failure.longrepr or ''}"
        for pattern in _PATTERNS:
            names += [n for n in pattern.findall(text) if n not in names]
    return names


def _docker(docker: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [docker, *args], capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )


def _status(docker: str, name: str) -> tuple[str, str]:
    """(running|paused|exited|missing|unknown, detail) for one container."""
    out = _docker(docker, "inspect", "-f", "{{.State.Status}}", name)
    if out.returncode != 0:
        detail = (out.stderr or out.stdout).strip()
        return ("missing" if "no such" in detail.lower() else "unknown"), detail
    status = out.stdout.strip()
    if status in ("running", "paused"):
        return status, ""
    return ("exited" if status in ("exited", "created", "dead") else "unknown"), status


def _repair(docker: str, name: str) -> Repair:
    try:
        was, detail = _status(docker, name)
        if was not in ("paused", "exited"):
            return Repair(container=name, was=was, action="none", detail=detail)
        verb, done = ("unpause", "unpaused") if was == "paused" else ("start", "started")
        out = _docker(docker, verb, name)
    except subprocess.TimeoutExpired as exc:
        return Repair(
            container=name,
            was="unknown",
            action="failed",
            detail=f"docker timed out after {exc.timeout}s",
        )
    if out.returncode != 0:
        detail = f"docker {verb} {name} failed: {(out.stderr or out.stdout).strip()}"
        return Repair(container=name, was=was, action="failed", detail=detail)
    return Repair(container=name, was=was, action=done, detail=detail)


def ensure_running(names: Iterable[str], docker: str = "docker") -> list[Repair]:
    """Unpause paused and start exited containers; one Repair per container looked at.

    Without a docker executable there is nothing to repair: one Repair says so, nothing raises.
    """
    names = list(dict.fromkeys(names))
    repairs: list[Repair] = []
    for name in names:
        try:
            repairs.append(_repair(docker, name))
        except FileNotFoundError:
            note = f"docker executable {docker!r} not found; containers not checked"
            return [Repair(container=n, was="unknown", action="none", detail=note) for n in names]
    return repairs


class Watchdog:
    """A daemon thread that calls `ensure_running` every `interval_s` seconds during a run.

    `repairs` keeps only the repairs that did something (or failed), so a quiet run reports nothing.
    """

    def __init__(
        self, names: Iterable[str], docker: str = "docker", interval_s: float = 5.0
    ) -> None:
        self.names = list(names)
        self.docker = docker
        self.interval_s = interval_s
        self.repairs: list[Repair] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def check(self) -> list[Repair]:
        """One round of repairs; the ones that acted are recorded."""
        acted = [r for r in ensure_running(self.names, self.docker) if r.action != "none"]
        with self._lock:
            self.repairs += acted
        return acted

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.check()

    def start(self) -> Watchdog:
        if self.names and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="docker-watchdog", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> list[Repair]:
        """Stop the thread (waiting for a round in progress) and return every recorded repair."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=TIMEOUT_S * 2)
            self._thread = None
        with self._lock:
            return list(self.repairs)

    def __enter__(self) -> Watchdog:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
