"""Make SQLAlchemy models carry their column defaults from construction, not only from flush.

`Column(..., default=True)` and `mapped_column(..., default=True)` are applied by the INSERT, so
`Module(name="x").active` is None until the object is flushed, and a uuid primary key without
any default is never generated at all. The fix the project's people would write: an `__init__`
on each model that fills in the declared defaults (and a fresh uuid for the primary key) for the
attributes the caller did not pass, then calls `super().__init__(**kwargs)`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard, cast

import libcst as cst

from orchestrator.agents.codemod import Files, decline, failure_text, imported_files, test_files
from orchestrator.agents.syntax import dotted, statements, string_value, with_body, with_import
from orchestrator.models import Proposal, WorkOrder

COLUMN_FACTORIES = {"Column", "mapped_column"}
UUID_TYPES = {"UUID", "Uuid", "UUIDType", "GUID"}
SQL_EXPRESSIONS = {"text", "literal", "literal_column", "select", "null", "true", "false"}
NULL_PATTERNS = (
    re.compile(r"NOT NULL constraint failed: (\w+)\.(\w+)"),
    re.compile(r'null value in column "(\w+)" of relation "(\w+)"'),
)
DOCSTRING = '"""Apply the column defaults now: SQLAlchemy applies them only at flush."""'


@dataclass
class Column:
    """One column attribute of a class body, as far as construction defaults are concerned."""

    attr: str
    default: str | None = None  # the Python expression that produces the default value
    primary_key: bool = False
    id_kind: str | None = None  # "uuid" or "str" for primary keys that could take a uuid


@dataclass
class ModelClass:
    name: str
    path: str
    bases: list[str]
    tablename: str | None
    columns: list[Column] = field(default_factory=list)
    init_params: list[str] | None = None  # the parameters of its own __init__, if it has one
    init_kwargs: str | None = None  # the name of that __init__'s `**kwargs`
    init_sets: set[str] = field(default_factory=set)  # string constants in it: attributes it sets


class ModelDefaults:
    name = "model_defaults"

    def __init__(self, **kwargs: Any) -> None:
        """No options: this specialist is a deterministic codemod."""

    def propose(self, order: WorkOrder, worktree: Path, feedback: list[str]) -> Proposal:
        files = Files(worktree)
        classes = _scan(files)
        text = failure_text(order)
        nulls = _null_columns(text)
        targets = _targets(classes, text, nulls, _tests_source(order, files, classes))
        plans = {c.name: _plan(c, classes, nulls) for c in targets}
        plans = {name: plan for name, plan in plans.items() if plan}
        if not plans:
            return decline(
                "No SQLAlchemy model named by the failures declares a Python-side default or a "
                "uuid primary key to generate; the None values have another cause."
            )
        skipped = [c.name for c in targets if c.name in plans and _unextendable(c)]
        done: list[str] = []
        by_file: dict[str, list[ModelClass]] = {}
        for c in targets:
            if c.name in plans and c.name not in skipped:
                by_file.setdefault(c.path, []).append(c)
        for path, models in by_file.items():
            module = files.parse(path)
            if module is None:
                continue
            module = module.visit(_AddInit({m.name: (m, plans[m.name]) for m in models}, module))
            if any("uuid.uuid4()" in value for m in models for _, value in plans[m.name]):
                module = with_import(module, "uuid")
            files.write(path, module)
            done += [
                f"{m.name} ({', '.join(a for a, _ in plans[m.name])}) in {path}" for m in models
            ]
        if not done:
            return decline(f"The models' own __init__ takes no **kwargs to extend: {skipped}.")
        return Proposal(explanation=_explain(done, skipped))


# --- reading the models ---------------------------------------------------------------------------


def _scan(files: Files) -> dict[str, ModelClass]:
    """Every top-level class of the project that declares columns, by name."""
    found: dict[str, ModelClass] = {}
    for path in files.python_files():
        source = files.read(path)
        if "Column(" not in source and "mapped_column(" not in source:
            continue
        module = files.parse(path)
        if module is None:
            continue
        assigned = _module_assignments(module)
        for stmt in module.body:
            if isinstance(stmt, cst.ClassDef):
                model = _read_class(stmt, path, assigned)
                if model.columns:
                    found.setdefault(model.name, model)
    return found


def _module_assignments(module: cst.Module) -> set[str]:
    """Names bound to plain values at module level (constants, not functions or imports)."""
    names: set[str] = set()
    for stmt in module.body:
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                if isinstance(small, cst.Assign):
                    names |= {
                        t.target.value for t in small.targets if isinstance(t.target, cst.Name)
                    }
                elif isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name):
                    names.add(small.target.value)
    return names


def _read_class(node: cst.ClassDef, path: str, assigned: set[str]) -> ModelClass:
    model = ModelClass(
        name=node.name.value,
        path=path,
        bases=[dotted(b.value).rsplit(".", 1)[-1] for b in node.bases],
        tablename=None,
    )
    for stmt in statements(node):
        if isinstance(stmt, cst.FunctionDef) and stmt.name.value == "__init__":
            model.init_params = [p.name.value for p in stmt.params.params]
            star = stmt.params.star_kwarg
            model.init_kwargs = star.name.value if star else None
            model.init_sets = _strings_in(stmt)
        if not isinstance(stmt, cst.SimpleStatementLine):
            continue
        for small in stmt.body:
            target, annotation, value = _assignment(small)
            if target == "__tablename__":
                model.tablename = string_value(value)
            elif target and isinstance(value, cst.Call) and _callee(value) in COLUMN_FACTORIES:
                model.columns.append(_read_column(target, annotation, value, assigned))
    return model


def _strings_in(node: cst.CSTNode) -> set[str]:
    """String constants in a function: `kwargs.setdefault("active", ...)` names what it sets."""
    found: set[str] = set()

    class Walk(cst.CSTVisitor):
        def visit_SimpleString(self, s: cst.SimpleString) -> None:
            found.add(string_value(s) or "")

    node.visit(Walk())
    return found


def _assignment(small: cst.BaseSmallStatement) -> tuple[str | None, Any, Any]:
    if isinstance(small, cst.Assign) and len(small.targets) == 1:
        target = small.targets[0].target
        return (target.value if isinstance(target, cst.Name) else None), None, small.value
    if isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name):
        return small.target.value, small.annotation.annotation, small.value
    return None, None, None


def _read_column(attr: str, annotation: Any, call: cst.Call, assigned: set[str]) -> Column:
    column = Column(attr=attr)
    type_node = None
    for arg in call.args:
        name = arg.keyword.value if arg.keyword else None
        if name in ("default", "insert_default"):
            column.default = _default_code(arg.value, assigned)
        elif name == "primary_key":
            column.primary_key = dotted(arg.value) == "True"
        elif name == "type_" or (
            name is None and type_node is None and string_value(arg.value) is None
        ):
            type_node = arg.value
    column.id_kind = _id_kind(type_node, annotation)
    return column


def _default_code(node: cst.BaseExpression, assigned: set[str]) -> str | None:
    """Python code producing the default at construction; None for SQL-side or context defaults."""
    code = cst.Module([]).code_for_node(node)
    if isinstance(node, cst.Lambda):
        return None if node.params.params else cst.Module([]).code_for_node(node.body)
    if isinstance(node, cst.Call):
        sql = "func" in dotted(node.func).split(".") or _callee(node) in SQL_EXPRESSIONS
        return None if sql else code
    if isinstance(node, cst.Name | cst.Attribute):
        name = dotted(node)
        if name == "None":
            return None
        return code + "()" if _is_callable_name(name, assigned) else code
    return code


def _is_callable_name(name: str, assigned: set[str]) -> bool:
    """`uuid.uuid4`, `datetime.utcnow`, `dict` are factories; `Status.ACTIVE`, `LIMIT` are values."""
    parts = name.split(".")
    if name in ("True", "False") or parts[0] in assigned:
        return False
    return not (parts[0][:1].isupper() or parts[-1].isupper())


def _id_kind(type_node: Any, annotation: Any) -> str | None:
    """ "uuid" when the column holds uuid.UUID objects, "str" for string columns, else None."""
    if type_node is not None:
        name = dotted(type_node.func if isinstance(type_node, cst.Call) else type_node)
        last = name.rsplit(".", 1)[-1]
        if last in UUID_TYPES:
            as_uuid = _keyword(type_node, "as_uuid")
            return "str" if as_uuid is not None and dotted(as_uuid) == "False" else "uuid"
        return "str" if last in ("String", "Text", "CHAR", "VARCHAR", "Unicode") else None
    if isinstance(annotation, cst.Subscript) and annotation.slice:
        inner = annotation.slice[0].slice
        if isinstance(inner, cst.Index):
            name = dotted(inner.value).rsplit(".", 1)[-1]
            return {"UUID": "uuid", "str": "str"}.get(name)
    return None


def _keyword(node: Any, name: str) -> cst.BaseExpression | None:
    if isinstance(node, cst.Call):
        for arg in node.args:
            if arg.keyword and arg.keyword.value == name:
                return arg.value
    return None


def _callee(call: cst.Call) -> str:
    return dotted(call.func).rsplit(".", 1)[-1]


# --- choosing and planning ------------------------------------------------------------------------


def _null_columns(text: str) -> set[tuple[str, str]]:
    """(table, column) pairs the failures report as NULL where NOT NULL was required."""
    pairs: set[tuple[str, str]] = set()
    for match in NULL_PATTERNS[0].finditer(text):
        pairs.add((match[1], match[2]))
    for match in NULL_PATTERNS[1].finditer(text):
        pairs.add((match[2], match[1]))
    return pairs


def _tests_source(order: WorkOrder, files: Files, classes: dict[str, ModelClass]) -> str:
    """The failing tests' files, their conftests and the project code they import (a model's
    own module names every model: it is not read)."""
    tests = test_files(order, files)
    models = {c.path for c in classes.values()}
    used = [p for p in imported_files(files, tests) if p not in models]
    return "\n".join(files.read(path) for path in [*tests, *used])


def _targets(
    classes: dict[str, ModelClass], text: str, nulls: set[tuple[str, str]], tests: str
) -> list[ModelClass]:
    """The mapped classes the failures name (or, failing that, that the failing tests use)."""
    mapped = [c for c in classes.values() if c.tablename]
    tables = {table for table, _ in nulls}
    named = [c for c in mapped if re.search(rf"\b{c.name}\b", text) or c.tablename in tables]
    return named or [c for c in mapped if re.search(rf"\b{c.name}\b", tests)]


def _inherited(model: ModelClass, classes: dict[str, ModelClass], seen: set[str]) -> list[Column]:
    """Columns of the class and of the project's mixins it inherits, the class's own winning."""
    columns = {c.attr: c for c in model.columns}
    for base in model.bases:
        if base in classes and base not in seen:
            seen.add(base)
            for column in _inherited(classes[base], classes, seen):
                columns.setdefault(column.attr, column)
    return list(columns.values())


def _plan(
    model: ModelClass, classes: dict[str, ModelClass], nulls: set[tuple[str, str]]
) -> list[tuple[str, str]]:
    """(attribute, default code) pairs the model's constructor should fill in."""
    plan = []
    for column in _inherited(model, classes, {model.name}):
        if column.attr in (model.init_params or []) or column.attr in model.init_sets:
            continue
        if column.default is not None:
            plan.append((column.attr, column.default))
        elif column.primary_key and column.id_kind == "uuid":
            plan.append((column.attr, "uuid.uuid4()"))
        elif column.primary_key and (model.tablename, column.attr) in nulls and column.id_kind:
            plan.append((column.attr, "str(uuid.uuid4())"))
    return plan


