"""What a run costs, in suite runs: triage, isolation, verification, integration, state, memory.

Run: .venv/bin/python bench/bench_cost.py [--tests 1300] [--work-ms 10] [--scale | --no-scale]

Generated, committed suites (sleep-based work, so two shared cores do not skew the ratios):

- `mixed`: --tests tests in files of 32, 50 failing in 6 categories (four known categories and
  two defects no rule knows), 3 polluters leaking environment variables into 10 victims.
- `shared`: the same size, its 50 failures all from one fixture line, all failing alone.
- `scale` (--scale): 10,000 tests without work, 1,000 failures in 40 categories, 3 polluters.

For each suite, side by side in one run: the bare suite (plain pytest, no orchestrate), `triage`
with isolation (in-process, as `orchestrate triage` runs it), and `run` (mixed and scale;
--parallel 1, offline: a deterministic in-process specialist per category, the real verifier and
integration). Printed: wall time as a ratio to the bare suite and to the two-run limit (a
baseline and a final run), pytest runs per phase, the peak RSS of the whole process tree, the
size of `.git/orchestrate/` and of the checkpoint database, and whether every polluter was named.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from orchestrator import categories, specialists
from orchestrator.events import ignore
from orchestrator.git import run_git
from orchestrator.isolation import diagnose
from orchestrator.isolation import session as isolation_session
from orchestrator.models import Proposal, WorkOrder
from orchestrator.run import integrate, lanes, stages
from orchestrator.run.context import RunOptions, new_session
from orchestrator.run.session import run
from orchestrator.suite import runner
from orchestrator.suite.config import run_spec
from orchestrator.triage import triage
from orchestrator.verify import verdict

PER_FILE = 32
AGENT = "bench_cost_fix"
# Known categories by their message; the rest are defects no rule knows (`unknown`, one plan item
# per signature).
KNOWN = [
    'raise RuntimeError("Event loop is closed")',
    "raise AssertionError(\"Expected 'send' to have been called once. Called 0 times.\")",
    'raise ValueError("UNIQUE constraint failed: items.name")',
    'raise ValueError("badly formed hexadecimal UUID string")',
]
POLLUTER_FILES = (0.08, 0.4, 0.7)  # where the polluters sit, as a fraction of the files
VICTIMS_PER_POLLUTER = (4, 3, 3)


@dataclasses.dataclass
class Suite:
    name: str
    tests: int
    failing: int
    categories: int
    polluters: int
    work_ms: float
    shared: bool = False


def bug_line(k: int) -> str:
    if k < len(KNOWN):
        return KNOWN[k]
    return f'raise LookupError("bench defect {k}: record {k} has no owner")'


def generate(root: Path, suite: Suite) -> dict[str, list[str]]:
    """Write and commit the suite; returns polluter -> its victims (node ids)."""
    files = max(1, suite.tests // PER_FILE)
    sleep = f"time.sleep({suite.work_ms / 1000})" if suite.work_ms else "pass"
    text: dict[str, str] = {
        "pyproject.toml": (
            f'[tool.orchestrator]\ntest-cmd = "{sys.executable} -m pytest"\n'
            'env = { PYTEST_DISABLE_PLUGIN_AUTOLOAD = "1" }\n'
        ),
        "app/__init__.py": "",
        "app/work.py": f"import time\n\n\ndef work():\n    {sleep}\n",
        "tests/__init__.py": "",
    }
    if suite.shared:
        text["tests/conftest.py"] = (
            "import pytest\n\n\n@pytest.fixture\ndef db():\n"
            '    raise RuntimeError("no such table: items (the schema was never created)")\n'
        )
    for k in range(suite.categories):
        text[f"app/bug{k}.py"] = (
            f"def compute(x):\n    {bug_line(k)}\n\n\ndef ok(x):\n    return x\n"
        )
    polluter_at = {int(f * files): i for i, f in enumerate(POLLUTER_FILES[: suite.polluters])}
    victims_at: dict[int, list[int]] = defaultdict(list)
    for p, (at, n) in enumerate(zip(polluter_at, VICTIMS_PER_POLLUTER, strict=False)):
        for j in range(n):
            victims_at[at + 1 + (j + 1) * (files - at - 2) // (n + 1)].append(p)
    plain = suite.failing - sum(len(v) for v in victims_at.values())
    pollution: dict[str, list[str]] = {}
    for f in range(files):
        k = f % suite.categories
        path = f"tests/test_f{f:04d}.py"
        lines = ["import os\n", "from app.work import work\n"]
        if not suite.shared:
            lines.append(f"from app.bug{k} import compute, ok\n")
        body = [f"def test_ok_{i}():\n    work()\n" for i in range(PER_FILE)]
        if f in polluter_at:
            p = polluter_at[f]
            body.append(f"def test_polluter():\n    os.environ['BENCH_POLLUTE_{p}'] = '1'\n")
            pollution[f"{path}::test_polluter"] = []
        for p in victims_at.get(f, []):
            body.append(
                f"def test_victim_{p}():\n    work()\n    assert 'BENCH_POLLUTE_{p}' not in os.environ\n"
            )
            polluter = next(t for t, i in polluter_at.items() if i == p)
            pollution[f"tests/test_f{polluter:04d}.py::test_polluter"].append(
                f"{path}::test_victim_{p}"
            )
        count = plain // files + (f < plain % files)
        for j in range(count):
            if suite.shared:
                body.append(f"def test_bug_{j}(db):\n    work()\n")
            else:
                body.append(f"def test_bug_{j}():\n    work()\n    assert compute({j}) == {j}\n")
        text[path] = "\n".join(lines) + "\n\n" + "\n\n".join(body)
    root.mkdir(parents=True)
    for rel, content in text.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
    identity = ["-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], [*identity, "commit", "-qm", "s"]):
        run_git(root, *args)
    return pollution


class BenchFix:
    """Fixes a category's module (the one its failing test files import); offline, in-process."""

    name = AGENT

    def __init__(self, **_kwargs) -> None:
        pass

    def propose(self, order: WorkOrder, worktree: Path, feedback: list[str]) -> Proposal:
        changed = []
        for test_file in sorted({t.split("::")[0] for t in order.tests}):
            source = (worktree / test_file).read_text(encoding="utf-8")
            found = re.search(r"from app\.(bug\d+) import", source)
            if not found:
                continue
            module = worktree / "app" / f"{found.group(1)}.py"
            text = module.read_text(encoding="utf-8")
            fixed = re.sub(r"    raise .*\n", "    return x\n", text, count=1)
            if fixed != text:
                module.write_text(fixed, encoding="utf-8")
                changed.append(module.name)
        if not changed:
            return Proposal(explanation="nothing of mine to fix", declined=True)
        return Proposal(explanation=f"{order.category}: fixed {', '.join(changed)}")


