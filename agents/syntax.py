"""libcst helpers the codemods share: parse and write keeping formatting, find functions and
tests, edit parameters and imports, replace nodes."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TypeVar, cast

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor, RemoveImportsVisitor
from libcst.helpers import get_full_name_for_node
from libcst.matchers import BaseMatcherNode, findall

# `name=value` as PEP 8 writes a keyword argument (libcst's default puts spaces around `=`)
NO_SPACES = cst.AssignEqual(
    whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")
)


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


NodeT = TypeVar("NodeT", bound=cst.CSTNode)


def find_all(tree: cst.CSTNode, matcher: BaseMatcherNode, kind: type[NodeT]) -> list[NodeT]:
    """`m.findall()`, typed: the `kind` nodes under `tree` that `matcher` (a `kind` matcher) finds."""
    return [node for node in findall(tree, matcher) if isinstance(node, kind)]


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


def functions(module: cst.Module) -> Iterator[tuple[cst.FunctionDef, cst.ClassDef | None]]:
    """Module-level functions and methods of module-level classes, with their class."""
    for node in module.body:
        if isinstance(node, cst.FunctionDef):
            yield node, None
        elif isinstance(node, cst.ClassDef):
            for item in node.body.body:
                if isinstance(item, cst.FunctionDef):
                    yield item, node


def as_block(body: cst.BaseSuite) -> cst.IndentedBlock:
    """A body as an indented block, one statement a line: `def f(): a(); b()` and `class C: pass`
    hold no room for another statement (libcst cannot write a compound statement into them)."""
    if not isinstance(body, cst.SimpleStatementSuite):
        return cast(cst.IndentedBlock, body)
    lines = [
        cst.SimpleStatementLine([small.with_changes(semicolon=cst.MaybeSentinel.DEFAULT)])
        for small in body.body
    ]
    return cst.IndentedBlock(body=lines, header=body.trailing_whitespace)


BodyT = TypeVar("BodyT", cst.FunctionDef, cst.ClassDef)


def is_docstring(stmt: cst.CSTNode) -> bool:
    """A statement that is a plain string literal: a body's docstring when it comes first."""
    return (
        isinstance(stmt, cst.SimpleStatementLine)
        and isinstance(stmt.body[0], cst.Expr)
        and string_value(stmt.body[0].value) is not None
    )


def statements(node: cst.FunctionDef | cst.ClassDef) -> list[cst.BaseStatement]:
    """The statements of a function or class body, a one-line body included."""
    return list(as_block(node.body).body)


def with_body(node: BodyT, body: Sequence[cst.BaseStatement]) -> BodyT:
    """`node` with `body` as its statements, written as an indented block."""
    return node.with_changes(body=as_block(node.body).with_changes(body=list(body)))


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
    head = body[: import_position(body)]
    imports = [(i, *found) for i, stmt in enumerate(head) if (found := _imported(stmt))]
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


def import_position(body: Sequence[cst.CSTNode]) -> int:
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

    # A node may be swapped for one of another type, which libcst's CSTNodeT signature can't say.
    def on_leave(self, original: cst.CSTNode, updated: cst.CSTNode) -> cst.CSTNode:  # type: ignore[override]
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
