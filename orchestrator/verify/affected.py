"""Which tests a patch can affect: the changed test files and those importing changed code."""

from __future__ import annotations

import ast
from pathlib import Path, PurePosixPath

from orchestrator.verify.cheats import is_conftest, parse

_DOC_SUFFIXES = {".md", ".rst", ".txt"}


def regression_set(worktree: Path, changed: list[str], collected: list[str]) -> set[str]:
    """Tests of changed test files and of test files that (transitively) import changed code.

    A change to a non-Python file (a schema, a config) cannot be traced, so it selects all.
    """
    if any(not p.endswith(".py") and PurePosixPath(p).suffix not in _DOC_SUFFIXES for p in changed):
        return set(collected)
    code = {p for p in changed if p.endswith(".py")}
    tested = {n.split("::")[0] for n in collected}
    files = sorted(p for p in tested | set(_python_files(worktree)) | code if p.endswith(".py"))
    affected = _importers(worktree, files, code)
    conftest_dirs = [PurePosixPath(p).parent for p in changed if is_conftest(p)]
    return {
        n
        for n in collected
        if (f := n.split("::")[0]) in affected
        or any(d in PurePosixPath(f).parents for d in conftest_dirs)
    }


def _python_files(worktree: Path) -> list[str]:
    """Every Python file of the checkout (hidden directories and caches left out)."""
    return [
        str(p.relative_to(worktree).as_posix())
        for p in worktree.rglob("*.py")
        if not any(
            part.startswith(".") or part == "__pycache__" for part in p.relative_to(worktree).parts
        )
    ]


def _importers(worktree: Path, files: list[str], changed: set[str]) -> set[str]:
    """`changed` and every file that imports one of them, directly or through others."""
    modules: dict[str, str] = {}
    for path in files:
        for name in _module_names(worktree, path):
            modules.setdefault(name, path)
    imported_by: dict[str, set[str]] = {}
    for path in files:
        for name in _imports(worktree, path):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                target = modules.get(".".join(parts[:i]))
                if target:
                    imported_by.setdefault(target, set()).add(path)
    affected, todo = set(changed), list(changed)
    while todo:
        for importer in imported_by.get(todo.pop(), ()):
            if importer not in affected:
                affected.add(importer)
                todo.append(importer)
    return affected


def _module_names(worktree: Path, path: str) -> list[str]:
    """The dotted names `path` is importable as (src/ layout and rootdir-style test dirs)."""
    parts = list(PurePosixPath(path).with_suffix("").parts)
    if parts and parts[0] == "src" and len(parts) > 1:
        parts = parts[1:]
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    names = [".".join(parts)] if parts else []
    if len(parts) > 1 and not (worktree / PurePosixPath(path).parent / "__init__.py").exists():
        names.append(parts[-1])  # pytest's rootdir insertion makes it importable by its own name
    return names


def _imports(worktree: Path, path: str) -> set[str]:
    """Every module name `path` imports, anywhere in it, relative imports made absolute."""
    tree = parse(_read(worktree / path))
    if tree is None:
        return set()
    own = _module_names(worktree, path)
    package = own[0].split(".") if own else []
    if not path.endswith("__init__.py"):
        package = package[:-1]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            stem = package[: len(package) - node.level + 1] if node.level else []
            base = ".".join([*stem, *([node.module] if node.module else [])])
            names |= {base} | {f"{base}.{alias.name}".lstrip(".") for alias in node.names}
    return names


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, IsADirectoryError):
        return ""
