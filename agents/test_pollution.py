"""Make polluting tests clean up after themselves.

Isolation runs name the polluter (a test that passes but leaves state behind) and the leak.
The fix goes into the polluter, not the victim: its raw mutations of process-wide state become
`monkeypatch` calls, which pytest undoes after the test. When the polluter changes the state
only indirectly (through the code it calls), an autouse fixture in its conftest restores exactly
the leaked item after every test.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import cast

import libcst as cst
import libcst.matchers as m

from orchestrator.agents import codemod, syntax
from orchestrator.models import Leak, Proposal, WorkOrder

_POLLUTER_KINDS = ("polluter", "state_setter", "pair")
_PATCH_FUNCS = ("patch", "mock.patch", "unittest.mock.patch")


class TestPollution:
    __test__ = False  # not a pytest test class
    name = "test_pollution"

    def __init__(self, **kwargs: object) -> None:
        """No settings; unknown keyword arguments are accepted so every specialist loads alike."""

    def propose(self, order: WorkOrder, worktree: Path, feedback: list[str]) -> Proposal:
        polluters = _polluters(order)
        if not polluters:
            return codemod.decline("test_pollution: isolation named no polluter for these tests")
        changes: list[str] = []
        problems: list[str] = []
        for nodeid, leaks in polluters.items():
            done = _fix_polluter(worktree, nodeid, problems)
            if not done:
                done = _restore_fixture(worktree, nodeid, leaks, problems)
            changes += done
        if not changes:
            return codemod.decline("test_pollution: " + "; ".join(problems))
        extra = f" Not changed: {'; '.join(problems)}." if problems else ""
        return Proposal(
            explanation=(
                "The polluting tests changed process-wide state without restoring it, so later "
                f"tests saw it. Now pytest restores it after each of them: {'; '.join(changes)}.{extra}"
            )
        )


def _polluters(order: WorkOrder) -> dict[str, list[Leak]]:
    """Polluter node id -> the leaks recorded for it, from the isolation findings."""
    found: dict[str, list[Leak]] = {}
    for finding in order.findings:
        if finding.kind in _POLLUTER_KINDS:
            for culprit in finding.culprits:
                found.setdefault(culprit, []).extend(finding.leaks.get(culprit, []))
    for failure in order.failures:
        if failure.polluter:
            found.setdefault(failure.polluter, [])
    return found


# --- the polluter's own mutations ------------------------------------------------------------


def _fix_polluter(worktree: Path, nodeid: str, problems: list[str]) -> list[str]:
    """Rewrite raw state mutations in the polluting test into monkeypatch calls."""
    found = codemod.find_test(worktree, nodeid)
    if found is None:
        problems.append(f"{nodeid}: test not found in the worktree")
        return []
    path, module, func, owner = found
    if syntax.is_unittest_class(owner):
        problems.append(f"{nodeid}: unittest.TestCase methods take no pytest fixtures")
        return []
    fixer = _Mutations(syntax.imported_names(module), _locals(func))
    new = cast(cst.FunctionDef, func.visit(fixer))  # the transformer keeps the function
    new, patcher_notes = _stop_patchers(new, fixer)
    notes = fixer.notes + patcher_notes
    if not notes:
        return []
    for fixture in fixer.fixtures:
        with_fixture = syntax.add_param(new, fixture)
        if with_fixture is None:
            problems.append(f"{nodeid}: can't add the {fixture} fixture to its signature")
            return []
        new = with_fixture
    syntax.write(path, cast(cst.Module, module.deep_replace(func, new)))
    return [f"{nodeid}: {', '.join(notes)}"]


def _locals(func: cst.FunctionDef) -> set[str]:
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


class _Mutations(cst.CSTTransformer):
    """Turns env, module attribute, global and cwd mutations into monkeypatch calls."""

    def __init__(self, imports: dict[str, str], local_names: set[str]) -> None:
        self.imports = imports
        self.local_names = local_names
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
            return cst.Expr(_call("monkeypatch.setenv", key, value))
        if isinstance(target, cst.Attribute) and self._is_module_state(target.value):
            owner = syntax.dotted(target.value)
            self._use("monkeypatch", f"{owner}.{target.attr.value} = -> monkeypatch.setattr")
            attr = cst.SimpleString(f'"{target.attr.value}"')
            return cst.Expr(_call("monkeypatch.setattr", target.value, attr, value))
        if isinstance(target, cst.Name) and target.value in self.globals:
            self._use(
                "monkeypatch", f"global {target.value} = -> monkeypatch.setitem(globals(), ...)"
            )
            key = cst.SimpleString(f'"{target.value}"')
            return cst.Expr(
                _call("monkeypatch.setitem", cst.parse_expression("globals()"), key, value)
            )
        return updated

    def leave_Del(self, original: cst.Del, updated: cst.Del) -> cst.BaseSmallStatement:
        key = self._environ_key(updated.target)
        if key is not None:
            self._use("monkeypatch", "del os.environ[...] -> monkeypatch.delenv")
            return cst.Expr(_call("monkeypatch.delenv", key, raising=False))
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
            return cst.Expr(_call("monkeypatch.delenv", call.args[0].value, raising=False))
        name = syntax.dotted(func)
        root = name.split(".")[0]
        if (
            f"{self.imports.get(root, root)}{name[len(root) :]}" == "os.chdir"
            and len(call.args) == 1
        ):
            self._use("monkeypatch", "os.chdir -> monkeypatch.chdir")
            return cst.Expr(_call("monkeypatch.chdir", call.args[0].value))
        return updated


def _stop_patchers(func: cst.FunctionDef, fixer: _Mutations) -> tuple[cst.FunctionDef, list[str]]:
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


# --- leaks made by the code the polluter calls -----------------------------------------------


def _restore_fixture(
    worktree: Path, nodeid: str, leaks: list[Leak], problems: list[str]
) -> list[str]:
    """An autouse fixture in the polluter's conftest that restores the one leaked item."""
    rel = codemod.split_nodeid(nodeid)[0]
    conftest = codemod.resolve_inside(worktree, Path(rel).parent / "conftest.py")
    if conftest is None:
        problems.append(f"{nodeid}: conftest outside the worktree")
        return []
    fixtures = [f for leak in leaks for f in _fixtures_for(worktree, leak)]
    if not fixtures:
        told = "; ".join(leak.describe() for leak in leaks) or "no leak recorded"
        problems.append(
            f"{nodeid}: no state mutation in the test, and unclear what to reset ({told})"
        )
        return []
    module = (
        syntax.parse(conftest)
        if conftest.is_file()
        else cst.parse_module("import os\n\nimport pytest\n")
    )
    if module is None:
        problems.append(f"{nodeid}: {codemod.relative(worktree, conftest)} does not parse")
        return []
    existing = {f.name.value for f, _ in syntax.functions(module)}
    added: list[str] = []
    for name, source, imports in fixtures:
        if name in existing:
            continue
        doc = f'    """Restore what {nodeid} leaves behind via the code it calls."""\n'
        text = source.replace("__DOC__\n", doc)
        module = syntax.append_code(module, text)
        for imported in ("os", "pytest", *imports):
            module = syntax.with_import(module, imported)
        existing.add(name)
        added.append(name)
    if not added:
        return []
    syntax.write(conftest, module)
    return [
        f"{codemod.relative(worktree, conftest)}: autouse fixture {', '.join(added)} (for {nodeid})"
    ]


