"""What the libcst specialists (and the model's file tools) share: confined paths, work orders, libcst.

Specialists and the model are untrusted, so every path goes through `confine()`, which resolves it
(symlinks included) and refuses absolute paths, anything outside the worktree and `.git`.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor, RemoveImportsVisitor
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


# --- libcst -------------------------------------------------------------------------------------


def parse(path: Path) -> cst.Module | None:
    """The file's syntax tree, or None when it is unreadable or not valid Python."""
    try:
        return cst.parse_module(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, cst.ParserSyntaxError):
        return None


def write(path: Path, module: cst.Module) -> None:
    path.write_text(module.code, encoding="utf-8")


def dotted(node: cst.CSTNode | None) -> str:
    """`a.b.c` for names and attributes (and the callee of a call), else ""."""
    return (get_full_name_for_node(node) or "") if node is not None else ""


def string_value(node: cst.CSTNode | None) -> str | None:
    """The value of a plain string literal (no f-string, no concatenation), else None."""
    if isinstance(node, cst.SimpleString):
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    return None


def with_string(node: cst.SimpleString, value: str) -> cst.SimpleString:
    """A string literal holding `value`, keeping the original prefix and quotes."""
    return node.with_changes(value=f"{node.prefix}{node.quote}{value}{node.quote}")


def find_function(
    module: cst.Module, classes: list[str], name: str
) -> tuple[cst.FunctionDef, cst.ClassDef | None] | None:
    """The function `name` at module level, or inside the (nested) classes; and its class."""
    body: list[cst.CSTNode] = list(module.body)
    owner: cst.ClassDef | None = None
    for class_name in classes:
        owner = next(
            (n for n in body if isinstance(n, cst.ClassDef) and n.name.value == class_name), None
        )
        if owner is None:
            return None
        body = list(owner.body.body)
    func = next((n for n in body if isinstance(n, cst.FunctionDef) and n.name.value == name), None)
    return (func, owner) if func is not None else None


def find_test(
    worktree: Path, nodeid: str
) -> tuple[Path, cst.Module, cst.FunctionDef, cst.ClassDef | None] | None:
    """(file, its tree, the test function, its class) for a node id, or None when not found."""
    rel, classes, name = split_nodeid(nodeid)
    path = resolve_inside(worktree, rel)
    module = parse(path) if path is not None and path.is_file() else None
    found = find_function(module, classes, name) if module is not None else None
    return (path, module, *found) if found is not None else None


def functions(module: cst.Module) -> Iterator[tuple[cst.FunctionDef, cst.ClassDef | None]]:
    """Module-level functions and methods of module-level classes, with their class."""
    for node in module.body:
        if isinstance(node, cst.FunctionDef):
            yield node, None
        elif isinstance(node, cst.ClassDef):
            for item in node.body.body:
                if isinstance(item, cst.FunctionDef):
                    yield item, node


def param_names(func: cst.FunctionDef) -> list[str]:
    params = func.params
    every = [*params.posonly_params, *params.params, *params.kwonly_params]
    return [p.name.value for p in every]


def add_param(func: cst.FunctionDef, name: str) -> cst.FunctionDef | None:
    """`func` taking fixture `name` as its last parameter; None when the signature can't take it.

    Parameters with defaults, `*args` or keyword-only parameters make appending ambiguous for
    pytest's fixture lookup, so those signatures are left alone.
    """
    if name in param_names(func):
        return func
    params = func.params
    if (
        params.star_arg is not cst.MaybeSentinel.DEFAULT
        or params.kwonly_params
        or params.star_kwarg
    ):
        return None
    if any(p.default is not None for p in params.params):
        return None
    return func.with_changes(
        params=params.with_changes(params=[*params.params, cst.Param(cst.Name(name))])
    )


def is_unittest_class(owner: cst.ClassDef | None) -> bool:
    """unittest.TestCase methods get no pytest fixtures, so fixture-based fixes can't apply."""
    return owner is not None and any(dotted(b.value).endswith("TestCase") for b in owner.bases)


def with_import(module: cst.Module, name: str) -> cst.Module:
    """The module with `import name` added: a stdlib module where isort would put it."""
    if "." in name or name not in sys.stdlib_module_names:
        context = CodemodContext()
        AddImportsVisitor.add_needed_import(context, name)
        return AddImportsVisitor(context).transform_module(module)
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


def drop_unused_import(module: cst.Module, name: str) -> cst.Module:
    """Remove `import name` when nothing uses it any more."""
    context = CodemodContext()
    RemoveImportsVisitor.remove_unused_import(context, name)
    return RemoveImportsVisitor(context).transform_module(module)


def imported_names(module: cst.Module) -> dict[str, str]:
    """Local name -> what it refers to, for the module's top-level imports.

    `import a.b` -> {"a": "a"}, `import a.b as c` -> {"c": "a.b"},
    `from a import b as c` -> {"c": "a.b"}. Relative imports are left out.
    """
    names: dict[str, str] = {}
    for stmt in module.body:
        if not isinstance(stmt, cst.SimpleStatementLine):
            continue
        for small in stmt.body:
            if isinstance(small, cst.Import):
                for alias in small.names:
                    full = dotted(alias.name)
                    if alias.asname is not None:
                        names[dotted(alias.asname.name)] = full
                    else:
                        names[full.split(".")[0]] = full.split(".")[0]
            elif (
                isinstance(small, cst.ImportFrom)
                and not small.relative
                and small.module is not None
            ):
                if isinstance(small.names, cst.ImportStar):
                    continue
                base = dotted(small.module)
                for alias in small.names:
                    local = dotted(alias.asname.name) if alias.asname else dotted(alias.name)
                    names[local] = f"{base}.{dotted(alias.name)}"
    return names


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


class _Replacer(cst.CSTTransformer):
    def __init__(self, mapping: dict[cst.CSTNode, cst.CSTNode]) -> None:
        self.mapping = mapping

    def on_leave(self, original: cst.CSTNode, updated: cst.CSTNode) -> cst.CSTNode:
        return self.mapping.get(original, updated)


def replace_nodes(module: cst.Module, mapping: dict[cst.CSTNode, cst.CSTNode]) -> cst.Module:
    """Swap several original nodes for new ones in one pass (deep_replace loses node identity)."""
    return module.visit(_Replacer(mapping))


def append_code(module: cst.Module, source: str) -> cst.Module:
    """`source` appended to the module, two blank lines apart from what is already there."""
    added = list(cst.parse_module(source.strip("\n") + "\n").body)
    if module.body and added:
        blank = [cst.EmptyLine(), cst.EmptyLine()]
        added[0] = added[0].with_changes(leading_lines=[*blank, *added[0].leading_lines])
    return module.with_changes(body=[*module.body, *added])
