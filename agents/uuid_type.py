"""Replace made-up string ids ("test-id", "evt-001", f"load-{n}") in tests with real UUIDs.

The code under test parses ids as UUIDs (`uuid.UUID(x)`, `x.hex`, a pydantic `UUID` field), so a
readable fake id fails before the test reaches what it tests. The fix keeps the tests' meaning:
the same fake id becomes the same UUID everywhere in the file (a module constant when it is
reused), derived with uuid5 from the original text so reruns and diffs are stable; a one-off
payload id or an id built in a loop becomes a fresh `uuid.uuid4()`.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any, TypeGuard

import libcst as cst

from orchestrator.agents.codemod import Files, decline, failure_text, test_files
from orchestrator.agents.syntax import (
    dotted,
    import_position,
    string_value,
    with_import,
    with_string,
)
from orchestrator.models import Proposal, WorkOrder

ID_NAME = re.compile(r"^(id|uuid|guid|pk)s?$|(_id|_uuid|_guid|Id|ID|Uuid)s?$")
ID_VALUE = re.compile(r"(^|[-_])(id|uuid|guid)([-_]|$)", re.IGNORECASE)
TOKEN = re.compile(r"[\w.:-]{1,80}")
# The code wants a uuid.UUID object, not a string in UUID format.
WANTS_OBJECT = re.compile(r"'str' object has no attribute '(hex|int|bytes|version|urn)'")
NAMESPACE = uuid.UUID("6ba7b811-9dad-11d1-80b4-00c04fd430c8")  # uuid.NAMESPACE_URL


class UuidType:
    name = "uuid_type"

    def __init__(self, **kwargs: Any) -> None:
        """No options: this specialist is a deterministic codemod."""

    def propose(self, order: WorkOrder, worktree: Path, feedback: list[str]) -> Proposal:
        files = Files(worktree)
        as_object = WANTS_OBJECT.search(failure_text(order)) is not None
        notes: list[str] = []
        for path in test_files(order, files):
            module = files.parse(path)
            if module is None:
                continue
            found = _Collect()
            module.visit(found)
            if not (found.seeds or found.fstrings or found.uuid_args):
                continue
            fixer = _Replace(found, module, as_object)
            module = _add_constants(module.visit(fixer), fixer.constants)
            if re.search(r"\buuid\.", module.code):  # constants included: they may be the only use
                module = with_import(module, "uuid")
            files.write(path, module)
            notes.append(_describe(path, fixer))
        if not notes:
            return decline(
                "No made-up id (a non-UUID string assigned to an id, passed as one, or given to "
                "uuid.UUID) was found in the failing tests or their conftest files."
            )
        kind = "uuid.UUID objects" if as_object else "UUID strings"
        return Proposal(
            explanation=(
                f"The code under test expects real UUIDs but the tests passed made-up ids. "
                f"Replaced them with {kind} (stable uuid5 values derived from the old text; "
                f"fresh uuid4 values for one-off payload ids and ids built in loops): "
                + "; ".join(notes)
                + "."
            )
        )


def is_fake_id(value: str | None) -> TypeGuard[str]:
    """A short token that is not a UUID: what tests make up for ids."""
    if not value or not TOKEN.fullmatch(value):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return True
    return False


def stable_uuid(value: str) -> str:
    return str(uuid.uuid5(NAMESPACE, value))


class _Collect(cst.CSTVisitor):
    """Find the fake ids: strings in id positions, f-strings built as ids, uuid.UUID("...") args."""

    def __init__(self) -> None:
        super().__init__()
        self.seeds: set[str] = set()
        self.fstrings: set[int] = set()  # ids of FormattedString nodes to replace
        self.uuid_args: set[int] = set()  # ids of strings passed straight to uuid.UUID
        self.payload: set[int] = set()  # ids of strings that are dict values (JSON payloads)
        self.keys: set[int] = set()  # ids of dict keys and subscripts: names, never ids
        self.counts: dict[str, int] = {}
        self.names: set[str] = set()
        self.functions: list[str] = []

    def _id_value(self, value: cst.BaseExpression) -> None:
        if isinstance(value, cst.FormattedString):
            self.fstrings.add(id(value))
        elif isinstance(value, cst.List | cst.Tuple):
            for element in value.elements:
                self._id_value(element.value)
        elif is_fake_id(text := string_value(value)):
            self.seeds.add(text)

    def visit_Name(self, node: cst.Name) -> None:
        self.names.add(node.value)

    def visit_SimpleString(self, node: cst.SimpleString) -> None:
        value = string_value(node)
        if value is not None:
            self.counts[value] = self.counts.get(value, 0) + 1
            if is_fake_id(value) and ID_VALUE.search(value) and not ID_NAME.search(value):
                self.seeds.add(value)

    def visit_SubscriptElement(self, node: cst.SubscriptElement) -> None:
        if isinstance(node.slice, cst.Index):
            self.keys.add(id(node.slice.value))

    def visit_Assign(self, node: cst.Assign) -> None:
        if any(ID_NAME.search(dotted(t.target).rsplit(".", 1)[-1]) for t in node.targets):
            self._id_value(node.value)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None and ID_NAME.search(dotted(node.target).rsplit(".", 1)[-1]):
            self._id_value(node.value)

    def visit_Arg(self, node: cst.Arg) -> None:
        if node.keyword is not None and ID_NAME.search(node.keyword.value):
            self._id_value(node.value)

    def visit_DictElement(self, node: cst.DictElement) -> None:
        self.keys.add(id(node.key))
        if isinstance(node.value, cst.SimpleString):
            self.payload.add(id(node.value))
        if ID_NAME.search(string_value(node.key) or ""):
            self._id_value(node.value)

    def visit_Call(self, node: cst.Call) -> None:
        if dotted(node.func).rsplit(".", 1)[-1] == "UUID" and node.args:
            arg = node.args[0].value
            if is_fake_id(string_value(arg)):
                self.uuid_args.add(id(arg))

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.functions.append(node.name.value)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self.functions.pop()

    def visit_Return(self, node: cst.Return) -> None:
        if node.value is not None and self.functions and ID_NAME.search(self.functions[-1]):
            self._id_value(node.value)


class _Replace(cst.CSTTransformer):
    """Put real UUIDs where the collector found fake ids; reused ids become module constants."""

    def __init__(self, found: _Collect, module: cst.Module, as_object: bool) -> None:
        super().__init__()
        self.found = found
        self.as_object = as_object
        self.constants: dict[str, tuple[str, str]] = {}  # fake id -> (constant name, code)
        self.replaced: set[str] = set()
        self.generated = 0
        self.taken = set(found.names)

    def leave_SimpleString(self, original: cst.SimpleString, updated: cst.SimpleString) -> Any:
        value = string_value(original)
        if value is None:  # a bytes literal: never an id
            return updated
        if id(original) in self.found.uuid_args:
            self.replaced.add(value)
            return with_string(updated, stable_uuid(value))
        if value not in self.found.seeds or id(original) in self.found.keys:
            return updated
        self.replaced.add(value)
        if self.found.counts.get(value, 0) > 1:
            return cst.Name(self._constant(value, original))
        if id(original) in self.found.payload and not self.as_object:
            self.generated += 1
            return cst.parse_expression("str(uuid.uuid4())")
        return self._literal(value, original)

    def leave_FormattedString(self, original: cst.FormattedString, updated: Any) -> Any:
        if id(original) not in self.found.fstrings:
            return updated
        self.generated += 1
        return cst.parse_expression("uuid.uuid4()" if self.as_object else "str(uuid.uuid4())")

    def _literal(self, value: str, original: cst.SimpleString) -> cst.BaseExpression:
        text = with_string(original, stable_uuid(value)).value
        return cst.parse_expression(f"uuid.UUID({text})" if self.as_object else text)

    def _constant(self, value: str, original: cst.SimpleString) -> str:
        if value not in self.constants:
            base = re.sub(r"\W+", "_", value).strip("_").upper() or "FAKE_ID"
            name = base if base[0].isalpha() else f"ID_{base}"
            candidate, n = name, 2
            while candidate in self.taken:
                candidate, n = f"{name}_{n}", n + 1
            self.taken.add(candidate)
            self.constants[value] = (
                candidate,
                cst.Module([]).code_for_node(self._literal(value, original)),
            )
        return self.constants[value][0]


def _add_constants(module: cst.Module, constants: dict[str, tuple[str, str]]) -> cst.Module:
    """Module-level constants for reused ids, placed after the imports."""
    if not constants:
        return module
    lines = [cst.parse_statement(f"{name} = {code}\n") for name, code in constants.values()]
    comment = cst.EmptyLine(comment=cst.Comment("# Real UUIDs for the ids these tests share."))
    lines[0] = lines[0].with_changes(leading_lines=[cst.EmptyLine(), comment])
    body = list(module.body)
    body[import_position(body) : import_position(body)] = lines
    return module.with_changes(body=body)


def _describe(path: str, fixer: _Replace) -> str:
    text = f"{len(fixer.replaced)} fake id(s) in {path}"
    if fixer.constants:
        text += " (shared as " + ", ".join(name for name, _ in fixer.constants.values()) + ")"
    if fixer.generated:
        text += f", {fixer.generated} now made fresh with uuid.uuid4()"
    return text
