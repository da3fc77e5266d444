"""Benchmark isolation on a generated suite: runs per victim against the bound, time against the baseline.

Run: .venv/bin/python bench/bench_isolation.py
Two suites of 1,300 fast tests in 40 files, 50 of them failing: one where 10 failures are victims
of 3 polluters at different depths, one where all 50 are plain failures. The plain suite runs
twice: with empty tests (the worst case for the ratio: pytest's start-up is most of the baseline)
and with ~20 ms of real work per test (the suites in the example handoffs average ~180 ms).
"""

from __future__ import annotations

import math
import sys
import tempfile
from pathlib import Path

from orchestrator.isolation import diagnose
from orchestrator.suite.config import run_spec
from orchestrator.suite.runner import run_suite

FILES = 40
PER_FILE = 32  # plus a few special tests: ~1,300 in all
POLLUTERS = {3: "POLLUTE_A", 15: "POLLUTE_B", 28: "POLLUTE_C"}  # file index -> variable it leaks
VICTIMS = {"POLLUTE_A": (5, 20, 33, 38), "POLLUTE_B": (16, 30, 39), "POLLUTE_C": (29, 34, 36)}


WORK = "def _work():\n    return sum(i * i for i in range(150_000))  # about 20 ms\n"


def generate(root: Path, polluted: bool, work: bool = False) -> None:
    """Write the suite: innocents everywhere, plain failures spread out, victims after polluters."""
    victims_in: dict[int, list[str]] = {}
    if polluted:
        for var, files in VICTIMS.items():
            for f in files:
                victims_in.setdefault(f, []).append(var)
    plain_total = 50 - sum(len(v) for v in victims_in.values())
    root.joinpath("tests").mkdir(parents=True)
    root.joinpath("pyproject.toml").write_text(
        f'[tool.orchestrator]\ntest-cmd = "{sys.executable} -m pytest"\n'
    )
    for f in range(FILES):
        lines = ["import os\n", WORK]
        for i in range(PER_FILE):
            call = "_work() >= 0 and " if work else ""
            lines.append(f"def test_ok_{i}():\n    assert {call}{i} >= 0\n")
        if polluted and f in POLLUTERS:
            lines.append(f"def test_polluter():\n    os.environ[{POLLUTERS[f]!r}] = '1'\n")
        for var in victims_in.get(f, []):
            lines.append(f"def test_victim_{var}():\n    assert {var!r} not in os.environ\n")
        for j in range(plain_total // FILES + (f < plain_total % FILES)):
            lines.append(f"def test_bug_{j}():\n    assert {j} == -1\n")
        root.joinpath(f"tests/test_m{f:02d}.py").write_text("\n\n".join(lines))


def measure(polluted: bool, work: bool = False) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-isolation-") as tmp:
        repo = Path(tmp)
        generate(repo, polluted, work)
        spec = run_spec(repo, record_leaks=True)
        spec.env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # our venv's plugins are not the target's
        baseline = run_suite(spec, label="baseline")
        result = diagnose(spec, baseline)
        order = [r.nodeid for r in baseline.results]
        rows = []
        for finding in result.findings:
            depth = order.index(finding.victim)
            bound = math.ceil(math.log2(depth)) + 2
            rows.append((finding.victim, depth, finding.runs, bound, finding.culprits))
        return {
            "tests": len(baseline.results),
            "failing": len(baseline.failing()),
            "baseline_s": baseline.duration_s,
            "isolation_s": result.duration_s,
            "runs": result.runs,
            "alone": sum(v == "passes_alone" for v in result.alone.values()),
            "rows": rows,
        }


def main() -> None:
    polluted, plain = measure(polluted=True), measure(polluted=False)
    worked = measure(polluted=False, work=True)
    print("victim                                         depth  runs  bound  polluter")
    for victim, depth, runs, bound, culprits in polluted["rows"]:
        mark = "ok" if runs <= bound else "OVER"
        print(f"{victim:46} {depth:5} {runs:5} {bound:6}  {', '.join(culprits)} {mark}")
    print()
    print(f"{'':28} {'with polluters':>16} {'plain failures':>16} {'plain, 20 ms/test':>17}")
    for key, label in (
        ("tests", "tests"),
        ("failing", "failing"),
        ("alone", "pass alone"),
        ("runs", "isolation pytest runs"),
        ("baseline_s", "baseline wall s"),
        ("isolation_s", "isolation wall s"),
    ):
        print(f"{label:28} {polluted[key]:>16} {plain[key]:>16} {worked[key]:>17}")
    r = [s["isolation_s"] / s["baseline_s"] for s in (polluted, plain, worked)]
    print(
        f"{'isolation / baseline':28} {r[0]:>15.2f}x {r[1]:>15.2f}x {r[2]:>16.2f}x"
        "  (target < 0.5x without order-dependence)"
    )


if __name__ == "__main__":
    main()
