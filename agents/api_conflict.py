"""Make hard-coded unique test data (names, emails, slugs) unique per test run.

Tests that create `{"name": "test_module"}` against a shared database collide with each other (and
with earlier runs): the second create gets a 409 or an IntegrityError. The fix keeps the readable
prefix and adds a short random suffix, `f"test_module_{uuid.uuid4().hex[:8]}"`. When the test uses
the same literal again (an assertion, a lookup), the value is hoisted into a local variable first,
so every use still sees the one value the test created: what is asserted does not change.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

import libcst as cst
import libcst.matchers as m

from orchestrator.agents.codemod import (
    Files,
    decline,
    failing_tests,
    failure_text,
    imported_files,
    test_files,
)
from orchestrator.agents.syntax import (
    dotted,
    find_all,
    param_names,
    statements,
    string_value,
    with_body,
    with_import,
)
from orchestrator.models import Proposal, WorkOrder

UNIQUE_FIELDS = {
    "name", "email", "slug", "username", "title", "code", "key", "handle", "login", "sku",
    "display_name", "module_name", "user_name",
}  # fmt: skip
UNIQUE_COLUMNS = (
    re.compile(r"UNIQUE constraint failed: ([\w.]+(?:, [\w.]+)*)"),  # sqlite
    re.compile(r"Key \(([\w, ]+)\)=\("),  # postgres
)
DECLARED_UNIQUE = (
    # `email = Column(String, unique=True)`, `email: Mapped[str] = mapped_column(unique=True)`,
    # Django's `email = models.EmailField(unique=True)`
    re.compile(r"^\s*(\w+)\s*(?::[^=\n]*)?=\s*[\w.]+\([^\n]*\bunique\s*=\s*True", re.M),
    re.compile(r"(\w+)\s+\w+(?:\(\d+\))?(?:\s+NOT\s+NULL)?\s+UNIQUE\b", re.I),  # SQL
)
UNIQUE_CONSTRAINT = re.compile(r"UniqueConstraint\(([^)]*)\)")
SUFFIX = "{uuid.uuid4().hex[:8]}"


class ApiConflict:
    name = "api_conflict"

    def __init__(self, **kwargs: Any) -> None:
        """No options: this specialist is a deterministic codemod."""

    def propose(self, order: WorkOrder, worktree: Path, feedback: list[str]) -> Proposal:
        files = Files(worktree)
        # Per failure: one naming `users.username` must not hide the usual fields from a bare 409.
        texts = [f"{f.message}\n{f.longrepr or ''}" for f in order.failures]
        declared = declared_unique(files)
        fields = set().union(*(unique_fields(t, declared) for t in texts or [failure_text(order)]))
        wanted = set().union(*failing_tests(order).values())
        tests = test_files(order, files)
        helpers = [p for p in imported_files(files, tests) if _is_test_side(p)]
        modules = {path: tree for path in [*tests, *helpers] if (tree := files.parse(path))}
        targets = _targets(modules, wanted)
        elsewhere = _literals_by_function(modules)
        constants = _constants(modules, fields)
        notes: list[str] = []
        for path, module in modules.items():
            fixer = _Uniquify(fields, targets.get(path, {}), elsewhere, constants)
            module = module.visit(fixer)
            if fixer.notes:
                files.write(path, with_import(module, "uuid"))
                notes += [f"{note} in {path}" for note in fixer.notes]
        if not notes:
            looked = ", ".join(
                f"{path} ({', '.join(f'{k} {n}' for n, k in sorted(targets.get(path, {}).items()))})"
                for path in modules
            )
            held = f"; constants with unique values: {', '.join(constants)}" if constants else ""
            return decline(
                f"No hard-coded value for a unique field ({', '.join(sorted(fields))}) was found "
                f"in the failing tests or their fixtures; looked at {looked or 'no test file'}{held}."
            )
        return Proposal(
            explanation=(
                "The tests create records with hard-coded values for unique fields, so they collide "
                "in the shared database (409 / UNIQUE constraint). Each value now gets a random "
                "suffix, keeping its readable prefix; values the test uses again were hoisted into "
                "a local variable so assertions compare with what was created: "
                + "; ".join(notes)
                + "."
            )
        )


def unique_fields(text: str, declared: Iterable[str] = ()) -> set[str]:
    """The unique columns the failure names, else those the project declares unique, else the
    fields that are usually unique."""
    found: set[str] = set()
    for pattern in UNIQUE_COLUMNS:
        for match in pattern.finditer(text):
            found |= {part.strip().rsplit(".", 1)[-1] for part in match[1].split(",")}
    return found or set(declared) or set(UNIQUE_FIELDS)


def declared_unique(files: Files) -> set[str]:
    """The columns the project's models and SQL declare unique."""
    found: set[str] = set()
    for path in files.python_files():
        if _is_test_side(path):
            continue
        source = files.read(path)
        if "unique" not in source.lower():
            continue
        for pattern in DECLARED_UNIQUE:
            for match in pattern.finditer(source):
                found |= set(match.groups())
        for match in UNIQUE_CONSTRAINT.finditer(source):
            found |= set(re.findall(r"""["'](\w+)["']""", match[1]))
    return found


