"""Register a table with the metadata before `create_all` by importing the module that defines it.

`Base.metadata.create_all()` creates only the tables of models that were imported by then; a
model module nobody imports during test setup leaves its table missing (`no such table:
health_status`, `relation "health_status" does not exist`). The fix is one import of that module
where `create_all` runs: at the top of the test conftest, or inside the function that calls
`create_all` in the application (where a top-level import could be circular).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import libcst as cst

from orchestrator.agents.codemod import Files, decline, failure_text, module_name, test_files
from orchestrator.agents.syntax import (
    dotted,
    import_position,
    statements,
    string_value,
    with_body,
)
from orchestrator.models import Proposal, WorkOrder

MISSING_TABLE = (
    re.compile(r"no such table: (?:\w+\.)?(\w+)"),  # sqlite
    re.compile(r'relation "(?:\w+\.)?(\w+)" does not exist'),  # postgres
    re.compile(r"Table '(?:\w+\.)?(\w+)' doesn't exist"),  # mysql
)
REASON = "registers the table with the metadata before create_all"


class DbSchema:
    name = "db_schema"

    def __init__(self, **kwargs: Any) -> None:
        """No options: this specialist is a deterministic codemod."""

    def propose(self, order: WorkOrder, worktree: Path, feedback: list[str]) -> Proposal:
        files = Files(worktree)
        tables = missing_tables(failure_text(order))
        if not tables:
            return decline("The failures name no missing table.")
        definitions = {table: _defining_module(files, table) for table in tables}
        undefined = sorted(t for t, path in definitions.items() if path is None)
        if undefined:
            return decline(
                f"No model or Table() defines {', '.join(undefined)}: the table needs a model or a "
                "migration, which a person has to write."
            )
        setup = _create_all_file(files, order)
        if setup is None:
            return decline("No create_all() call was found to register the tables with.")
        path, function = setup
        module = files.parse(path)
        assert module is not None  # _create_all_file() parsed it
        added: list[str] = []
        for source in sorted({p for p in definitions.values() if p}):
            name = module_name(files, source, style_from=path)
            if name in added or _imports(module, name):
                continue
            module = _add_import(module, name, function)
            added.append(name)
        if not added:
            return decline(
                f"{path} already imports the modules defining {', '.join(sorted(tables))}; the "
                "tables are missing for another reason (a different metadata or database)."
            )
        files.write(path, module)
        where = f"{function}() in {path}" if function else path
        return Proposal(
            explanation=(
                f"Table(s) {', '.join(sorted(tables))} are defined but their module(s) were never "
                f"imported before create_all(), so the metadata did not know them. Added "
                f"`import {'`, `import '.join(added)}` to {where}."
            )
        )


def missing_tables(text: str) -> set[str]:
    return {m[1] for pattern in MISSING_TABLE for m in pattern.finditer(text)}


def _defining_module(files: Files, table: str) -> str | None:
    """The file that defines the table: `__tablename__ = "t"` or `Table("t", ...)`."""
    for path in files.python_files():
        source = files.read(path)
        if table not in source:
            continue
        if re.search(rf"""__tablename__\s*(:[^=]*)?=\s*["']{table}["']""", source) or re.search(
            rf"""\bTable\(\s*["']{table}["']""", source
        ):
            return path
    return None


def _calls_create_all(module: cst.Module) -> list[str | None]:
    """Names of the functions that call `.create_all(` (None for a module-level call)."""
    found: list[str | None] = []
    stack: list[str] = []

    class Walk(cst.CSTVisitor):
        def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
            stack.append(node.name.value)

        def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
            stack.pop()

        def visit_Call(self, node: cst.Call) -> None:
            callee = dotted(node.func)
            if callee.endswith("create_all") or _run_sync_create_all(node):
                found.append(stack[0] if stack else None)

    module.visit(Walk())
    return found


def _run_sync_create_all(node: cst.Call) -> bool:
    """`await conn.run_sync(Base.metadata.create_all)` in async setups."""
    return dotted(node.func).endswith("run_sync") and any(
        dotted(arg.value).endswith("create_all") for arg in node.args
    )


def _create_all_file(files: Files, order: WorkOrder) -> tuple[str, str | None] | None:
    """Where create_all runs: a conftest of the failing tests first, else any project file.

    Returns the path and, outside conftest files, the function to put the import in.
    """
    conftests = [p for p in test_files(order, files) if p.endswith("conftest.py")]
    for path in [*reversed(conftests), *files.python_files()]:
        if "create_all" not in files.read(path):
            continue
        module = files.parse(path)
        callers = _calls_create_all(module) if module else []
        if callers:
            is_test = path.endswith("conftest.py") or Path(path).name.startswith("test_")
            return path, None if is_test else callers[0]
    return None


def _imports(module: cst.Module, name: str) -> bool:
    """Whether the module already imports `name` (as `import name` or `from name import ...`)."""
    code = module.code
    parent, _, leaf = name.rpartition(".")
    return bool(
        re.search(rf"^\s*import {re.escape(name)}\b", code, re.M)
        or re.search(rf"^\s*from {re.escape(name)} import", code, re.M)
        or (parent and re.search(rf"^\s*from {re.escape(parent)} import .*\b{leaf}\b", code, re.M))
    )


def _import_line(name: str) -> cst.SimpleStatementLine | cst.BaseCompoundStatement:
    return cst.parse_statement(f"import {name}  # noqa: F401 ({REASON})\n")


def _add_import(module: cst.Module, name: str, function: str | None) -> cst.Module:
    if function is None:
        body = list(module.body)
        body.insert(import_position(body), _import_line(name))
        return module.with_changes(body=body)
    return module.visit(_ImportInFunction(function, _import_line(name)))


class _ImportInFunction(cst.CSTTransformer):
    """Put the import at the top of the function (after its docstring)."""

    def __init__(self, function: str, line: cst.BaseStatement) -> None:
        super().__init__()
        self.function = function
        self.line = line
        self.done = False

    def leave_FunctionDef(self, original: cst.FunctionDef, updated: cst.FunctionDef) -> Any:
        if self.done or original.name.value != self.function:
            return updated
        self.done = True
        body = statements(updated)
        first = body[0] if body else None
        has_doc = (
            isinstance(first, cst.SimpleStatementLine)
            and isinstance(first.body[0], cst.Expr)
            and string_value(first.body[0].value) is not None
        )
        body.insert(1 if has_doc else 0, self.line)
        return with_body(updated, body)
