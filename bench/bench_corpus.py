"""The offline specialists on the corpus of real-world shapes: the fix rate per category and per
shape, offline (no ANTHROPIC_API_KEY).

Run: .venv/bin/python bench/bench_corpus.py [-k SUBSTRING] [--against REV] [--keep]

Every shape of `tests/corpus` (FastAPI, Flask, Django, plain SQLAlchemy; pytest functions,
unittest classes, module- and session-scoped fixtures, factories, constants, helpers) is built as
its own git repository and run through `orchestrate run --agents <its specialist>` as a user
would. A shape counts as fixed when its failing tests pass on the integration branch and the
patch is exactly the expected code; otherwise the row says what the specialist answered.
`--against REV` runs every shape with the specialists of another commit too (its tree exported
with `git archive`), side by side in the same run: e.g. `--against main`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import redirect_stderr, redirect_stdout
from io import StringIO
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.corpus, tests.helpers

from orchestrator.cli import main  # noqa: E402
from tests.corpus import Shape, all_shapes  # noqa: E402
from tests.helpers.fake_docker import fake_docker  # noqa: E402

# Another commit's orchestrator, in its own process: its tree first on sys.path, and the editable
# install's import hook (this worktree) out of the way.
OTHER = """
import sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in getattr(f, "__module__", "")]
sys.path.insert(0, sys.argv[1])
from orchestrator.cli import main
sys.exit(main(sys.argv[2:]))
"""


def orchestrate(argv: list[str], tree: Path | None, env: dict[str, str]) -> tuple[int, str, str]:
    """`orchestrate ARGV` with this worktree's code (in-process) or the code in `tree`."""
    if tree is not None:
        proc = subprocess.run([sys.executable, "-c", OTHER, str(tree), *argv],
                              capture_output=True, text=True, env=env)  # fmt: skip
        return proc.returncode, proc.stdout, proc.stderr
    out, err = StringIO(), StringIO()
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = main(argv)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return code, out.getvalue(), err.getvalue()


def run_shape(shape: Shape, root: Path, tree: Path | None = None) -> dict:
    """Build the shape, run `orchestrate run` on it (this code, or `tree`'s), judge the result."""
    root.mkdir(parents=True)
    env = dict(os.environ)
    if shape.docker:
        fake_docker(root, shape.docker)
        env["PATH"] = f"{root / 'bin'}{os.pathsep}{env['PATH']}"
    repo = shape.build(root / "repo")
    argv = ["run", str(repo), "--no-tui", "--json", "--timeout", "20", "--max-attempts", "1",
            "--handoff-dir", str(root / "handoffs"), "--agents", shape.specialist,
            *([] if shape.isolation else ["--no-isolation"])]  # fmt: skip
    started = time.perf_counter()
    code, out, err = orchestrate(argv, tree, env)
    elapsed = time.perf_counter() - started
    if code != 0:
        last = (err.strip().splitlines() or [""])[-1]
        return {"fixed": 0, "status": f"run failed ({code})", "exact": False, "s": elapsed,
                "reason": last}  # fmt: skip
    report = json.loads(out)
    result = next((a for a in report["agents"] if a["category"] == shape.category), None)
    if result is None:
        return {"fixed": 0, "status": "not planned", "exact": False, "s": elapsed, "reason": ""}
    exact = result["merged"] if "merged" in result else result["status"] == "accepted"
    branch = report["integration_branch"]
    for rel in shape.fixed:
        shown = subprocess.run(["git", "-C", str(repo), "show", f"{branch}:{rel}"],
                               capture_output=True, text=True)  # fmt: skip
        exact = exact and shown.returncode == 0 and shown.stdout == shape.expected(rel)
    return {
        "fixed": len(result["fixed"]) if result["status"] == "accepted" else 0,
        "status": result["status"],
        "exact": exact and sorted(result["files_changed"]) == sorted(shape.fixed),
        "s": elapsed,
        "reason": result["reason"] or "",
    }


def main_bench() -> None:
    os.environ.pop("ANTHROPIC_API_KEY", None)  # offline: only the deterministic specialists
    os.environ.setdefault("GIT_AUTHOR_NAME", "bench")
    os.environ.setdefault("GIT_AUTHOR_EMAIL", "bench@localhost")
    os.environ.setdefault("GIT_COMMITTER_NAME", "bench")
    os.environ.setdefault("GIT_COMMITTER_EMAIL", "bench@localhost")
    keep = "--keep" in sys.argv
    pick = sys.argv[sys.argv.index("-k") + 1] if "-k" in sys.argv else ""
    against = sys.argv[sys.argv.index("--against") + 1] if "--against" in sys.argv else None
    shapes = [s for s in all_shapes() if pick in s.id]
    scratch = Path(tempfile.mkdtemp(prefix="bench-corpus-"))
    runs: dict[str, list[tuple[Shape, dict]]] = {"this": []}
    try:
        tree = None
        if against:
            tree = scratch / "against"
            tree.mkdir()
            archive = subprocess.run(["git", "archive", against], capture_output=True, check=True)
            subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
            runs[against] = []
        for index, shape in enumerate(shapes):
            runs["this"].append((shape, run_shape(shape, scratch / f"shape{index}")))
            if tree is not None and against:
                runs[against].append((shape, run_shape(shape, scratch / f"other{index}", tree)))
    finally:
        if not keep:
            shutil.rmtree(scratch, ignore_errors=True)
    for label, rows in runs.items():
        report(label, rows)
    if keep:
        print(f"repositories kept under {scratch}")


def report(label: str, rows: list[tuple[Shape, dict]]) -> None:
    print(f"== {label}")
    print(f"{'category':<18} {'shape':<52} {'fixed':>7} {'exact':>5} {'s':>5}  status")
    by_category: dict[str, list[tuple[int, int, bool]]] = defaultdict(list)
    for shape, row in rows:
        print(
            f"{shape.category:<18} {shape.name:<52} {row['fixed']:>3}/{shape.failing:<3} "
            f"{'yes' if row['exact'] else 'no':>5} {row['s']:>5.1f}  {row['status']}"
            + (f": {row['reason']}" if row["status"] != "accepted" and row["reason"] else "")
        )
        by_category[shape.category].append((row["fixed"], shape.failing, row["exact"]))
    print()
    print(f"{'category':<18} {'shapes fixed':>12} {'tests fixed':>12}")
    for category, results in sorted(by_category.items()):
        shapes_ok = sum(1 for fixed, failing, exact in results if fixed == failing and exact)
        tests = sum(f for f, _, _ in results), sum(n for _, n, _ in results)
        print(f"{category:<18} {shapes_ok:>6}/{len(results):<5} {tests[0]:>6}/{tests[1]:<5}")
    fixed = sum(r["fixed"] for _, r in rows)
    failing = sum(s.failing for s, _ in rows)
    exact = sum(1 for s, r in rows if r["exact"] and r["fixed"] == s.failing)
    total = sum(r["s"] for _, r in rows)
    print()
    print(f"shapes fixed exactly: {exact}/{len(rows)} ({exact / max(len(rows), 1):.0%})")
    print(f"failing tests fixed:  {fixed}/{failing} ({fixed / max(failing, 1):.0%})")
    print(f"time: {total:.1f} s for {len(rows)} runs of orchestrate run")
    print()


if __name__ == "__main__":
    main_bench()