def _is_test_side(path: str) -> bool:
    """Test modules, conftests and the helpers (factories, constants) next to them."""
    parts = Path(path).parts
    return any(p in ("tests", "test", "testing") for p in parts[:-1]) or parts[-1].startswith(
        ("test_", "conftest")
    )


def unique_code(value: str, quote: str) -> str:
    """`"test_module"` -> `f"test_module_{uuid.uuid4().hex[:8]}"` (emails keep their domain)."""
    text = value.replace("{", "{{").replace("}", "}}").replace("\\", "\\\\")
    local, at, domain = text.partition("@")
    if not at:
        local, domain = text, ""
    sep = " " if " " in local else "-" if "-" in local and "_" not in local else "_"
    return f"f{quote}{local}{sep}{SUFFIX}{at}{domain}{quote}"


def _is_fixture(func: cst.FunctionDef) -> bool:
    return any("fixture" in dotted(d.decorator) for d in func.decorators)


def _functions(module: cst.Module) -> list[cst.FunctionDef]:
    found: list[cst.FunctionDef] = []

    class Walk(cst.CSTVisitor):
        def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
            found.append(node)

    module.visit(Walk())
    return found


def _targets(modules: dict[str, cst.Module], tests: set[str]) -> dict[str, dict[str, str]]:
    """Path -> {function name: "test" | "fixture" | "factory"}: the failing tests, the fixtures
    they use and the helpers (factories) they and those fixtures call."""
    every = [f for m in modules.values() for f in _functions(m)]
    fixtures = {f.name.value for f in every if _is_fixture(f)}
    helpers = {f.name.value for f in every if not f.name.value.startswith("test")} - fixtures
    needed: set[str] = set()
    frontier = set(tests)
    while frontier:
        used = [f for f in every if f.name.value in frontier]
        params = {p.name.value for f in used for p in f.params.params}
        called = {dotted(c.func) for f in used for c in find_all(f, m.Call(), cst.Call)}
        frontier = ((params & fixtures) | (called & helpers)) - needed
        needed |= frontier
    kinds = {name: "fixture" if name in fixtures else "factory" for name in needed}
    return {
        path: {f.name.value: kinds.get(f.name.value, "test") for f in _functions(mod)
               if f.name.value in tests | needed}
        for path, mod in modules.items()
    }  # fmt: skip


def _strings(node: cst.CSTNode) -> list[str]:
    found: list[str] = []

    class Walk(cst.CSTVisitor):
        def visit_SimpleString(self, s: cst.SimpleString) -> None:
            value = string_value(s)
            if value is not None:
                found.append(value)

    node.visit(Walk())
    return found