def _fixtures_for(worktree: Path, leak: Leak) -> list[tuple[str, str, list[str]]]:
    """(fixture name, source, imports) restoring what one leak changed; [] when unclear."""
    if leak.kind == "env":
        var = leak.key
        name = f"_restore_env_{var.lower()}"
        source = f"""
            @pytest.fixture(autouse=True)
            def {name}():
            __DOC__
                saved = os.environ.get("{var}")
                yield
                if saved is None:
                    os.environ.pop("{var}", None)
                else:
                    os.environ["{var}"] = saved
            """
        return [(name, textwrap.dedent(source), [])]
    if leak.kind == "cwd":
        source = """
            @pytest.fixture(autouse=True)
            def _restore_cwd():
            __DOC__
                saved = os.getcwd()
                yield
                os.chdir(saved)
            """
        return [("_restore_cwd", textwrap.dedent(source), [])]
    if leak.kind == "attr" and leak.old is not None:  # rebound, not added
        owner, _, attr = leak.key.rpartition(".")
        if codemod.module_file(worktree, owner) is None:
            return []
        name = f"_restore_{owner.replace('.', '_')}_{attr}"
        source = f"""
            @pytest.fixture(autouse=True)
            def {name}():
            __DOC__
                saved = {owner}.{attr}
                yield
                {owner}.{attr} = saved
            """
        return [(name, textwrap.dedent(source), [owner])]
    return []
