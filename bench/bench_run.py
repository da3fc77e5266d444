"""Benchmark `orchestrate run`: parallel agent lanes, and what the orchestration itself costs.

Run: .venv/bin/python bench/bench_run.py [--rounds 2] [--work-s 0.5] [--cpu]

The target is a generated repository with four independent failing categories (async event loop,
mock not called, unique conflict, UUID type), each in its own module and test file, so the planner
gives every category its own lane. Each test does `--work-s` seconds of work (a sleep, as I/O-bound
tests do; `--cpu` busy-loops instead, which two cores cap at a 2x speed-up). The fixes come from a
deterministic in-process specialist registered the way tests/test_run.py registers its doubles;
the real verifier judges them with real pytest runs.

(a) `--parallel 4` against `--parallel 1`, alternated, `--rounds` each, without isolation and
    integration: the agents phase (from PlanReady to the last AgentUpdate) from the event stream.
(b) one whole run with `--parallel 1` (isolation and integration on): total wall time against the
    time inside pytest subprocesses (`runner.run_suite`) and inside the specialist's `propose()`;
    the rest is the orchestration's overhead, broken down into git, checkpoints and the remainder.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from orchestrator import categories, git, specialists
from orchestrator.events import AgentUpdate, PlanReady
from orchestrator.git import run_git
from orchestrator.isolation import session as isolation
from orchestrator.models import Proposal, WorkOrder
from orchestrator.run import integrate, lanes, stages
from orchestrator.run.context import RunOptions, new_session
from orchestrator.run.session import run
from orchestrator.suite import runner
from orchestrator.verify import verdict

# category -> (module, the failing line, what the bench specialist replaces it with)
BUGS: dict[str, tuple[str, str]] = {
    "async_event_loop": ("loop", 'raise RuntimeError("Event loop is closed")'),
    "mock_not_called": (
        "mailer",
        "raise AssertionError(\"Expected 'send' to have been called once. Called 0 times.\")",
    ),
    "api_conflict": ("store", 'raise ValueError("UNIQUE constraint failed: items.name")'),
    "uuid_type": ("ids", 'raise ValueError("badly formed hexadecimal UUID string")'),
}
FIX = "return x  # fixed"
AGENT = "bench_fix"
FAILING_PER_CATEGORY = 2
PASSING_PER_CATEGORY = 1


def generate(root: Path, work_s: float, cpu: bool) -> Path:
    """A committed repository: one module and one test file per category, plus a work helper."""
    burn = (
        "    end = time.perf_counter() + seconds\n    while time.perf_counter() < end:\n        pass\n"
        if cpu
        else "    time.sleep(seconds)\n"
    )
    files = {
        "pyproject.toml": (
            f'[tool.orchestrator]\ntest-cmd = "{sys.executable} -m pytest"\n'
            'env = { PYTEST_DISABLE_PLUGIN_AUTOLOAD = "1" }\n'
        ),
        "app/__init__.py": "",
        "app/work.py": f"import time\n\n\ndef work(seconds={work_s}):\n{burn}",
        "tests/__init__.py": "",
    }
    for category, (module, bug) in BUGS.items():
        files[f"app/{module}.py"] = f"def compute(x):\n    {bug}\n\n\ndef ok(x):\n    return x\n"
        tests = [f"from app.{module} import compute, ok\nfrom app.work import work\n"]
        tests += [
            f"def test_{category}_{i}():\n    work()\n    assert compute({i}) == {i}\n"
            for i in range(FAILING_PER_CATEGORY)
        ]
        tests += [
            f"def test_{category}_ok_{i}():\n    work()\n    assert ok({i}) == {i}\n"
            for i in range(PASSING_PER_CATEGORY)
        ]
        files[f"tests/test_{module}.py"] = "\n\n".join(tests)
    root.mkdir(parents=True)
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    identity = ["-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "-A"],
        [*identity, "commit", "-qm", "bench"],
    ):
        run_git(root, *args)
    return root


class BenchFix:
    """Replaces the category's failing line with the fix; times its own `propose()` calls."""

    name = AGENT
    seconds = 0.0
    calls = 0
    _lock = threading.Lock()

    def __init__(self, **_kwargs) -> None:
        pass

    def propose(self, order: WorkOrder, worktree: Path, feedback: list[str]) -> Proposal:
        started = time.perf_counter()
        module, bug = BUGS[order.category]
        path = worktree / "app" / f"{module}.py"
        path.write_text(path.read_text(encoding="utf-8").replace(bug, FIX), encoding="utf-8")
        with BenchFix._lock:
            BenchFix.seconds += time.perf_counter() - started
            BenchFix.calls += 1
        return Proposal(explanation=f"{order.category}: replaced the failing line")