def _literals_by_function(modules: dict[str, cst.Module]) -> dict[str, set[str]]:
    """Function name -> the string literals in it (to tell whether a fixture's value is shared)."""
    found: dict[str, set[str]] = {}
    for module in modules.values():
        for func in _functions(module):
            found.setdefault(func.name.value, set()).update(_strings(func))
    return found


def _seeds(func: cst.CSTNode, fields: set[str]) -> list[tuple[str, str]]:
    """(field, literal) pairs a function (or a dict) passes for unique fields, in order."""
    seeds: list[tuple[str, str]] = []

    class Walk(cst.CSTVisitor):
        def visit_DictElement(self, node: cst.DictElement) -> None:
            add(string_value(node.key), node.value)

        def visit_Arg(self, node: cst.Arg) -> None:
            add(node.keyword.value if node.keyword else None, node.value)

    def add(field: str | None, value: cst.BaseExpression) -> None:
        literal = string_value(value)
        if field in fields and literal and (field, literal) not in seeds:
            seeds.append((field, literal))

    func.visit(Walk())
    return seeds


Constants = dict[str, list[tuple[str, str]]]  # name -> its (field, literal) pairs


def _constants(modules: dict[str, cst.Module], fields: set[str]) -> Constants:
    """Module-level test data holding unique values: `WIDGET = {"name": "widget", ...}` or
    `ANN = dict(email="ann@example.com")`, in the test modules, conftests and helpers."""
    found: Constants = {}
    for module in modules.values():
        for stmt in module.body:
            for small in stmt.body if isinstance(stmt, cst.SimpleStatementLine) else []:
                if not (isinstance(small, cst.Assign) and len(small.targets) == 1):
                    continue
                target, value = small.targets[0].target, small.value
                is_data = isinstance(value, cst.Dict) or (
                    isinstance(value, cst.Call) and dotted(value.func) == "dict"
                )
                if isinstance(target, cst.Name) and is_data and (seeds := _seeds(value, fields)):
                    found[target.value] = seeds
    return found


def _loaded_names(func: cst.FunctionDef) -> set[str]:
    """Names the function reads (not attribute names, keywords or parameters)."""
    found: set[str] = set()
    skip: set[int] = set()

    class Walk(cst.CSTVisitor):
        def visit_Attribute(self, node: cst.Attribute) -> None:
            skip.add(id(node.attr))

        def visit_Arg(self, node: cst.Arg) -> None:
            if node.keyword is not None:
                skip.add(id(node.keyword))

        def visit_Param(self, node: cst.Param) -> None:
            skip.add(id(node.name))

        def visit_Name(self, node: cst.Name) -> None:
            if id(node) not in skip:
                found.add(node.value)

    func.visit(Walk())
    return found - set(param_names(func))


class _Rename(cst.CSTTransformer):
    """Read `new` wherever the function reads the module constant `old`."""

    def __init__(self, old: str, new: str) -> None:
        super().__init__()
        self.old, self.new = old, new

    def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> Any:
        return updated.with_changes(attr=original.attr)  # `x.WIDGET` is not the constant

    def leave_Arg(self, original: cst.Arg, updated: cst.Arg) -> Any:
        return updated.with_changes(keyword=original.keyword)

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> Any:
        return updated.with_changes(value=self.new) if original.value == self.old else updated


