"""SQLAlchemy 2.0's removals, rewritten with libcst (no tool covers them):

- `select([a, b])` -> `select(a, b)` (a second positional argument becomes `.where(...)`), and
  `case([(cond, value)])` -> `case((cond, value))`;
- `engine.execute(stmt)` -> `with engine.begin() as connection: connection.execute(stmt)`, for
  statements whose result is used inside the statement (`rows = engine.execute(q).fetchall()`);
- plain SQL strings given to `.execute()` -> `text("...")`.

Each rewrite is guided by the failures: only receivers and SQL strings the tracebacks and messages
name are touched, so a `sqlite3` cursor's `execute("...")` in the same file is left alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor

from orchestrator.agents.syntax import dotted, string_value

_NOT_EXECUTABLE = re.compile(r"Not an executable object: '((?:[^'\\]|\\.)*)'")
_TEXTUAL = re.compile(r"Textual SQL expression '((?:[^'\\]|\\.)*)' should be explicitly declared")
_NO_EXECUTE = re.compile(r"'(?:Engine|OptionEngine)' object has no attribute 'execute'")
# pytest's `>` line (the one that raised), its carets, then the AttributeError it raised
_RAISING_LINE = re.compile(
    r"^>\s+(.*)\n(?:[ \t]*[\^~]+[ \t]*\n|E .*\n)*?E\s+AttributeError: '(?:Engine|OptionEngine)' object has no attribute 'execute'",
    re.M,
)
_RECEIVER = re.compile(r"\b([A-Za-z_][\w.]*)\.execute\(")
_FETCH = frozenset(
    [
        "fetchall",
        "fetchone",
        "fetchmany",
        "first",
        "one",
        "one_or_none",
        "scalar",
        "scalars",
        "all",
        "mappings",
        "scalar_one",
        "scalar_one_or_none",
        "rowcount",
        "keys",
        "inserted_primary_key",
    ]
)


@dataclass
class Findings:
    """What the failures say SQLAlchemy 2.0 rejected."""

    select_list: bool = False
    engine_receivers: set[str] = field(default_factory=set)  # `engine` of `engine.execute(...)`
    sql_strings: set[str] = field(default_factory=set)  # plain SQL given to execute()

    @property
    def any(self) -> bool:
        return self.select_list or bool(self.engine_receivers or self.sql_strings)


def findings(text: str) -> Findings:
    found = Findings(select_list="Did you mean to say select(" in text or "case(" in text)
    found.sql_strings = {
        m.group(1) for rx in (_NOT_EXECUTABLE, _TEXTUAL) for m in rx.finditer(text)
    }
    if _NO_EXECUTE.search(text):
        lines = [m.group(1) for m in _RAISING_LINE.finditer(text)]
        found.engine_receivers = {r.group(1) for line in lines for r in _RECEIVER.finditer(line)}
    return found


def _matches(value: str, wanted: set[str]) -> bool:
    """SQLAlchemy shortens long statements in its message to 100 characters and '...'."""
    return any(value == w or (w.endswith("...") and value.startswith(w[:-3])) for w in wanted)


class Rewrite(cst.CSTTransformer):
    """The three rewrites over one module; `done` names each kind applied."""

    def __init__(self, found: Findings) -> None:
        super().__init__()
        self.found = found
        self.done: set[str] = set()
        self.text_receivers: set[str] = set()  # receivers seen executing a rejected SQL string
        self.skipped: list[str] = []  # engine.execute() uses left for a person, and why

    # --- select([...]) and case([...]) ---------------------------------------------------------

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        name = dotted(updated.func).rsplit(".", 1)[-1]
        if self.found.select_list and name in ("select", "case"):
            return self._unlist(updated, name)
        if dotted(updated.func).endswith(".execute") and updated.args:
            return self._texted(updated)
        return updated

    def _unlist(self, call: cst.Call, name: str) -> cst.BaseExpression:
        args = list(call.args)
        first = args[0] if args else None
        if first is None or first.keyword or first.star or not isinstance(first.value, cst.List):
            return call
        if any(isinstance(e, cst.StarredElement) for e in first.value.elements):
            return call
        extra = [a for a in args[1:] if not a.keyword]
        if name == "case" and extra or name == "select" and len(extra) > 1:
            return call
        elements = [cst.Arg(value=e.value) for e in first.value.elements]
        keywords = [a for a in args[1:] if a.keyword]
        new: cst.BaseExpression = call.with_changes(args=_commas([*elements, *keywords]))
        if extra:
            where = extra[0].with_changes(comma=cst.MaybeSentinel.DEFAULT)
            new = cst.Call(func=cst.Attribute(value=new, attr=cst.Name("where")), args=[where])
        self.done.add(f"{name}([...])")
        return new

    # --- text() ----------------------------------------------------------------------------------

    def _texted(self, call: cst.Call) -> cst.Call:
        first = call.args[0]
        value = string_value(first.value)
        receiver = dotted(call.func).rsplit(".", 1)[0]
        wanted = value is not None and _matches(value, self.found.sql_strings)
        if wanted:
            self.text_receivers.add(receiver)
        if value is None or not (wanted or receiver in self.text_receivers):
            return call
        wrapped = cst.Call(func=cst.Name("text"), args=[cst.Arg(value=first.value)])
        self.done.add("text()")
        return call.with_changes(args=[first.with_changes(value=wrapped), *call.args[1:]])

    # --- engine.execute() ------------------------------------------------------------------------

    def leave_SimpleStatementLine(
        self, original: cst.SimpleStatementLine, updated: cst.SimpleStatementLine
    ) -> cst.BaseStatement:
        if len(updated.body) != 1 or not self.found.engine_receivers:
            return updated
        stmt = updated.body[0]
        value = stmt.value if isinstance(stmt, cst.Expr | cst.Return | cst.Assign) else None
        call = _engine_call(value, self.found.engine_receivers)
        if call is None:
            return updated
        func = call.func
        assert isinstance(func, cst.Attribute)  # _engine_call() found `<receiver>.execute`
        receiver = dotted(func.value)
        if isinstance(stmt, cst.Assign) and call is value:
            self.skipped.append(f"the result of {receiver}.execute() is used after its statement")
            return updated
        connection = cst.Name("connection")
        new_call = call.with_changes(func=func.with_changes(value=connection))
        body = updated.with_changes(body=[stmt.deep_replace(call, new_call)], leading_lines=[])
        self.done.add(f"{receiver}.execute()")
        begin = cst.Call(func=cst.Attribute(value=func.value, attr=cst.Name("begin")))
        return cst.With(
            items=[cst.WithItem(item=begin, asname=cst.AsName(name=connection))],
            body=cst.IndentedBlock(body=[body]),
            leading_lines=updated.leading_lines,
        )


def _engine_call(node: cst.CSTNode | None, receivers: set[str]) -> cst.Call | None:
    """The `engine.execute(...)` call a statement makes, directly or under a fetch
    (`engine.execute(q).fetchall()`, `engine.execute(q).scalar()`)."""
    while node is not None:
        if isinstance(node, cst.Call):
            if isinstance(node.func, cst.Attribute) and node.func.attr.value == "execute":
                return node if dotted(node.func.value) in receivers else None
            node = node.func
        elif isinstance(node, cst.Attribute) and node.attr.value in _FETCH | {"execute"}:
            node = node.value
        else:
            return None
    return None


def _commas(args: list[cst.Arg]) -> list[cst.Arg]:
    """Arguments separated by ", " (the last one without a comma)."""
    comma = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    last = len(args) - 1
    return [
        a.with_changes(comma=cst.MaybeSentinel.DEFAULT if i == last else comma)
        for i, a in enumerate(args)
    ]


def rewrite(module: cst.Module, found: Findings) -> tuple[cst.Module, Rewrite]:
    """The module with SQLAlchemy 2.0's rewrites applied (and `text` imported when used)."""
    transformer = Rewrite(found)
    new = module.visit(transformer)
    if "text()" in transformer.done:
        context = CodemodContext()
        AddImportsVisitor.add_needed_import(context, "sqlalchemy", "text")
        new = AddImportsVisitor(context).transform_module(new)
    return new, transformer