@contextmanager
def bench_agents() -> Iterator[None]:
    """Route the four categories to BenchFix (in-process, like tests/test_run.py's doubles)."""
    saved = dict(specialists.SPECIALISTS), dict(categories.by_id)
    specialists.SPECIALISTS[AGENT] = f"{__name__}:BenchFix"
    for category in BUGS:
        categories.by_id[category] = dataclasses.replace(
            categories.spec(category), specialist=AGENT
        )
    try:
        yield
    finally:
        specialists.SPECIALISTS.clear()
        specialists.SPECIALISTS.update(saved[0])
        categories.by_id.clear()
        categories.by_id.update(saved[1])


class Recorder:
    """The emitter: keeps every event but the per-test ones (thread-safe)."""

    def __init__(self) -> None:
        self.events: list = []
        self._lock = threading.Lock()

    def __call__(self, event) -> None:
        if event.kind in ("test_started", "test_finished"):
            return
        with self._lock:
            self.events.append(event)

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]


def one_run(
    root: Path, *, parallel: int, isolate: bool, integrate_: bool
) -> tuple[float, Recorder]:
    record = Recorder()
    options = RunOptions(
        repo=str(root),
        session=new_session(),
        parallel=parallel,
        isolation=isolate,
        integrate=integrate_,
        timeout_s=60,
        handoff_dir=str(root.parent / f"handoffs-{root.name}"),
    )
    started = time.perf_counter()
    report = run(options, record)
    wall = time.perf_counter() - started
    accepted = [a.category for a in report.agents if a.status == "accepted"]
    if sorted(accepted) != sorted(BUGS):
        raise SystemExit(f"bench run went wrong: accepted {accepted}, agents {report.agents}")
    return wall, record


def agents_phase(record: Recorder) -> float:
    """Wall time from the plan to the last agent verdict, from the event stream."""
    plan_at = record.of(PlanReady)[0].at
    return max(e.at for e in record.of(AgentUpdate)) - plan_at


# --- (b) instrumentation -------------------------------------------------------------------------


class Timers:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()

    def add(self, key: str, seconds: float) -> None:
        with self._lock:
            self.seconds[key] += seconds
            self.calls[key] += 1

    def timed(self, key_of: Callable[..., str], fn: Callable) -> Callable:
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(key_of(*args, **kwargs), time.perf_counter() - started)

        return wrapper


