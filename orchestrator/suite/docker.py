"""Keep the containers a suite depends on running: a preflight repair and a watchdog thread.

Suites that `docker pause` a service container and fail before unpausing it leave it paused for
every later test (and for the next run): people end up clicking "play" in Docker Desktop. The
preflight unpauses or starts those containers before a run; the watchdog does it again during the
run, and says so: a repair is reported (the log, the handoff) with the tests that may have left
the container broken, and the tests that pass only thanks to it are not counted as fixed.
Everything goes through the docker CLI whose path is passed in; tests use a fake and a real
daemon.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from orchestrator.events import SuiteFinished, SuiteStarted, TestStarted
from orchestrator.models import Failure, Repair, SuiteRun

TIMEOUT_S = 20.0
_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]+"
_PATTERNS = (
    re.compile(
        rf"""['"](?:pause|unpause|start|stop|restart|inspect|kill)['"],\s*['"]({_NAME})['"]"""
    ),
    re.compile(rf"docker (?:pause|unpause|start|stop|restart|kill) ({_NAME})"),
    re.compile(rf"[Cc]ontainer ['\"]?({_NAME})['\"]? is (?:paused|not running|stopped|exited)"),
)


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


def _state(docker: str, name: str) -> str:
    """The container's state, "unknown" when docker is absent or does not answer in time."""
    try:
        return _status(docker, name)[0]
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return "unknown"


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
    """Keeps the named containers running during a run: a daemon thread checks them every
    `interval_s` seconds, and every suite run ends with one more check (`window`).

    A container found broken by the thread is repaired only when the next round still finds it
    so: a test that pauses a container on purpose and restores it is left alone. Every repair
    that acted is recorded at once (`repairs`, `on_repair`), names the tests that started since
    the container was last seen running (`observe` is fed the run's events), and is never lost
    to `stop()`: stop waits for a round in progress, on any thread, before it reads the record.
    """

    def __init__(
        self,
        names: Iterable[str],
        docker: str = "docker",
        interval_s: float = 2.0,
        on_repair: Callable[[Repair], None] | None = None,
    ) -> None:
        self.names = list(names)
        self.docker = docker
        self.interval_s = interval_s
        self.on_repair = on_repair
        self.repairs: list[Repair] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # guards the record, the windows and the timeline
        self._round = threading.Lock()  # one round at a time, whichever thread runs it
        self._started: deque[tuple[float, str, str]] = deque(maxlen=10_000)  # (at, label, nodeid)
        self._running: dict[str, int] = {}  # labels of the suite runs underway
        self._seen_ok: dict[str, float] = {}  # container -> when it was last seen running
        self._broken: dict[str, float] = {}  # container -> when the thread first saw it broken
        self._windows: list[tuple[str, list[Repair]]] = []

    def observe(self, event: object) -> None:
        """Follow the run's events: which suite runs are underway, when each test started."""
        with self._lock:
            if isinstance(event, TestStarted):
                self._started.append((event.at, event.label, event.nodeid))
            elif isinstance(event, SuiteStarted):
                self._running[event.label] = self._running.get(event.label, 0) + 1
            elif isinstance(event, SuiteFinished) and self._running.get(event.label):
                self._running[event.label] -= 1

    def watch(self, names: Iterable[str]) -> None:
        """Watch more containers (between rounds: a round reads the list)."""
        with self._round:
            self.names += [n for n in names if n not in self.names]

    def check(self, *, settled: bool = True, after: str = "") -> list[Repair]:
        """One round; returns the repairs that acted. `settled`: no test is running now, so a
        broken container is repaired at once (the thread's rounds wait for a second look);
        `after`: the suite run that just ended, when no other is underway."""
        with self._round:
            found = time.time()
            acted: list[Repair] = []
            for name in self.names:
                was = _state(self.docker, name)
                if was == "running":
                    self._seen_ok[name] = found
                    self._broken.pop(name, None)
                if was not in ("paused", "exited"):
                    continue  # running, or nothing a restart would bring back
                first = self._broken.setdefault(name, found)
                if not settled and first == found:
                    continue  # maybe a test's deliberate outage: look again next round
                del self._broken[name]
                repair = ensure_running([name], self.docker)[0]
                if repair.acted:
                    acted.append(self._record(repair, first, after))
            return acted

    def _record(self, repair: Repair, found: float, after: str) -> Repair:
        with self._lock:
            since = self._seen_ok.get(repair.container, 0.0)
            suspects = [n for at, _, n in self._started if since <= at <= found]
            before = [n for at, _, n in self._started if at < since][-1:]  # running at `since`
            during = sorted(label for label, n in self._running.items() if n)
            repair = repair.model_copy(
                update={
                    "at": found,
                    "during": during or ([after] if after else []),
                    "suspects": list(dict.fromkeys(before + suspects)),
                }
            )
            self.repairs.append(repair)
            for label, seen in self._windows:
                if not repair.during or any(d.split(" (")[0] == label for d in repair.during):
                    seen.append(repair)
        if self.on_repair is not None:
            self.on_repair(repair)
        return repair

    @contextmanager
    def window(self, label: str = "") -> Iterator[list[Repair]]:
        """The repairs made while the block runs suite runs labelled `label...` (a repair made
        while none of them ran counts too), a settled check at its end included."""
        seen: list[Repair] = []
        entry = (label, seen)
        with self._lock:
            self._windows.append(entry)
        try:
            yield seen
            if self.names:
                self.check(after=label)
        finally:
            with self._lock:
                self._windows.remove(entry)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.check(settled=False)

    def start(self) -> Watchdog:
        if self.names and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="docker-watchdog", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> list[Repair]:
        """Stop the thread and return every recorded repair, a round in progress included."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()  # a round is bounded: each docker call times out
            self._thread = None
        with self._round, self._lock:  # a round another thread runs ends first
            return list(self.repairs)

    def __enter__(self) -> Watchdog:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def uncredited(run: SuiteRun, baseline: SuiteRun, repairs: list[Repair]) -> SuiteRun:
    """The run with the tests that failed at baseline and passed after a repair counted as
    failing: the watchdog's repair is not a fix."""
    if not repairs:
        return run
    failed = {r.nodeid for r in baseline.failing()}
    note = (
        "passed only after the orchestrator's docker watchdog repaired a container during this "
        f"run ({'; '.join(r.describe() for r in repairs[:2])}): not counted as fixed"
    )
    results = [
        r.model_copy(update={"outcome": "failed", "message": note})
        if r.nodeid in failed and r.outcome in ("passed", "xpassed")
        else r
        for r in run.results
    ]
    return run.model_copy(update={"results": results})
