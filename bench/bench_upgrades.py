"""Fix rate per upgrade kind: real repos broken by one real dependency bump, run offline.

Each kind's repo (the ones tests/agents/test_upgrades_e2e.py builds) goes through
`orchestrate run --no-tui --json`; the table shows the failing tests before, those fixed and
merged, and those left. Run: .venv/bin/python bench/bench_upgrades.py
"""

from __future__ import annotations

import io
import json
import sys
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orchestrator.cli import main  # noqa: E402
from tests.agents import test_upgrades_e2e as e2e  # noqa: E402


def kinds(tmp: Path) -> list[tuple[str, Path]]:
    py = sys.executable
    venv, error = e2e.make_numpy2_venv(tmp / "numpy2")
    built = [
        ("pytest 7 -> 8 (nose setup, warns(None))", e2e.bumped_repo(tmp / "p8", {**e2e.PYTEST8, "pyproject.toml": e2e.pyproject()}, {"pytest": ("7.4.4", e2e.PYTEST)})),
        ("SQLAlchemy 1.4 -> 2", e2e.bumped_repo(tmp / "sa", {**e2e.SQLA, "pyproject.toml": e2e.pyproject()}, {"SQLAlchemy": ("1.4.54", e2e.SQLALCHEMY)})),
        ("pydantic 1 -> 2", e2e.bumped_repo(tmp / "pd", {**e2e.PYDANTIC_FILES, "pyproject.toml": e2e.pyproject(ini='pythonpath = ["."]\n')}, {"pydantic": ("1.10.21", e2e.PYDANTIC)})),
        ("pytest-asyncio 0.21 -> 1 (event_loop)", e2e.bumped_repo(tmp / "pa", {**e2e.ASYNC_FILES, "pyproject.toml": e2e.pyproject(f"{py} -m pytest -p pytest_asyncio.plugin", 'asyncio_mode = "auto"\n')}, {"pytest-asyncio": ("0.21.2", e2e.PYTEST_ASYNCIO)})),
    ]  # fmt: skip
    if not error:
        repo = e2e.bumped_repo(tmp / "np", {**e2e.NUMPY_FILES, "pyproject.toml": e2e.pyproject(".venv/bin/python -m pytest", 'pythonpath = ["."]\n')}, {"numpy": ("1.26.4", e2e.NUMPY_NEW)})  # fmt: skip
        (repo / ".venv").symlink_to(venv)
        built.append(("numpy 1 -> 2", repo))
    return built


def run(repo: Path, handoffs: Path) -> dict:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(
            [
                "run",
                str(repo),
                "--no-tui",
                "--json",
                "--no-isolation",
                "--handoff-dir",
                str(handoffs),
            ]
        )
    assert code == 0, err.getvalue()[-2000:]
    return json.loads(out.getvalue())


def main_() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'upgrade':<42} {'failing':>7} {'fixed':>6} {'left':>5}  agents")
        for name, repo in kinds(Path(tmp)):
            report = run(repo, Path(tmp) / "handoffs")
            before = report["before"]["failed"] + report["before"]["errors"]
            left = report["after"]["failed"] + report["after"]["errors"]
            fixed = sum(len(a["fixed"]) for a in report["agents"] if a["status"] == "accepted")
            agents = ", ".join(f"{a['agent']}:{a['status']}" for a in report["agents"])
            print(f"{name:<42} {before:>7} {fixed:>6} {left:>5}  {agents}")


if __name__ == "__main__":
    main_()
