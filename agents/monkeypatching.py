"""Raw mutations of process-wide state, rewritten as `monkeypatch` calls pytest undoes.

`os.environ[k] = v`, `del os.environ[k]`, `os.environ.pop(k)`, `os.environ.update({...})`,
`module.attr = v`, `global X; X = v` and `os.chdir(p)` become the matching `monkeypatch` (or, in a
wider-scoped fixture, `mp` of a `pytest.MonkeyPatch.context()`) call; a `patcher.start()` never
stopped gets its stop registered as a finalizer.
"""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m

from orchestrator.agents import syntax

_PATCH_FUNCS = ("patch", "mock.patch", "unittest.mock.patch")


def local_names(func: cst.FunctionDef) -> set[str]:
    """Names bound inside the test (parameters, assignments): these are not module state."""
    names = set(syntax.param_names(func))
    for assign in syntax.find_all(func, m.AssignTarget(target=m.Name()), cst.AssignTarget):
        names.add(syntax.dotted(assign.target))
    return names


def _call(func: str, *args: cst.BaseExpression, raising: bool | None = None) -> cst.Call:
    arguments = [cst.Arg(a) for a in args]
    if raising is not None:
        arguments.append(
            cst.Arg(
                cst.Name(str(raising)),
                keyword=cst.Name("raising"),
                equal=cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace("")),
            )
        )
    return cst.Call(cst.parse_expression(func), arguments)


class Mutations(cst.CSTTransformer):
    """Turns env, module attribute, global and cwd mutations into monkeypatch calls."""

    def __init__(
        self, imports: dict[str, str], local_names: set[str], mp: str = "monkeypatch"
    ) -> None:
        self.imports = imports
        self.local_names = local_names
        self.mp = mp  # the MonkeyPatch the calls go to: the fixture, or a context's name
        self.globals: set[str] = set()
        self.notes: list[str] = []
        self.fixtures: list[str] = []

    def _use(self, fixture: str, note: str) -> None:
        self.notes.append(note)
        if fixture not in self.fixtures:
            self.fixtures.append(fixture)

    def _is_environ(self, node: cst.BaseExpression) -> bool:
        name = syntax.dotted(node)
        root = name.split(".")[0]
        return bool(name) and f"{self.imports.get(root, root)}{name[len(root) :]}" == "os.environ"

    def _is_module_state(self, node: cst.BaseExpression) -> bool:
        root = syntax.dotted(node).split(".")[0]
        return root in self.imports and root not in self.local_names

    def visit_Global(self, node: cst.Global) -> None:
        self.globals |= {n.name.value for n in node.names}

    def leave_Assign(self, original: cst.Assign, updated: cst.Assign) -> cst.BaseSmallStatement:
        if len(updated.targets) != 1:
            return updated
        target, value = updated.targets[0].target, updated.value
        key = self._environ_key(target)
        if key is not None:
            self._use("monkeypatch", "os.environ[...] = -> monkeypatch.setenv")
            return cst.Expr(_call(f"{self.mp}.setenv", key, value))
        if isinstance(target, cst.Attribute) and self._is_module_state(target.value):
            owner = syntax.dotted(target.value)
            self._use("monkeypatch", f"{owner}.{target.attr.value} = -> monkeypatch.setattr")
            attr = cst.SimpleString(f'"{target.attr.value}"')
            return cst.Expr(_call(f"{self.mp}.setattr", target.value, attr, value))
        if isinstance(target, cst.Name) and target.value in self.globals:
            self._use(
                "monkeypatch", f"global {target.value} = -> monkeypatch.setitem(globals(), ...)"
            )
            key = cst.SimpleString(f'"{target.value}"')
            return cst.Expr(
                _call(f"{self.mp}.setitem", cst.parse_expression("globals()"), key, value)
            )
        return updated

    def leave_Del(self, original: cst.Del, updated: cst.Del) -> cst.BaseSmallStatement:
        key = self._environ_key(updated.target)
        if key is not None:
            self._use("monkeypatch", "del os.environ[...] -> monkeypatch.delenv")
            return cst.Expr(_call(f"{self.mp}.delenv", key, raising=False))
        return updated

    def _environ_key(self, target: cst.BaseExpression) -> cst.BaseExpression | None:
        """The key of an `os.environ[key]` target, else None."""
        if (
            isinstance(target, cst.Subscript)
            and self._is_environ(target.value)
            and len(target.slice) == 1
            and isinstance(target.slice[0].slice, cst.Index)
        ):
            return target.slice[0].slice.value
        return None

    def leave_SimpleStatementLine(
        self, original: cst.SimpleStatementLine, updated: cst.SimpleStatementLine
    ) -> cst.BaseStatement | cst.FlattenSentinel[cst.BaseStatement]:
        """`os.environ.update({"A": a, "B": b})` -> one `setenv` a key."""
        small = updated.body[0] if len(updated.body) == 1 else None
        call = small.value if isinstance(small, cst.Expr) else None
        if not (
            isinstance(call, cst.Call)
            and isinstance(call.func, cst.Attribute)
            and call.func.attr.value == "update"
            and self._is_environ(call.func.value)
            and len(call.args) == 1
            and isinstance(items := call.args[0].value, cst.Dict)
            and all(isinstance(e, cst.DictElement) for e in items.elements)
        ):
            return updated
        self._use("monkeypatch", f"os.environ.update -> {self.mp}.setenv")
        lines = [
            cst.SimpleStatementLine([cst.Expr(_call(f"{self.mp}.setenv", e.key, e.value))])
            for e in items.elements
            if isinstance(e, cst.DictElement)
        ]
        lines[0] = lines[0].with_changes(leading_lines=updated.leading_lines)
        return cst.FlattenSentinel(lines)

    def leave_Expr(self, original: cst.Expr, updated: cst.Expr) -> cst.BaseSmallStatement:
        call = updated.value
        if not isinstance(call, cst.Call) or not call.args or call.args[0].keyword is not None:
            return updated
        func = call.func
        if (
            isinstance(func, cst.Attribute)
            and func.attr.value == "pop"
            and self._is_environ(func.value)
        ):
            self._use("monkeypatch", "os.environ.pop -> monkeypatch.delenv")
            return cst.Expr(_call(f"{self.mp}.delenv", call.args[0].value, raising=False))
        name = syntax.dotted(func)
        root = name.split(".")[0]
        if (
            f"{self.imports.get(root, root)}{name[len(root) :]}" == "os.chdir"
            and len(call.args) == 1
        ):
            self._use("monkeypatch", "os.chdir -> monkeypatch.chdir")
            return cst.Expr(_call(f"{self.mp}.chdir", call.args[0].value))
        return updated