def _unextendable(model: ModelClass) -> bool:
    return model.init_params is not None and model.init_kwargs is None


# --- editing --------------------------------------------------------------------------------------


class _AddInit(cst.CSTTransformer):
    """Add an `__init__` that fills in defaults to each planned class, or extend its own."""

    def __init__(
        self, plans: dict[str, tuple[ModelClass, list[tuple[str, str]]]], module: cst.Module
    ):
        super().__init__()
        self.plans = plans
        self.module = module

    def leave_ClassDef(self, original: cst.ClassDef, updated: cst.ClassDef) -> cst.ClassDef:
        if updated.name.value not in self.plans:
            return updated
        model, plan = self.plans[updated.name.value]
        body = [s for s in statements(updated) if not _is_pass(s)]
        if model.init_kwargs:
            index, init = next((i, s) for i, s in enumerate(body) if _is_init(s))
            body[index] = self._extend(init, model.init_kwargs, plan)
        else:
            index = next(
                (i for i, s in enumerate(body) if isinstance(s, cst.FunctionDef)), len(body)
            )
            body.insert(index, self._new_init(plan, follows_code=index > 0))
            after = body[index + 1] if index + 1 < len(body) else None
            if (
                isinstance(after, cst.SimpleStatementLine | cst.BaseCompoundStatement)
                and not after.leading_lines
            ):
                body[index + 1] = after.with_changes(leading_lines=[cst.EmptyLine(indent=False)])
        return with_body(updated, body)

    def _lines(self, kwargs: str, plan: list[tuple[str, str]]) -> list[cst.BaseStatement]:
        return [
            cst.parse_statement(
                f'{kwargs}.setdefault("{attr}", {code})\n', self.module.config_for_parsing
            )
            for attr, code in plan
        ]

    def _new_init(self, plan: list[tuple[str, str]], *, follows_code: bool) -> cst.FunctionDef:
        lines = "".join(f'    kwargs.setdefault("{attr}", {code})\n' for attr, code in plan)
        source = f"def __init__(self, **kwargs):\n    {DOCSTRING}\n{lines}    super().__init__(**kwargs)\n"
        source = source.replace("    ", self.module.default_indent)
        func = cast(cst.FunctionDef, cst.parse_statement(source, self.module.config_for_parsing))
        return func.with_changes(
            leading_lines=[cst.EmptyLine(indent=False)] if follows_code else []
        )

    def _extend(
        self, init: cst.FunctionDef, kwargs: str, plan: list[tuple[str, str]]
    ) -> cst.FunctionDef:
        body = statements(init)
        start = 1 if body and _is_docstring(body[0]) else 0
        body[start:start] = self._lines(kwargs, plan)
        return with_body(init, body)


