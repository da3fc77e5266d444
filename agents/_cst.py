"""Helpers the deterministic specialists share: safe paths, node ids, libcst lookups and edits.

Every path a specialist touches goes through `inside()`, so a work order naming a file outside
the worktree (or a symlink out of it) is refused rather than followed.
"""

from __future__ import annotations

import re
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
    }
)
_TRACE_PATTERNS = (
    re.compile(r"^([^\s:]+\.py):\d+:", re.MULTILINE),  # pytest's "path.py:12: in func"
    re.compile(r'File "([^"]+\.py)", line \d+'),  # the standard traceback
)


def decline(reason: str) -> Proposal:
    """A declined proposal: the cause could not be told, so nothing was edited."""
    return Proposal(explanation=reason, declined=True)


def inside(worktree: Path, rel: str | Path) -> Path | None:
    """`rel` resolved under the worktree, or None when it points outside (absolute, `..`, symlink)."""
    root = worktree.resolve()
    path = (root / rel).resolve()
    return path if path == root or root in path.parents else None


def relative(worktree: Path, path: Path) -> str:
    return path.resolve().relative_to(worktree.resolve()).as_posix()


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
    root = worktree.resolve()
    paths: list[Path] = []
    for name in names:
        if not name.endswith(".py"):
            continue
        if Path(name).is_absolute() and root not in Path(name).resolve().parents:
            continue
        path = inside(worktree, name)
        if path is not None and path.is_file() and path not in paths:
            paths.append(path)
    return paths


def python_files(worktree: Path) -> Iterator[Path]:
    """The worktree's Python sources, skipping virtualenvs, VCS and build directories."""
    for path in sorted(worktree.rglob("*.py")):
        rel = path.relative_to(worktree).parts
        if not SKIP_DIRS.intersection(rel) and not path.is_symlink():
            yield path


def module_name(worktree: Path, path: Path) -> str:
    """The dotted module a file is imported as (a leading `src/` is the layout, not a package)."""
    parts = list(path.resolve().relative_to(worktree.resolve()).with_suffix("").parts)
    if parts and parts[0] == "src":
        parts = parts[1:]
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def module_file(worktree: Path, dotted: str) -> Path | None:
    """The worktree file defining module `dotted` (flat or src/ layout), if any."""
    rel = Path(*dotted.split("."))
    for base in ("", "src"):
        for candidate in (rel.with_suffix(".py"), rel / "__init__.py"):
            path = inside(worktree, Path(base) / candidate)
            if path is not None and path.is_file():
                return path
    return None


def parse(path: Path) -> cst.Module | None:
    """The file's syntax tree, or None when it does not parse (then it is not ours to edit)."""
    try:
        return cst.parse_module(path.read_text(encoding="utf-8"))
    except (cst.ParserSyntaxError, UnicodeDecodeError):
        return None


def write(path: Path, module: cst.Module) -> None:
    path.write_text(module.code, encoding="utf-8")


def full_name(node: cst.CSTNode | None) -> str:
    """`a.b.c` for names and attribute chains, "" for anything else."""
    return (get_full_name_for_node(node) or "") if node is not None else ""


def string_value(node: cst.CSTNode | None) -> str | None:
    """The value of a plain string literal, else None (f-strings and concatenations don't count)."""
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
    return owner is not None and any(full_name(b.value).endswith("TestCase") for b in owner.bases)


def add_import(module: cst.Module, dotted: str, name: str | None = None) -> cst.Module:
    """`import dotted` (or `from dotted import name`) unless already there."""
    context = CodemodContext()
    AddImportsVisitor.add_needed_import(context, dotted, name)
    return AddImportsVisitor(context).transform_module(module)


def drop_unused_import(module: cst.Module, dotted: str) -> cst.Module:
    """Remove `import dotted` when nothing uses it any more."""
    context = CodemodContext()
    RemoveImportsVisitor.remove_unused_import(context, dotted)
    return RemoveImportsVisitor(context).transform_module(module)


def imported_names(module: cst.Module) -> dict[str, str]:
    """Local name -> what it refers to, for the module's top-level imports.

    `import a.b` -> {"a": "a"} (and "a.b" reachable), `import a.b as c` -> {"c": "a.b"},
    `from a import b as c` -> {"c": "a.b"}. Relative imports are left out.
    """
    names: dict[str, str] = {}
    for stmt in module.body:
        if not isinstance(stmt, cst.SimpleStatementLine):
            continue
        for small in stmt.body:
            if isinstance(small, cst.Import):
                for alias in small.names:
                    dotted = full_name(alias.name)
                    if alias.asname is not None:
                        names[full_name(alias.asname.name)] = dotted
                    else:
                        names[dotted.split(".")[0]] = dotted.split(".")[0]
            elif (
                isinstance(small, cst.ImportFrom)
                and not small.relative
                and small.module is not None
            ):
                if isinstance(small.names, cst.ImportStar):
                    continue
                base = full_name(small.module)
                for alias in small.names:
                    local = full_name(alias.asname.name) if alias.asname else full_name(alias.name)
                    names[local] = f"{base}.{full_name(alias.name)}"
    return names


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
