"""The missing undo of a polluting unittest class: a `MonkeyPatch()` never undone, a patcher
started and never stopped. unittest methods take no pytest fixtures, so the undo is registered
where the patching object is made: `self.addCleanup(self.mp.undo)` after it (in `setUpClass`,
`cls.addClassCleanup`), which runs even when the test fails."""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m

from orchestrator.agents import syntax

_MONKEYPATCH = ("MonkeyPatch", "pytest.MonkeyPatch", "_pytest.monkeypatch.MonkeyPatch")
_PATCHERS = ("patch", "mock.patch", "unittest.mock.patch")


def add_cleanups(module: cst.Module, owner: cst.ClassDef) -> tuple[cst.Module, list[str]]:
    """The module with every undone MonkeyPatch and unstopped patcher of `owner` cleaned up."""
    undone = _undone(owner)
    if not undone:
        return module, []
    notes: list[str] = []
    replacements: dict[cst.CSTNode, cst.CSTNode] = {}
    for func, cls in syntax.functions(module):
        if cls is not owner:
            continue
        receiver = "cls" if _is_classmethod(func) else "self"
        register = "addClassCleanup" if receiver == "cls" else "addCleanup"
        body: list[cst.BaseStatement] = []
        for stmt in syntax.statements(func):
            body.append(stmt)
            for name, undo in _made_here(stmt, undone):
                line = f"{receiver}.{register}({name}.{undo})"
                body.append(cst.parse_statement(line + "\n"))
                never = "undone" if undo == "undo" else "stopped"
                notes.append(f"{name} never {never} -> {line} in {func.name.value}")
        if len(body) != len(syntax.statements(func)):
            replacements[func] = syntax.with_body(func, body)
    return syntax.replace_nodes(module, replacements), notes


def _undone(owner: cst.ClassDef) -> dict[str, str]:
    """Patching objects of the class that are never undone: name -> "undo" | "stop"."""
    made: dict[str, str] = {}
    for assign in syntax.find_all(owner, m.Assign(), cst.Assign):
        if len(assign.targets) != 1 or not isinstance(assign.value, cst.Call):
            continue
        callee = syntax.dotted(assign.value.func)
        name = syntax.dotted(assign.targets[0].target)
        if callee in _MONKEYPATCH:
            made[name] = "undo"
        elif callee.removesuffix(".object").removesuffix(".dict") in _PATCHERS:
            made[name] = "stop"
    started = _called(owner, "start")
    stopped = _called(owner, "undo") | _called(owner, "stop")
    return {
        name: undo
        for name, undo in made.items()
        if _same(name, stopped) is None and (undo == "undo" or _same(name, started))
    }


def _called(owner: cst.ClassDef, method: str) -> set[str]:
    """Receivers of `x.method()` calls and of `method` references (`addCleanup(x.stop)`)."""
    found = set()
    for attr in syntax.find_all(owner, m.Attribute(attr=m.Name(method)), cst.Attribute):
        found.add(syntax.dotted(attr.value))
    return found


def _same(name: str, names: set[str]) -> str | None:
    """`self.mp` and `cls.mp` are one attribute of the class."""
    bare = name.removeprefix("self.").removeprefix("cls.")
    return next((n for n in names if n.removeprefix("self.").removeprefix("cls.") == bare), None)


def _made_here(stmt: cst.BaseStatement, undone: dict[str, str]) -> list[tuple[str, str]]:
    """The patching objects this statement makes (a MonkeyPatch) or starts (a patcher)."""
    found = []
    for assign in syntax.find_all(stmt, m.Assign(), cst.Assign):
        name = syntax.dotted(assign.targets[0].target)
        if undone.get(name) == "undo":
            found.append((name, "undo"))
    for call in syntax.find_all(stmt, m.Call(func=m.Attribute(attr=m.Name("start"))), cst.Call):
        assert isinstance(call.func, cst.Attribute)  # the matcher asked for one
        name = syntax.dotted(call.func.value)
        if undone.get(name) == "stop":
            found.append((name, "stop"))
    return found


def _is_classmethod(func: cst.FunctionDef) -> bool:
    return any(syntax.dotted(d.decorator) == "classmethod" for d in func.decorators)