@contextmanager
def bench_agents() -> Iterator[None]:
    """Every category but test isolation goes to BenchFix (test isolation keeps its own)."""
    saved = dict(specialists.SPECIALISTS), dict(categories.by_id)
    specialists.SPECIALISTS[AGENT] = f"{__name__}:BenchFix"
    for category in categories.by_id:
        if category != "test_isolation":
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


# --- measuring -------------------------------------------------------------------------------------


class PeakRSS:
    """The peak resident memory of this process and all its descendants, sampled every 20 ms."""

    def __init__(self) -> None:
        self.peak = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._done.set()
        self._thread.join()

    def _sample(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        me = os.getpid()
        while not self._done.is_set():
            parents: dict[int, int] = {}
            rss: dict[int, int] = {}
            for entry in os.listdir("/proc"):
                if not entry.isdigit():
                    continue
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                    statm = Path(f"/proc/{entry}/statm").read_text()
                except OSError:
                    continue
                parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
                rss[int(entry)] = int(statm.split()[1]) * page
            tree, todo = {me}, [me]
            children: dict[int, list[int]] = defaultdict(list)
            for pid, ppid in parents.items():
                children[ppid].append(pid)
            while todo:
                for child in children.get(todo.pop(), ()):
                    tree.add(child)
                    todo.append(child)
            self.peak = max(self.peak, sum(rss.get(p, 0) for p in tree))
            self._done.wait(0.02)


class Runs:
    """Every pytest run, counted by phase (the label's first word; collections apart)."""

    def __init__(self) -> None:
        self.count: dict[str, int] = defaultdict(int)
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def counting(self) -> Iterator[None]:
        original = runner.run_suite

        def counted(spec, emit=None, label="suite", *args, **kwargs):
            phase = "collect" if spec.collect_only else label.split()[0]
            started = time.perf_counter()
            try:
                return original(spec, emit or ignore, label, *args, **kwargs)
            finally:
                self.count[phase] += 1
                self.seconds[phase] += time.perf_counter() - started

        users = (runner, verdict, lanes, integrate, isolation_session, stages)
        saved = [(m, m.run_suite) for m in users]
        for module, _ in saved:
            module.run_suite = counted  # type: ignore[attr-defined]
        try:
            yield
        finally:
            for module, fn in saved:
                module.run_suite = fn  # type: ignore[attr-defined]

    def describe(self) -> str:
        return ", ".join(
            f"{k} {v} ({self.seconds[k]:.0f} s)" for k, v in sorted(self.count.items())
        )

    @property
    def total(self) -> int:
        return sum(self.count.values())


def bare(repo: Path) -> float:
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=repo,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return time.perf_counter() - started


def triage_once(repo: Path) -> dict:
    """`orchestrate triage REPO` with isolation, in-process."""
    runs = Runs()
    with PeakRSS() as rss, runs.counting():
        started = time.perf_counter()
        spec = run_spec(repo, record_leaks=True)
        baseline = runner.run_suite(spec, label="baseline")
        result = diagnose(spec, baseline)
        report = triage(baseline, repo, spec.command_line(), isolation=result)
        wall = time.perf_counter() - started
    named = {(f.victim, c) for f in result.findings for c in f.culprits}
    return {
        "wall": wall,
        "runs": runs,
        "rss": rss.peak,
        "named": named,
        "categories": len(report.categories),
    }


def run_once(repo: Path) -> dict:
    runs = Runs()
    options = RunOptions(
        repo=str(repo),
        session=new_session(),
        parallel=1,
        timeout_s=120,
        handoff_dir=str(repo.parent / f"handoffs-{repo.name}"),
    )
    with PeakRSS() as rss, runs.counting():
        started = time.perf_counter()
        report = run(options)
        wall = time.perf_counter() - started
    state = repo / ".git" / "orchestrate"
    size = sum(p.stat().st_size for p in state.rglob("*") if p.is_file())
    checkpoints = sum(p.stat().st_size for p in state.glob("checkpoints.sqlite*"))
    accepted = sum(a.status == "accepted" for a in report.agents)
    merged = sum(bool(a.merged) for a in report.agents)
    return {
        "wall": wall,
        "runs": runs,
        "rss": rss.peak,
        "state": size,
        "checkpoints": checkpoints,
        "agents": f"{accepted}/{len(report.agents)} accepted, {merged} merged",
        "after": report.after.model_dump() if report.after else None,
    }


def measure(suite: Suite, tmp: Path, with_run: bool) -> dict:
    repo = tmp / suite.name
    pollution = generate(repo, suite)
    bares = [bare(repo)]
    tri = triage_once(repo)
    bares.append(bare(repo))
    out: dict = {"suite": suite, "triage": tri, "pollution": pollution}
    if with_run:
        out["run"] = run_once(repo)
        bares.append(bare(repo))
    out["bare"] = sorted(bares)[len(bares) // 2]
    expected = {(v, p) for p, vs in pollution.items() for v in vs}
    out["recall"] = (len(expected & tri["named"]), len(expected))
    return out


def mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def report(results: list[dict]) -> None:
    names = [r["suite"].name for r in results]
    width = 30
    rows: list[tuple[str, list[str]]] = []

    def row(label: str, values: list[str]) -> None:
        rows.append((label, values))

    row("tests", [str(r["suite"].tests) for r in results])
    row(
        "failing / categories / polluters",
        [
            f"{r['suite'].failing} / {r['suite'].categories} / {r['suite'].polluters}"
            for r in results
        ],
    )
    row("bare suite s", [f"{r['bare']:.1f}" for r in results])
    row("triage (isolation) s", [f"{r['triage']['wall']:.1f}" for r in results])
    row("triage / bare", [f"{r['triage']['wall'] / r['bare']:.2f}x" for r in results])
    row("triage pytest runs", [str(r["triage"]["runs"].total) for r in results])
    row("  by phase", [r["triage"]["runs"].describe() for r in results])
    row("triage peak RSS (tree)", [mib(r["triage"]["rss"]) for r in results])
    row("polluters named", [f"{r['recall'][0]} of {r['recall'][1]}" for r in results])
    for key, label in (
        ("wall", "run s"),
        ("ratio", "run / bare"),
        ("limit", "run / two-run limit"),
        ("runs", "run pytest runs"),
        ("phases", "  by phase"),
        ("rss", "run peak RSS (tree)"),
        ("state", ".git/orchestrate/"),
        ("checkpoints", "  checkpoint database"),
        ("agents", "agents"),
    ):
        values = []
        for r in results:
            x = r.get("run")
            if x is None:
                values.append("-")
            elif key == "ratio":
                values.append(f"{x['wall'] / r['bare']:.2f}x")
            elif key == "limit":
                values.append(f"{x['wall'] / (2 * r['bare']):.2f}x")
            elif key == "wall":
                values.append(f"{x['wall']:.1f}")
            elif key == "runs":
                values.append(str(x["runs"].total))
            elif key == "phases":
                values.append(x["runs"].describe())
            elif key in ("rss", "state", "checkpoints"):
                values.append(mib(x[key]))
            else:
                values.append(str(x[key]))
        row(label, values)
    print(f"{'':{width}} " + " ".join(f"{n:>18}" for n in names))
    for label, values in rows:
        if label.strip() == "by phase":
            for name, value in zip(names, values, strict=True):
                print(f"{label:{width}} {name}: {value}")
        else:
            print(f"{label:{width}} " + " ".join(f"{v:>18}" for v in values))
    print("targets: run / two-run limit <= 1.5x; triage / bare <= 1.5x on `shared`")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=1300)
    parser.add_argument("--work-ms", type=float, default=10.0, help="sleep per test")
    parser.add_argument("--scale", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--only", help="run only these suites (comma-separated)")
    parser.add_argument(
        "--scale-run", action=argparse.BooleanOptionalAction, default=True, help="`run` at scale"
    )
    args = parser.parse_args()
    os.environ.pop("ANTHROPIC_API_KEY", None)  # offline specialists only
    suites = [
        Suite("mixed", args.tests, 50, 6, 3, args.work_ms),
        Suite("shared", args.tests, 50, 1, 0, args.work_ms, shared=True),
    ]
    if args.scale:
        suites.append(Suite("scale", 10_000, 1000, 40, 3, 0.0))
    if args.only:
        suites = [s for s in suites if s.name in args.only.split(",")]
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-cost-") as tmp, bench_agents():
        for suite in suites:
            started = time.perf_counter()
            with_run = not suite.shared and (suite.name != "scale" or args.scale_run)
            results.append(measure(suite, Path(tmp), with_run=with_run))
            print(f"[{suite.name}: {time.perf_counter() - started:.0f} s]", file=sys.stderr)
            report(results[-1:])  # each suite as soon as it is measured
            sys.stdout.flush()
    print()
    report(results)


if __name__ == "__main__":
    main()
