"""The ecosystem's own migration tools, run from orchestrate's environment on a worktree.

ruff (a dependency of orchestrate) brings NPY201, numpy 2's migration rule; bump-pydantic and
django-upgrade come with the `upgrade` extra. They are looked up next to our interpreter, then
on PATH, and never installed into the user's environment. They only rewrite files: nothing they
touch is imported or run.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from orchestrator.agents.codemod import python_files, relative

TOOL_TIMEOUT_S = 300
INSTALL_HINT = (
    "install it where orchestrate runs (`pip install 'orchestrate[upgrade]'`) or put it on PATH"
)


class ToolMissing(LookupError):
    """A migration tool is not installed; the message says how to get it."""


@dataclass
class ToolRun:
    """What one tool did: the files it changed (repo-relative) and its last words."""

    changed: list[str]
    output: str


def tool_path(name: str) -> str:
    """The tool next to orchestrate's interpreter, else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise ToolMissing(f"{name} is not installed: {INSTALL_HINT}")
    return found


def run_tool(worktree: Path, argv: list[str], files: list[str] | None = None) -> ToolRun:
    """Run a tool in the worktree; the files whose content changed are its work.

    Its environment holds no secrets (no API keys reach a tool), and no cache is left behind.
    """
    root = Path(worktree).resolve()
    watched = [root / f for f in files] if files is not None else list(python_files(root))
    before = {path: _digest(path) for path in watched}
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
    env.update(NO_COLOR="1", PYTHONDONTWRITEBYTECODE="1", RUFF_NO_CACHE="true")
    proc = subprocess.run(
        argv,
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    changed = [relative(root, p) for p, digest in before.items() if _digest(p) != digest]
    output = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-5:])
    return ToolRun(changed=changed, output=output)


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def ruff_fix(worktree: Path, files: list[str], rules: str) -> ToolRun:
    """`ruff check --select RULES --fix` on the files, ignoring the project's ruff settings."""
    ruff = tool_path("ruff")
    argv = [ruff, "check", "--isolated", "--no-cache", "--select", rules, "--fix", "--exit-zero"]
    return run_tool(worktree, [*argv, *files], files)


def bump_pydantic(worktree: Path, packages: list[str]) -> ToolRun:
    """bump-pydantic on each package directory; its log goes outside the worktree."""
    tool = tool_path("bump-pydantic")
    changed: list[str] = []
    output = ""
    with tempfile.TemporaryDirectory(prefix="orchestrate-bump-") as tmp:
        for package in packages:
            run = run_tool(worktree, [tool, "--log-file", str(Path(tmp) / "log.txt"), package])
            changed += [f for f in run.changed if f not in changed]
            output = run.output
    return ToolRun(changed=changed, output=output)


def django_upgrade(worktree: Path, files: list[str], version: str | None) -> ToolRun:
    """django-upgrade for the installed Django (major.minor), else its own guess."""
    tool = tool_path("django-upgrade")
    target = ".".join((version or "").split(".")[:2]) or "auto"
    argv = [tool, "--target-version", target, "--exit-zero-even-if-changed"]
    run = run_tool(worktree, [*argv, *files], files)
    if not run.changed and "invalid choice" in run.output:  # newer than the tool knows
        run = run_tool(worktree, [tool, "--target-version", "auto", *files], files)
    return run
