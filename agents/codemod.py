"""What the libcst specialists share: confined file access, parsing, and reading work orders.

Specialists are untrusted, so every path goes through `Files.path()`, which resolves it (symlinks
included) and refuses anything outside the worktree or inside `.git`.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import libcst as cst
from libcst.helpers import get_full_name_for_node

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


class OutsideWorktree(ValueError):
    """A path that resolves outside the worktree (absolute, `..`, or a symlink out)."""


class Files:
    """Read, parse and write Python files of one worktree, remembering what was changed."""

    def __init__(self, worktree: Path) -> None:
        self.root = Path(worktree).resolve()
        self.changed: list[str] = []

    def path(self, rel: str | Path) -> Path:
        """The real location of `rel`; refused unless it stays inside the worktree."""
        target = (self.root / rel).resolve()
        if not target.is_relative_to(self.root) or target == self.root:
            raise OutsideWorktree(f"{rel}: outside the worktree")
        if target.relative_to(self.root).parts[0] == ".git":
            raise OutsideWorktree(f"{rel}: git's internal files are off limits")
        return target

    def rel(self, path: Path) -> str:
        return path.resolve().relative_to(self.root).as_posix()

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
            return cst.parse_module(self.read(rel))
        except (OSError, UnicodeDecodeError, OutsideWorktree, cst.ParserSyntaxError):
            return None

    def write(self, rel: str | Path, module: cst.Module) -> None:
        """Write a changed tree back (formatting and comments are kept by libcst)."""
        target = self.path(rel)
        code = module.code
        if target.read_text(encoding="utf-8") == code:
            return
        target.write_text(code, encoding="utf-8")
        name = self.rel(target)
        if name not in self.changed:
            self.changed.append(name)

    def python_files(self) -> Iterator[str]:
        """Every Python file of the project (no VCS, virtualenvs or caches), in a stable order."""
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
            for name in sorted(filenames):
                if name.endswith(".py"):
                    path = Path(dirpath) / name
                    if not path.is_symlink():
                        yield self.rel(path)


# --- work orders ----------------------------------------------------------------------------------


def decline(reason: str) -> Proposal:
    """A declined proposal: the cause could not be told, so nothing was edited."""
    return Proposal(explanation=reason, declined=True)


def split_nodeid(nodeid: str) -> tuple[str, str]:
    """`tests/t.py::TestA::test_b[x]` -> ("tests/t.py", "test_b")."""
    parts = nodeid.split("::")
    func = re.sub(r"\[.*\]$", "", parts[-1]) if len(parts) > 1 else ""
    return parts[0], func


def failing_tests(order: WorkOrder) -> dict[str, set[str]]:
    """Test file -> names of its failing test functions, from the order's node ids."""
    found: dict[str, set[str]] = {}
    for nodeid in [*order.tests, *(f.nodeid for f in order.failures)]:
        path, func = split_nodeid(nodeid)
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


# --- libcst -------------------------------------------------------------------------------------


def dotted(node: cst.CSTNode) -> str:
    """`a.b.c` for names and attributes (and the callee of a call), else ""."""
    return get_full_name_for_node(node) or ""


def string_value(node: cst.CSTNode) -> str | None:
    """The value of a plain string literal (no f-string, no concatenation), else None."""
    if isinstance(node, cst.SimpleString):
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    return None


def with_import(module: cst.Module, name: str) -> cst.Module:
    """The module with `import name` (a stdlib module) added where isort would put it."""
    body = list(module.body)
    imports = [(i, _imported(stmt)) for i, stmt in enumerate(body[: import_position(body)])]
    imports = [(i, kind, top) for i, found in imports if found for kind, top in [found]]
    if any(kind == "import" and top == name for _, kind, top in imports):
        return module
    stdlib = [i for i, _, top in imports if top in sys.stdlib_module_names and top != "__future__"]
    earlier = [i for i, kind, top in imports if i in stdlib and kind == "import" and top < name]
    others = [i for i, _, top in imports if top != "__future__"]
    line = cst.parse_statement(f"import {name}\n")
    blank = [cst.EmptyLine(indent=False)]
    if earlier:  # after the stdlib `import x` lines that sort before it
        body.insert(earlier[-1] + 1, line)
    elif stdlib or others:  # first of its section; its own section when no stdlib import exists
        index = (stdlib or others)[0]
        line = line.with_changes(leading_lines=body[index].leading_lines)
        body[index] = body[index].with_changes(leading_lines=[] if stdlib else blank)
        body.insert(index, line)
    else:  # no imports: after the docstring and `from __future__` lines
        index = import_position(body)
        body.insert(index, line.with_changes(leading_lines=blank if index else []))
        if index + 1 < len(body) and not body[index + 1].leading_lines:
            gap = 2 if isinstance(body[index + 1], cst.ClassDef | cst.FunctionDef) else 1
            body[index + 1] = body[index + 1].with_changes(leading_lines=blank * gap)
    return module.with_changes(body=body)


def _imported(stmt: cst.CSTNode) -> tuple[str, str] | None:
    """("import" | "from", top-level package) of a one-import line, else None."""
    if not isinstance(stmt, cst.SimpleStatementLine) or len(stmt.body) != 1:
        return None
    small = stmt.body[0]
    if isinstance(small, cst.Import):
        return "import", dotted(small.names[0].name).split(".")[0]
    if isinstance(small, cst.ImportFrom) and small.module is not None and not small.relative:
        return "from", dotted(small.module).split(".")[0]
    return None


def quote_like(original: cst.SimpleString, value: str) -> str:
    """A string literal for `value` that keeps the original's quote character."""
    quote = '"' if original.quote.endswith('"') else "'"
    return f"{quote}{value}{quote}"


def import_position(body: list[cst.CSTNode] | tuple[cst.CSTNode, ...]) -> int:
    """Index just after the leading docstring and import block of a module or function body."""
    index = 0
    for i, stmt in enumerate(body):
        if isinstance(stmt, cst.SimpleStatementLine) and all(
            isinstance(s, cst.Import | cst.ImportFrom)
            or (i == 0 and isinstance(s, cst.Expr) and isinstance(s.value, cst.SimpleString))
            for s in stmt.body
        ):
            index = i + 1
        else:
            break
    return index
