"""What the libcst specialists (and the model's file tools) share: confined paths, work orders.

Specialists and the model are untrusted, so every path goes through `confine()`, which resolves it
(symlinks included) and refuses absolute paths, anything outside the worktree and `.git`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import libcst as cst

from orchestrator.agents.syntax import find_function, imported_names, parse, write
from orchestrator.models import Proposal, WorkOrder

SKIP_DIRS = frozenset(
    {
        ".git",
        ".venv",
        "venv",
        "env",
        "node_modules",
        "__pycache__",
        "site-packages",
        ".tox",
        "build",
        "dist",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
    }
)
_TRACE_PATTERNS = (
    re.compile(r"^([^\s:]+\.py):\d+:", re.MULTILINE),  # pytest's "path.py:12: in func"
    re.compile(r'File "([^"]+\.py)", line \d+'),  # the standard traceback
)


# --- paths ----------------------------------------------------------------------------------------


class OutsideWorktree(ValueError):
    """A refused path; `reason` is "absolute", "outside" (`..`, a symlink out) or "git"."""

    MESSAGES = {
        "absolute": "absolute paths are refused",
        "outside": "outside the worktree",
        "git": "git's internal files are off limits",
    }

    def __init__(self, rel: str | Path, reason: str) -> None:
        super().__init__(f"{rel}: {self.MESSAGES[reason]}")
        self.reason = reason


def confine(root: Path, rel: str | Path) -> Path:
    """The real location of `rel` under `root`; raises OutsideWorktree when it is refused."""
    root = Path(root).resolve()
    if Path(rel).is_absolute() or str(rel).startswith("~"):
        raise OutsideWorktree(rel, "absolute")
    target = (root / rel).resolve()
    if not target.is_relative_to(root):
        raise OutsideWorktree(rel, "outside")
    if target.relative_to(root).parts[:1] == (".git",):
        raise OutsideWorktree(rel, "git")
    return target


def resolve_inside(root: Path, rel: str | Path) -> Path | None:
    """`confine()`, with None for a refused path."""
    try:
        return confine(root, rel)
    except OutsideWorktree:
        return None


def relative(root: Path, path: Path) -> str:
    return path.resolve().relative_to(Path(root).resolve()).as_posix()


def walk(top: Path) -> Iterator[Path]:
    """Files under `top` in a stable order, not entering SKIP_DIRS or symlinked directories."""
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in sorted(filenames):
            yield Path(dirpath) / name


def python_files(root: Path) -> Iterator[Path]:
    """The project's Python sources (no VCS, virtualenvs, caches or symlinks)."""
    return (p for p in walk(Path(root).resolve()) if p.name.endswith(".py") and not p.is_symlink())


class Files:
    """Read, parse and write Python files of one worktree, remembering what was changed."""

    def __init__(self, worktree: Path) -> None:
        self.root = Path(worktree).resolve()
        self.changed: list[str] = []

    def path(self, rel: str | Path) -> Path:
        """The real location of `rel`; refused unless it is inside the worktree."""
        target = confine(self.root, rel)
        if target == self.root:
            raise OutsideWorktree(rel, "outside")
        return target

    def rel(self, path: Path) -> str:
        return relative(self.root, path)

    def exists(self, rel: str | Path) -> bool:
        try:
            return self.path(rel).is_file()
        except OutsideWorktree:
            return False

    def read(self, rel: str | Path) -> str:
        return self.path(rel).read_text(encoding="utf-8")

    def parse(self, rel: str | Path) -> cst.Module | None:
        """The file's syntax tree, or None when it is missing, outside, or not valid Python."""
        try:
            return parse(self.path(rel))
        except OutsideWorktree:
            return None

    def write(self, rel: str | Path, module: cst.Module) -> None:
        """Write a changed tree back (formatting and comments are kept by libcst)."""
        target = self.path(rel)
        if target.read_text(encoding="utf-8") == module.code:
            return
        write(target, module)
        name = self.rel(target)
        if name not in self.changed:
            self.changed.append(name)

    def python_files(self) -> Iterator[str]:
        return (self.rel(path) for path in python_files(self.root))


# --- work orders ----------------------------------------------------------------------------------


def decline(reason: str) -> Proposal:
    """A declined proposal: the cause could not be told, so nothing was edited."""
    return Proposal(explanation=reason, declined=True)


def split_nodeid(nodeid: str) -> tuple[str, list[str], str]:
    """`tests/t.py::TestA::test_b[x]` -> ("tests/t.py", ["TestA"], "test_b")."""
    parts = nodeid.split("::")
    func = re.sub(r"\[.*\]$", "", parts[-1]) if len(parts) > 1 else ""
    return parts[0], parts[1:-1], func


