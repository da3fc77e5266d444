"""Run the target's pytest suite and stream per-test results; survive hangs and crashes.

pytest runs in its own process group with our stream plugin loaded (`-p orchestrate_stream`).
We tail the plugin's JSON lines: when a test runs past its timeout we kill the whole group,
record that test as `timeout` and start pytest again on the tests that had not run yet. A crash
(segfault, `os._exit`) is recorded the same way as an `error`. No run ever needs a person.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.errors import Cancelled, NothingCollected, TargetError
from orchestrator.events import (
    Emit,
    Stop,
    SuiteFinished,
    SuiteStarted,
    TestFinished,
    TestStarted,
    ignore,
)
from orchestrator.models import Environment, Frame, Leak, RunSpec, SuiteRun, TestResult
from orchestrator.secrets import scrub, secret_values
from orchestrator.suite import sandbox
from orchestrator.suite.config import environ_for

PLUGIN_DIR = str(Path(__file__).resolve().parent / "plugin")
COLLECT_TIMEOUT_S = 600.0  # importing a big suite can be slow; a hang at import is still bounded
EXIT_GRACE_S = 30.0  # after the last result, how long session teardown may take
POLL_S = 0.02
ENV_KEYS = ("python", "packages", "modules")

# pytest exit codes
NO_TESTS_COLLECTED = 5
USAGE_ERROR = 4


def run_suite(
    spec: RunSpec, emit: Emit = ignore, label: str = "suite", stop: Stop | None = None
) -> SuiteRun:
    """Run the suite (or `spec.select`, in that order) and return every test's result.

    When `stop` is set the running pytest is killed at once and `Cancelled` is raised.
    """
    started = time.monotonic()
    run = SuiteRun(command=_argv(spec), cwd=spec.repo, shuffle_seed=spec.shuffle_seed)
    remaining = spec.select
    with tempfile.TemporaryDirectory(prefix="orchestrate-run-") as tmp:
        attempt = 0
        while True:
            chunk = _Chunk(Path(tmp), attempt)
            _run_chunk(spec, remaining, chunk, emit, label, stop, first=attempt == 0)
            if attempt == 0:
                _check_start(spec, chunk, remaining)
                selected = chunk.collected or []  # files in `select` stand for their tests now
                run.collected = (chunk.everything if spec.collect_all else None) or selected
                run.environment = chunk.environment
            run.results.extend(chunk.results)
            if chunk.finished:
                break
            done = {r.nodeid for r in run.results}
            remaining = [n for n in selected if n not in done]
            if not remaining:
                break
            attempt += 1
            run.restarts = attempt
    run.duration_s = round(time.monotonic() - started, 3)
    if not spec.collect_only:
        emit(SuiteFinished(label=label, counts=run.counts()))
    return run


def collect(spec: RunSpec, stop: Stop | None = None) -> list[str]:
    """The node ids the suite would run, in order (nothing is executed)."""
    return run_suite(spec.model_copy(update={"collect_only": True}), stop=stop).collected


@dataclass
class _Chunk:
    """One pytest process: what it collected, reported, and how it ended."""

    tmp: Path
    attempt: int
    collected: list[str] | None = None  # what it runs
    everything: list[str] | None = None  # what it collected before the selection (collect_all)
    results: list[TestResult] = field(default_factory=list)
    leaks: dict[str, list[str]] = field(default_factory=dict)
    finished: bool = False
    exit_code: int | None = None
    output_tail: str = ""
    environment: Environment | None = None

    @property
    def stream(self) -> Path:
        return self.tmp / f"stream-{self.attempt}.jsonl"

    @property
    def select_file(self) -> Path:
        return self.tmp / f"select-{self.attempt}.txt"

    @property
    def files_file(self) -> Path:
        return self.tmp / f"files-{self.attempt}.txt"

    @property
    def output(self) -> Path:
        return self.tmp / f"output-{self.attempt}.txt"


def _argv(spec: RunSpec, files: Sequence[str] = (), narrowed: bool = False) -> list[str]:
    """pytest's command line; `files` to collect (none: the suite's own paths)."""
    args = [
        *spec.command,
        "-p",
        "orchestrate_stream",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
    ]
    args += ["-q", "--continue-on-collection-errors", "-o", "console_output_style=classic"]
    args += [f"--ignore={p}" for p in spec.ignores]
    args += [f"--deselect={n}" for n in spec.deselect]
    if spec.collect_only:
        args.append("--collect-only")
    if narrowed:
        args += _top_directories(files)  # the plugin collects only `files` in them
    else:
        args += list(dict.fromkeys(_path_arg(spec, p) for p in files))
    return [*args, *spec.extra_args]


def _files_to_collect(spec: RunSpec, select: list[str]) -> list[str]:
    """The files a selection is collected from (the plugin then runs exactly `select`)."""
    paths = spec.collect_paths if spec.collect_all else [n.split("::")[0] for n in select]
    return list(dict.fromkeys(paths or ()))


def _narrowable(spec: RunSpec, files: list[str]) -> bool:
    """Whether the plugin can keep collection to `files` while pytest walks their directories.

    Named one by one on the command line, each file makes pytest list its whole package again
    (100 files of a 300-file package: 30,000 nodes, seconds). A file not on disk as written (a
    name with escaped bytes) keeps the plain way: each file, or its directory, as an argument.
    """
    return bool(files) and all(os.path.isfile(os.path.join(spec.repo, p)) for p in files)


def _top_directories(files: Sequence[str]) -> list[str]:
    """The directories holding `files`, none inside another."""
    tops: list[str] = []
    for directory in sorted({os.path.dirname(os.path.normpath(f)) or "." for f in files}, key=len):
        if not any(t == "." or directory.startswith(t + os.sep) for t in tops):
            tops.append(directory)
    return tops


def _path_arg(spec: RunSpec, path: str) -> str:
    """A node id's file as pytest's argument; a name with escaped bytes (not UTF-8 on disk)
    stands as its directory, and the plugin still runs exactly the selection."""
    if os.path.exists(os.path.join(spec.repo, path)):
        return path
    return os.path.dirname(path) or "."


def _run_chunk(
    spec: RunSpec,
    select: list[str] | None,
    chunk: _Chunk,
    emit: Emit,
    label: str,
    stop: Stop | None,
    first: bool,
) -> None:
    if stop is not None and stop.is_set():
        raise Cancelled("the run was stopped")
    env = environ_for(spec, PLUGIN_DIR)
    env["ORCHESTRATE_STREAM"] = str(chunk.stream)
    if select is not None:
        chunk.select_file.write_text(
            "\n".join(select) + "\n", encoding="utf-8", errors="surrogateescape"
        )
        env["ORCHESTRATE_SELECT"] = str(chunk.select_file)
    files = _files_to_collect(spec, select) if select is not None else []
    narrowed = _narrowable(spec, files)
    if narrowed:
        chunk.files_file.write_text(
            "\n".join(files) + "\n", encoding="utf-8", errors="surrogateescape"
        )
        env["ORCHESTRATE_FILES"] = str(chunk.files_file)
    if spec.shuffle_seed is not None:
        env["ORCHESTRATE_SHUFFLE"] = str(spec.shuffle_seed)
    if spec.order:
        order_file = chunk.tmp / "order.txt"
        order_file.write_text(
            "\n".join(spec.order) + "\n", encoding="utf-8", errors="surrogateescape"
        )
        env["ORCHESTRATE_ORDER"] = str(order_file)
    if spec.record_leaks:
        env["ORCHESTRATE_LEAKS"] = "1"
    if spec.collect_all:
        env["ORCHESTRATE_ALL"] = "1"
    if first and select is None:
        env["ORCHESTRATE_ENV"] = "1"  # whole-suite runs say what the interpreter has installed
    chunk.stream.touch()
    argv = _confined(spec, _argv(spec, files, narrowed), env, chunk.tmp)
    with open(chunk.output, "wb") as out:
        try:
            proc = subprocess.Popen(
                argv,
                cwd=spec.repo,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        except FileNotFoundError:
            raise TargetError(
                f"test command not found: {spec.command[0]!r}: install it or pass --test-cmd"
            ) from None
        try:
            _watch(proc, spec, chunk, emit, label, stop, first)
        finally:
            _kill_group(proc)
    chunk.output_tail = _tail(chunk.output)


def _confined(spec: RunSpec, argv: list[str], env: dict[str, str], tmp: Path) -> list[str]:
    """pytest inside the sandbox (`suite/sandbox.py`): the run's directory and our scratch
    writable; the checkout, the interpreter and our plugin readable; the network by policy."""
    if spec.sandbox == "off":
        return argv
    if sandbox.available() is None:
        if spec.sandbox == "required":
            raise TargetError(sandbox.MISSING + ": install it, or pass --sandbox off")
        return argv
    return sandbox.confined(
        argv,
        workdir=Path(spec.repo),
        env=env,
        writable=[tmp, *(Path(p) for p in spec.writable if os.path.exists(p))],
        network=spec.network,
        readable=_readable(spec, env),
    )


def _readable(spec: RunSpec, env: dict[str, str]) -> list[Path]:
    """What the run reads that may live where the sandbox hides (the home, /tmp): the checkout
    a worktree belongs to, the interpreter (a venv and the Python it links to), PYTHONPATH, and
    the tools on PATH the suite calls (a `docker` in `~/.local/bin`)."""
    paths = [Path(p) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    hidden = {"/tmp", os.path.abspath(env.get("HOME") or os.path.expanduser("~"))}
    tools = [p for p in env.get("PATH", "").split(os.pathsep) if os.path.isabs(p)]
    paths += [Path(p) for p in tools if os.path.abspath(p) not in hidden]  # never a whole home
    paths += _checkout_of(Path(spec.repo))
    executable = shutil.which(spec.command[0], path=env.get("PATH"))
    if executable:
        for exe in _links(Path(os.path.abspath(executable))):
            paths.append(exe.parent.parent if exe.parent.name in ("bin", "Scripts") else exe.parent)
    if spec.command[0] == "uv":
        paths += [Path(p) for p in (env.get("UV_PROJECT_ENVIRONMENT"),) if p]
        home = Path(env.get("HOME") or Path.home())
        paths += [home / ".local" / "share" / "uv", home / ".cache" / "uv"]
    return paths


def _links(exe: Path) -> list[Path]:
    """Every hop of a symlinked interpreter (a venv made from another venv's python): each
    hop's environment holds part of what it imports."""
    hops = [exe]
    while hops[-1].is_symlink() and len(hops) < 10:
        hops.append(Path(os.path.abspath(hops[-1].parent / os.readlink(hops[-1]))))
    return [*hops, Path(os.path.realpath(exe))]


def _checkout_of(directory: Path) -> list[Path]:
    """A worktree's `.git` file names its git directory inside the checkout: the checkout."""
    dot_git = directory / ".git"
    if not dot_git.is_file():
        return []
    text = dot_git.read_text(encoding="utf-8", errors="replace").strip()
    if not text.startswith("gitdir:"):
        return []
    gitdir = Path(text.removeprefix("gitdir:").strip())
    common = gitdir.parent.parent if gitdir.parent.name == "worktrees" else gitdir
    return [common.parent if common.name == ".git" else common]


def _watch(
    proc: subprocess.Popen,
    spec: RunSpec,
    chunk: _Chunk,
    emit: Emit,
    label: str,
    stop: Stop | None,
    first: bool,
) -> None:
    """Follow the stream until pytest exits; kill it when a test (or collection) hangs."""
    running: str | None = None
    since = time.monotonic()
    last_result = None
    secrets = secret_values()  # once per run: scrubbing every result must not re-read os.environ
    with open(chunk.stream, encoding="utf-8", errors="surrogateescape") as stream:
        while True:
            exited = proc.poll() is not None
            for line in _complete_lines(stream):
                event = json.loads(line)
                kind = event["e"]
                if kind == "all":
                    chunk.everything = event["ids"]
                elif kind == "collected":
                    chunk.collected = event["ids"]
                    if first and not spec.collect_only:
                        emit(SuiteStarted(label=label, total=len(event["ids"])))
                elif kind == "start":
                    running, since = event["id"], time.monotonic()
                    emit(TestStarted(label=label, nodeid=running))
                elif kind == "result":
                    result = _result(event, secrets)
                    chunk.results.append(result)
                    running, last_result = None, time.monotonic()
                    emit(
                        TestFinished(
                            label=label,
                            nodeid=result.nodeid,
                            outcome=result.outcome,
                            duration_s=result.duration_s,
                        )
                    )
                elif kind == "leaks":
                    _attach_leaks(chunk, event)
                elif kind == "env":
                    chunk.environment = Environment.model_validate({k: event[k] for k in ENV_KEYS})
                elif kind == "finish":
                    chunk.finished = True
            if exited:
                chunk.exit_code = proc.returncode
                break
            if stop is not None and stop.is_set():
                raise Cancelled("the run was stopped")  # the caller's finally kills pytest
            now = time.monotonic()
            if running is not None and now - since > spec.timeout_s:
                _kill_group(proc)
                chunk.results.append(
                    _stopped(
                        running,
                        "timeout",
                        f"test ran past the {spec.timeout_s:g} s timeout and was stopped",
                        spec.timeout_s,
                    )
                )
                emit(
                    TestFinished(
                        label=label, nodeid=running, outcome="timeout", duration_s=spec.timeout_s
                    )
                )
                return
            if chunk.collected is None and now - since > max(COLLECT_TIMEOUT_S, spec.timeout_s):
                _kill_group(proc)
                raise TargetError(
                    f"collection hung for {COLLECT_TIMEOUT_S:g} s in {spec.repo}: run the command by hand to see where it blocks"
                )
            if (
                running is None
                and last_result
                and now - last_result > EXIT_GRACE_S
                and _all_done(chunk)
            ):
                _kill_group(proc)  # session teardown hangs; every result is in
                chunk.finished = True
                return
            time.sleep(POLL_S)
    if not chunk.finished and running is not None:
        chunk.results.append(
            _stopped(
                running,
                "error",
                f"pytest crashed (exit code {proc.returncode}) while this test ran",
            )
        )
        emit(TestFinished(label=label, nodeid=running, outcome="error"))


def _complete_lines(stream) -> list[str]:
    """New whole lines of the stream; a half-written last line waits for the next poll."""
    lines = []
    while True:
        pos = stream.tell()
        line = stream.readline()
        if not line:
            break
        if not line.endswith("\n"):
            stream.seek(pos)
            break
        lines.append(line)
    return lines


def _all_done(chunk: _Chunk) -> bool:
    return chunk.collected is not None and len(chunk.results) >= len(chunk.collected)


def _result(event: dict, secrets: list[str]) -> TestResult:
    return TestResult(
        nodeid=event["id"],
        outcome=event["outcome"],
        duration_s=event.get("duration") or 0.0,
        when=event.get("when"),
        exc_type=event.get("exc_type"),
        message=scrub(event.get("message"), secrets),
        frames=[Frame(**f) for f in event.get("frames") or []],
        longrepr=scrub(event.get("longrepr"), secrets),
    )


def _attach_leaks(chunk: _Chunk, event: dict) -> None:
    for result in reversed(chunk.results):
        if result.nodeid == event["id"]:
            result.leaks = [_scrubbed(Leak.model_validate(leak)) for leak in event["leaks"]]
            return


def _scrubbed(leak: Leak) -> Leak:
    """A leaked environment value may be a secret: it never reaches a log or a handoff."""
    return leak.model_copy(update={"old": scrub(leak.old), "new": scrub(leak.new)})


def _stopped(nodeid: str, outcome: str, message: str, duration_s: float = 0.0) -> TestResult:
    return TestResult(
        nodeid=nodeid,
        duration_s=duration_s,
        outcome=outcome,
        when="call",
        message=message,
        exc_type="orchestrate.Timeout" if outcome == "timeout" else "orchestrate.Crash",
    )


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill pytest and everything it started (servers, subprocesses), also after pytest exited:
    a server a test started stays in pytest's process group when pytest itself is gone."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            pass
        except ProcessLookupError:
            proc.wait()
    with contextlib.suppress(ProcessLookupError):  # nothing of the group is left
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _tail(path: Path, lines: int = 15) -> str:
    text = path.read_text(encoding="utf-8", errors="replace")
    return "\n".join(text.strip().splitlines()[-lines:])


def _check_start(spec: RunSpec, chunk: _Chunk, select: list[str] | None) -> None:
    """Turn a pytest that could not start, or found nothing, into a one-line error."""
    if chunk.collected is not None:
        if not chunk.collected and select is None and not chunk.results and not spec.collect_only:
            raise NothingCollected(
                f"no tests collected in {spec.repo} with `{shlex.join(spec.command)}`: check the path, --ignore options and pytest's testpaths"
            )
        return
    tail = chunk.output_tail
    if "No module named pytest" in tail:
        raise TargetError(
            f"pytest is not importable by {spec.command[0]}: install it in that environment (e.g. `{spec.command[0]} -m pip install pytest`) or pass --test-cmd"
        )
    if chunk.exit_code == USAGE_ERROR:
        raise TargetError(
            f"pytest rejected the arguments: {_last_line(tail)}: fix --test-cmd/--ignore"
        )
    if chunk.exit_code == NO_TESTS_COLLECTED and select is None:
        raise NothingCollected(
            f"no tests collected in {spec.repo}: check the path, --ignore options and pytest's testpaths"
        )
    if not chunk.results:
        raise TargetError(
            f"the test command `{shlex.join(spec.command)}` failed before running any test (exit code {chunk.exit_code}): {_last_line(tail)}"
        )


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"