def _is_init(stmt: cst.CSTNode) -> TypeGuard[cst.FunctionDef]:
    return isinstance(stmt, cst.FunctionDef) and stmt.name.value == "__init__"


def _is_pass(stmt: cst.CSTNode) -> bool:
    """A bare `pass`: the placeholder body of a class that only inherits its columns."""
    return (
        isinstance(stmt, cst.SimpleStatementLine)
        and len(stmt.body) == 1
        and isinstance(stmt.body[0], cst.Pass)
    )


def _is_docstring(stmt: cst.CSTNode) -> bool:
    return (
        isinstance(stmt, cst.SimpleStatementLine)
        and isinstance(stmt.body[0], cst.Expr)
        and isinstance(stmt.body[0].value, cst.SimpleString | cst.ConcatenatedString)
    )


def _explain(done: list[str], skipped: list[str]) -> str:
    text = (
        "SQLAlchemy applies column defaults only when an object is flushed, so freshly built "
        "models had None where the tests expected their defaults (and uuid primary keys were never "
        "generated). Each model's constructor now fills in the declared defaults for attributes "
        "the caller did not pass, then calls super().__init__(**kwargs): " + "; ".join(done) + "."
    )
    if skipped:
        text += f" Left alone (their own __init__ takes no **kwargs): {', '.join(skipped)}."
    return text
