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
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 1.05
ORCHESTRATE = [sys.executable, "-m", "orchestrator.cli"]

TEST_FILE = '''\
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
'''

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


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        sys.exit(f"{argv[:4]} failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr}")
    return elapsed, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--tests", type=int, default=30, help="tests per file")
    args = parser.parse_args()
    env = {
        **os.environ,
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.pop("PYTEST_ADDOPTS", None)
    with tempfile.TemporaryDirectory(prefix="bench-runner-") as tmp:
        repo = build_suite(Path(tmp), args.files, args.tests)
        bare = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        ours = [*ORCHESTRATE, "triage", str(repo), "--no-isolation", "--json"]
        timed(bare, repo, env)  # warm the page cache and compile nothing (no bytecode)
        times: dict[str, list[float]] = {"pytest": [], "orchestrate": []}
        report = None
        for r in range(args.rounds):
            order = [("pytest", bare), ("orchestrate", ours)]
            if r % 2:
                order.reverse()  # alternate who goes first
            for name, argv in order:
                elapsed, out = timed(argv, repo, env)
                times[name].append(elapsed)
                if name == "orchestrate":
                    report = json.loads(out)
        assert report is not None
        total = report["baseline"]["total"]
        failed = report["baseline"]["failed"]
        bare_s = statistics.median(times["pytest"])
        ours_s = statistics.median(times["orchestrate"])
        ratio = ours_s / bare_s
        print(f"suite: {total} tests in {args.files} files, {failed} failing")
        for name in ("pytest", "orchestrate"):
            runs = ", ".join(f"{t:.2f}" for t in times[name])
            print(f"{name:12} median {statistics.median(times[name]):6.2f} s  ({runs})")
        verdict = "ok" if ratio <= TARGET else "OVER TARGET"
        print(f"ratio        {ratio:.3f}x (target <= {TARGET}x): {verdict}")


if __name__ == "__main__":
    main()