def stop_patchers(func: cst.FunctionDef, fixer: Mutations) -> tuple[cst.FunctionDef, list[str]]:
    """After each `patcher.start()` the test never stops, register the stop as a finalizer."""
    stopped = {
        syntax.dotted(c.func.value)
        for c in syntax.find_all(func, m.Call(), cst.Call)
        if isinstance(c.func, cst.Attribute) and c.func.attr.value == "stop"
    }
    patchers: dict[str, str] = {}  # variable -> how the test spells `patch`
    body: list[cst.BaseStatement] = []
    notes: list[str] = []
    one_target = m.Assign(targets=[m.AssignTarget(target=m.Name())])
    for stmt in syntax.statements(func):
        body.append(stmt)
        for call in syntax.find_all(stmt, m.Call(), cst.Call):
            patch_name = syntax.dotted(call.func)
            for assign in syntax.find_all(stmt, one_target, cst.Assign):
                if assign.value is call and _is_patch_func(patch_name):
                    patchers[syntax.dotted(assign.targets[0].target)] = patch_name
            if not (isinstance(call.func, cst.Attribute) and call.func.attr.value == "start"):
                continue
            started = call.func.value
            if (
                isinstance(started, cst.Name)
                and started.value in patchers
                and started.value not in stopped
            ):
                stop = f"{started.value}.stop"
            elif isinstance(started, cst.Call) and _is_patch_func(syntax.dotted(started.func)):
                stop = f"{syntax.dotted(started.func).split('.object')[0]}.stopall"
            else:
                continue
            body.append(
                cst.SimpleStatementLine(
                    [cst.Expr(cst.parse_expression(f"request.addfinalizer({stop})"))]
                )
            )
            notes.append(f"un-stopped patcher -> request.addfinalizer({stop})")
            if "request" not in fixer.fixtures:
                fixer.fixtures.append("request")
    return (syntax.with_body(func, body) if notes else func), notes


def _is_patch_func(name: str) -> bool:
    return (
        name in _PATCH_FUNCS or name.removesuffix(".object").removesuffix(".dict") in _PATCH_FUNCS
    )