def traceback_paths(text: str | None) -> list[str]:
    """Source files named in a traceback, in order of appearance."""
    found: list[str] = []
    for pattern in _TRACE_PATTERNS:
        found += [m for m in pattern.findall(text or "") if m not in found]
    return found


def candidate_files(order: WorkOrder, worktree: Path) -> list[Path]:
    """Existing .py files inside the worktree that the order's failures point at, test files first."""
    names: list[str] = []
    for failure in order.failures:
        names += [failure.file or "", split_nodeid(failure.nodeid)[0]]
        names += traceback_paths(failure.longrepr)
    names += [split_nodeid(t)[0] for t in order.tests] + list(order.affected_files)
    paths: list[Path] = []
    for name in names:
        if not name.endswith(".py"):
            continue
        if Path(name).is_absolute():  # tracebacks name files absolutely
            try:
                name = relative(worktree, Path(name))
            except ValueError:
                continue
        path = resolve_inside(worktree, name)
        if path is not None and path.is_file() and path not in paths:
            paths.append(path)
    return paths


def failing_tests(order: WorkOrder) -> dict[str, set[str]]:
    """Test file -> names of its failing test functions, from the order's node ids."""
    found: dict[str, set[str]] = {}
    for nodeid in [*order.tests, *(f.nodeid for f in order.failures)]:
        path, _, func = split_nodeid(nodeid)
        names = found.setdefault(path, set())
        if func:
            names.add(func)
    return found


def test_files(order: WorkOrder, files: Files) -> list[str]:
    """The failing tests' files plus the conftest.py files that supply their fixtures."""
    found: list[str] = []
    for path in failing_tests(order):
        if not files.exists(path):
            continue
        found.append(path)
        for parent in Path(path).parents:
            conftest = (parent / "conftest.py").as_posix()
            if files.exists(conftest) and conftest not in found:
                found.append(conftest)
    return found


def failure_text(order: WorkOrder) -> str:
    """Every message and report of the order, for the specialists' pattern matching."""
    parts = [order.root_cause]
    for failure in order.failures:
        parts += [failure.message, failure.exc_type or "", failure.longrepr or ""]
    return "\n".join(parts)


# --- modules --------------------------------------------------------------------------------------


def module_name(files: Files, rel: str, *, style_from: str | None = None) -> str:
    """The dotted import name of a file, as the project imports it.

    The package root is the first directory upward without an `__init__.py`; when the file
    `style_from` already imports through that root's name (e.g. `src.app...`), it is kept.
    """
    path = Path(rel).with_suffix("")
    parts = list(path.parts)
    if parts[-1] == "__init__":
        parts.pop()
    start = len(parts) - 1
    while start > 0 and files.exists(Path(*parts[:start]) / "__init__.py"):
        start -= 1
    if start > 0 and style_from and _imports_root(files, style_from, parts[start - 1]):
        start -= 1
    return ".".join(parts[start:])


def _imports_root(files: Files, rel: str, root: str) -> bool:
    return re.search(rf"^\s*(from|import)\s+{re.escape(root)}\.", files.read(rel), re.M) is not None


def module_file(worktree: Path, dotted: str) -> Path | None:
    """The worktree file defining module `dotted` (flat or src/ layout), if any."""
    rel = Path(*dotted.split("."))
    for base in ("", "src"):
        for candidate in (rel.with_suffix(".py"), rel / "__init__.py"):
            path = resolve_inside(worktree, Path(base) / candidate)
            if path is not None and path.is_file():
                return path
    return None


def imported_files(files: Files, paths: list[str]) -> list[str]:
    """The project files that `paths` import (one hop): the code the tests exercise."""
    found: list[str] = []
    for path in paths:
        module = files.parse(path)
        for target in imported_names(module).values() if module is not None else []:
            for dotted in (target, target.rpartition(".")[0]):
                source = module_file(files.root, dotted) if dotted else None
                if source is not None and (rel := files.rel(source)) not in [*paths, *found]:
                    found.append(rel)
                    break
    return found


def find_test(
    worktree: Path, nodeid: str
) -> tuple[Path, cst.Module, cst.FunctionDef, cst.ClassDef | None] | None:
    """(file, its tree, the test function, its class) for a node id, or None when not found."""
    rel, classes, name = split_nodeid(nodeid)
    path = resolve_inside(worktree, rel)
    module = parse(path) if path is not None and path.is_file() else None
    if path is None or module is None:
        return None
    found = find_function(module, classes, name)
    return (path, module, *found) if found is not None else None
