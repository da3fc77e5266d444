"""The runner's overhead: bare pytest vs `orchestrate triage --no-isolation --json` on 1,200 tests.

A real suite (40 files x 30 tests, each doing ~1-3 ms of work, a few failing) is written to a
temporary git repository; both commands run alternately, ROUNDS times each, same interpreter,
PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 for both. Medians are compared (target: at most 1.05x).

Run: .venv/bin/python bench/bench_runner.py [--rounds N] [--files N] [--tests N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 1.05
ORCHESTRATE = [sys.executable, "-m", "orchestrator.cli"]
PLUGIN_DIR = str(Path(__file__).resolve().parent.parent / "orchestrator" / "suite" / "plugin")

TEST_FILE = """\
import hashlib
import json

import pytest

from app.work import checksum, crunch


def _work(seed):
    data = [(seed * 7919 + i) % 1009 for i in range(12000)]
    data.sort()
    blob = json.dumps(data).encode()
    for _ in range(24):
        blob = hashlib.sha256(blob).digest() + blob[:2000]
    return crunch(data), checksum(blob)


@pytest.mark.parametrize("seed", range({n}))
def test_work(seed):
    total, digest = _work(seed + {offset})
    assert total >= 0 and len(digest) == 64
    {failure}
"""

WORK = """\
import hashlib


def crunch(data):
    return sum(x * x for x in data[:2000]) % 65521


def checksum(blob):
    return hashlib.sha256(blob).hexdigest()
"""


def build_suite(root: Path, files: int, tests: int) -> Path:
    repo = root / "suite"
    (repo / "tests").mkdir(parents=True)
    (repo / "app").mkdir()
    (repo / "app" / "__init__.py").write_text("")
    (repo / "app" / "work.py").write_text(WORK)
    (repo / "pyproject.toml").write_text(
        f'[tool.orchestrator]\ntest-cmd = "{sys.executable} -m pytest"\n'
        'env = { PYTEST_DISABLE_PLUGIN_AUTOLOAD = "1" }\n'
        '[tool.pytest.ini_options]\npythonpath = ["."]\n'
    )
    for i in range(files):
        # every 10th file has one failing parameter: a few real failures in the report
        failure = "assert seed != 3, 'seed 3 is cursed'" if i % 10 == 0 else ""
        (repo / "tests" / f"test_mod{i:02d}.py").write_text(
            TEST_FILE.format(n=tests, offset=i * tests, failure=failure)
        )
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.com",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.com",
    }
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "suite"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True, env=env)
    return repo


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """Wall time, CPU time (the process and every child it waited for) and stdout."""
    cpu, started = _cpu(), time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed, cpu = time.perf_counter() - started, _cpu() - cpu
    if proc.returncode not in (0, 1):
        sys.exit(f"{argv[:4]} failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr}")
    return elapsed, cpu, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--tests", type=int, default=30, help="tests per file")
    args = parser.parse_args()
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    env.pop("PYTEST_ADDOPTS", None)
    # orchestrate runs its pytest with PYTHONDONTWRITEBYTECODE=1 (no .pyc in the user's checkout),
    # so bare pytest gets it too; orchestrate's own imports keep their bytecode cache.
    bare_env = {**env, "PYTHONDONTWRITEBYTECODE": "1"}
    with tempfile.TemporaryDirectory(prefix="bench-runner-") as tmp:
        repo = build_suite(Path(tmp), args.files, args.tests)
        bare = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        # (c) attributes the difference: pytest with our plugin streaming, no orchestrate
        plugin_env = {
            **bare_env,
            "PYTHONPATH": PLUGIN_DIR,
            "ORCHESTRATE_STREAM": f"{tmp}/s.jsonl",
        }
        variants = {
            "pytest": (bare, bare_env),
            "orchestrate": ([*ORCHESTRATE, "triage", str(repo), "--no-isolation", "--json"], env),
            "pytest+plugin": ([*bare, "-p", "orchestrate_stream"], plugin_env),
        }
        timed(bare, repo, bare_env)  # warm the page cache
        timed(variants["orchestrate"][0], repo, env)
        wall: dict[str, list[float]] = {name: [] for name in variants}
        cpu: dict[str, list[float]] = {name: [] for name in variants}
        report = None
        for r in range(args.rounds):
            names = list(variants)
            names = names[r % 3 :] + names[: r % 3]  # rotate who goes first
            for name in names:
                argv, run_env = variants[name]
                elapsed, used, out = timed(argv, repo, run_env)
                wall[name].append(elapsed)
                cpu[name].append(used)
                if name == "orchestrate":
                    report = json.loads(out)
                if name == "pytest+plugin" and not Path(f"{tmp}/s.jsonl").exists():
                    sys.exit(f"the plugin did not load from {PLUGIN_DIR}: nothing was streamed")
                Path(f"{tmp}/s.jsonl").unlink(missing_ok=True)
        assert report is not None
        b = report["baseline"]
        print(f"suite: {b['total']} tests in {args.files} files, {b['failed']} failing")
        print(f"{'':14} {'wall median':>11} {'wall min':>9} {'cpu median':>11}   wall runs")
        for name in variants:
            runs = ", ".join(f"{t:.2f}" for t in wall[name])
            print(
                f"{name:14} {statistics.median(wall[name]):9.2f} s {min(wall[name]):7.2f} s "
                f"{statistics.median(cpu[name]):9.2f} s   ({runs})"
            )
        base = {
            "wall": statistics.median(wall["pytest"]),
            "min": min(wall["pytest"]),
            "cpu": statistics.median(cpu["pytest"]),
        }
        for name in ("orchestrate", "pytest+plugin"):
            ratio = statistics.median(wall[name]) / base["wall"]
            best = min(wall[name]) / base["min"]
            cpu_ratio = statistics.median(cpu[name]) / base["cpu"]
            verdict = "ok" if ratio <= TARGET else "OVER TARGET"
            print(
                f"{name:14} wall {ratio:.3f}x (min {best:.3f}x), cpu {cpu_ratio:.3f}x of bare "
                f"pytest (target <= {TARGET}x wall median): {verdict}"
            )


if __name__ == "__main__":
    main()