@contextmanager
def instrumented(timers: Timers) -> Iterator[None]:
    """Time every pytest run (collections apart), every git command and every checkpoint write."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    def suite_key(spec, _emit=None, label: str = "suite", *_args, **_kwargs) -> str:
        return "pytest collect" if spec.collect_only else f"pytest {label.split()[0]}"

    def git_key(_cwd, *args, **_k) -> str:
        words = list(args)
        while words[:1] == ["-c"]:  # `git -c commit.gpgsign=false commit ...`
            words = words[2:]
        return f"git {words[0]}" if words else "git"

    users = (runner, verdict, lanes, integrate, isolation, stages)
    patches = [(mod, "run_suite") for mod in users]
    patches += [(git, "run_git")]
    patches += [(SqliteSaver, "put"), (SqliteSaver, "put_writes")]
    saved = [(owner, name, getattr(owner, name)) for owner, name in patches]
    suite = timers.timed(suite_key, runner.run_suite)
    for owner, name, original in saved:
        if name == "run_suite":
            setattr(owner, name, suite)
        elif name == "run_git":
            setattr(owner, name, timers.timed(git_key, original))
        else:
            setattr(owner, name, timers.timed(lambda *_a, **_k: "checkpoint writes", original))
    try:
        yield
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


# --- main ------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="runs of each parallelism in (a)")
    parser.add_argument("--work-s", type=float, default=0.5, help="seconds of work per test")
    parser.add_argument("--cpu", action="store_true", help="tests busy-loop instead of sleeping")
    args = parser.parse_args()
    os.environ.pop("ANTHROPIC_API_KEY", None)  # the deterministic specialist only, no model

    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp, bench_agents():
        repos = (Path(tmp) / f"repo{i}" for i in range(1000))

        def fresh() -> Path:
            return generate(next(repos), args.work_s, args.cpu)

        one_run(fresh(), parallel=1, isolate=False, integrate_=False)  # warm-up: imports, caches
        by_parallel: dict[int, list[dict]] = {4: [], 1: []}
        for _ in range(args.rounds):
            for parallel in (4, 1):
                timers = Timers()
                with instrumented(timers):
                    wall, record = one_run(
                        fresh(), parallel=parallel, isolate=False, integrate_=False
                    )
                verify_busy = timers.seconds["pytest verify"] + timers.seconds["pytest collect"]
                by_parallel[parallel].append(
                    {"wall": agents_phase(record), "verify_busy": verify_busy, "run": wall}
                )

        timers = Timers()
        BenchFix.seconds, BenchFix.calls = 0.0, 0
        root = fresh()
        with instrumented(timers):
            total, _record = one_run(root, parallel=1, isolate=True, integrate_=True)

    work = "busy-loop" if args.cpu else "sleep"
    tests = len(BUGS) * (FAILING_PER_CATEGORY + PASSING_PER_CATEGORY)
    print(
        f"(a) 4 categories, {tests} tests of {args.work_s:g} s ({work}), {args.rounds} rounds, alternated"
    )
    print(f"{'':12} {'agents phase s':>16} {'in verify pytest s':>19} {'whole run s':>12}")
    for parallel, rows in by_parallel.items():
        walls = ", ".join(f"{r['wall']:.2f}" for r in rows)
        print(
            f"--parallel {parallel} {statistics.median(r['wall'] for r in rows):>16.2f}"
            f" {statistics.median(r['verify_busy'] for r in rows):>19.2f}"
            f" {statistics.median(r['run'] for r in rows):>12.2f}   (agents phase each: {walls})"
        )
    ratio = statistics.median(r["wall"] for r in by_parallel[1]) / statistics.median(
        r["wall"] for r in by_parallel[4]
    )
    print(f"agents phase speed-up, parallel 4 over 1: {ratio:.2f}x")
    print()

    runs = [k for k in timers.seconds if k.startswith("pytest") and k != "pytest collect"]
    pytest_s = sum(timers.seconds[k] for k in runs) + timers.seconds["pytest collect"]
    git_s = sum(s for k, s in timers.seconds.items() if k.startswith("git"))
    overhead = total - pytest_s - BenchFix.seconds
    print("(b) one run, --parallel 1, isolation and integration on")
    rows = [
        ("total wall", total, None),
        ("inside pytest", pytest_s, None),
        *((f"  {k}", timers.seconds[k], timers.calls[k]) for k in runs),
        (
            "  pytest collect",
            timers.seconds["pytest collect"],
            timers.calls["pytest collect"],
        ),
        ("inside propose()", BenchFix.seconds, BenchFix.calls),
        ("overhead", overhead, None),
        ("  of which git", git_s, sum(c for k, c in timers.calls.items() if k.startswith("git"))),
    ]
    top_git = sorted(
        ((k, s) for k, s in timers.seconds.items() if k.startswith("git")), key=lambda kv: -kv[1]
    )[:4]
    rows += [(f"    {k}", s, timers.calls[k]) for k, s in top_git]
    rows += [
        (
            "  of which checkpoints",
            timers.seconds["checkpoint writes"],
            timers.calls["checkpoint writes"],
        ),
        ("  the rest", overhead - git_s - timers.seconds["checkpoint writes"], None),
    ]
    print(f"{'':26} {'s':>8} {'% total':>8} {'calls':>6}")
    for label, seconds, calls in rows:
        print(
            f"{label:26} {seconds:>8.2f} {seconds / total:>8.1%} {calls if calls is not None else '':>6}"
        )
    print(f"overhead / total: {overhead / total:.1%}  (target < 5%)")


if __name__ == "__main__":
    main()