class _Uniquify(cst.CSTTransformer):
    """Rewrite the unique-field literals of the target functions; a failing test that posts a
    module constant gets its own copy with unique values."""

    def __init__(
        self,
        fields: set[str],
        targets: dict[str, str],
        elsewhere: dict[str, set[str]],
        constants: Constants,
    ):
        super().__init__()
        self.fields = fields
        self.targets = targets
        self.elsewhere = elsewhere
        self.constants = constants
        self.notes: list[str] = []

    def leave_FunctionDef(self, original: cst.FunctionDef, updated: cst.FunctionDef) -> Any:
        kind = self.targets.get(original.name.value)
        if kind is None:
            return updated
        literals = _strings(original)
        taken = _names(original)
        hoisted: list[cst.BaseStatement] = []
        used = _loaded_names(original) if kind == "test" else set()
        for constant in sorted(used & set(self.constants)):
            var = _fresh(constant.lower(), taken)
            values = ", ".join(
                f'"{f}": {unique_code(v, chr(34))}' for f, v in self.constants[constant]
            )
            hoisted.append(cst.parse_statement(f"{var} = {{**{constant}, {values}}}\n"))
            updated = cast(cst.FunctionDef, updated.visit(_Rename(constant, var)))
            self.notes.append(f"{constant} in {original.name.value} (now its copy `{var}`)")
        for field, value in _seeds(original, self.fields):
            if not self._safe(original.name.value, kind, value):
                continue
            if literals.count(value) > 1:
                var = _fresh(field, taken)
                code = unique_code(value, '"')
                hoisted.append(cst.parse_statement(f"{var} = {code}\n"))
                updated = cast(cst.FunctionDef, updated.visit(_Replace(value, var)))
                self.notes.append(f"{field} {value!r} in {original.name.value} (now `{var}`)")
            else:
                updated = cast(cst.FunctionDef, updated.visit(_Replace(value, None)))
                self.notes.append(f"{field} {value!r} in {original.name.value}")
        return _prepend(updated, hoisted) if hoisted else updated

    def _safe(self, function: str, kind: str, value: str) -> bool:
        """A fixture's or factory's value may be compared elsewhere: leave it when another
        function uses it."""
        if kind == "test":
            return True
        return not any(value in lits for name, lits in self.elsewhere.items() if name != function)


class _Replace(cst.CSTTransformer):
    """Replace one string literal in a function (not in dict keys or subscripts): by the hoisted
    variable `name`, or by its unique f-string when used once."""

    def __init__(self, value: str, name: str | None) -> None:
        super().__init__()
        self.value = value
        self.name = name
        self.skip: set[int] = set()

    def visit_DictElement(self, node: cst.DictElement) -> None:
        self.skip.add(id(node.key))

    def visit_SubscriptElement(self, node: cst.SubscriptElement) -> None:
        if isinstance(node.slice, cst.Index):
            self.skip.add(id(node.slice.value))

    def leave_SimpleString(self, original: cst.SimpleString, updated: cst.SimpleString) -> Any:
        if id(original) in self.skip or string_value(original) != self.value:
            return updated
        if self.name:
            return cst.Name(self.name)
        return cst.parse_expression(unique_code(self.value, original.quote[-1]))


def _names(func: cst.FunctionDef) -> set[str]:
    found: set[str] = set()

    class Walk(cst.CSTVisitor):
        def visit_Name(self, node: cst.Name) -> None:
            found.add(node.value)

    func.visit(Walk())
    return found


def _fresh(field: str, taken: set[str]) -> str:
    """A local variable name for the field's value that the function does not use yet."""
    name, n = field if field not in taken else f"unique_{field}", 2
    candidate = name
    while candidate in taken:
        candidate, n = f"{name}_{n}", n + 1
    taken.add(candidate)
    return candidate


def _prepend(func: cst.FunctionDef, lines: list[cst.BaseStatement]) -> cst.FunctionDef:
    """Insert statements at the top of a function body, after its docstring."""
    body = statements(func)
    start = (
        1 if body and isinstance(body[0], cst.SimpleStatementLine) and _docstring(body[0]) else 0
    )
    body[start:start] = lines
    return with_body(func, body)


def _docstring(line: cst.SimpleStatementLine) -> bool:
    small = line.body[0]
    return isinstance(small, cst.Expr) and isinstance(small.value, cst.SimpleString)
