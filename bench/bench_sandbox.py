"""The sandbox's overhead per pytest run: the same small suite through `run_suite`, confined
(bubblewrap) and unconfined (`sandbox="off"`), alternating, ROUNDS times each; medians compared.

Run: .venv/bin/python bench/bench_sandbox.py [--rounds N] [--tests N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orchestrator.models import RunSpec  # noqa: E402
from orchestrator.suite import sandbox  # noqa: E402
from orchestrator.suite.runner import run_suite  # noqa: E402


def build(root: Path, tests: int) -> None:
    (root / "tests").mkdir(parents=True)
    body = "".join(
        f"\n\ndef test_{i}():\n    assert sum(range({i} + 10)) > 0\n" for i in range(tests)
    )
    (root / "tests" / "test_many.py").write_text(body)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"]):
        subprocess.run(["git", *args], cwd=root, check=True)
    subprocess.run(
        ["git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "i"],
        cwd=root,
        check=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--tests", type=int, default=50)
    args = parser.parse_args()
    kind = sandbox.available()
    if kind is None:
        print("no sandbox on this machine (install bubblewrap): nothing to compare")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        build(root, args.tests)
        times: dict[str, list[float]] = {"off": [], "auto": []}
        for _ in range(args.rounds):
            for mode in ("off", "auto"):
                spec = RunSpec(
                    repo=str(root),
                    command=[sys.executable, "-m", "pytest"],
                    env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
                    sandbox=mode,
                )
                began = time.perf_counter()
                run = run_suite(spec)
                times[mode].append(time.perf_counter() - began)
                assert len(run.results) == args.tests
    off, on = statistics.median(times["off"]), statistics.median(times["auto"])
    print(f"{args.tests} tests, {args.rounds} rounds each, alternating; sandbox: {kind}")
    print(f"unsandboxed median  {off * 1000:8.1f} ms")
    print(f"sandboxed median    {on * 1000:8.1f} ms")
    print(f"overhead per run    {(on - off) * 1000:8.1f} ms  ratio {on / off:.3f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
