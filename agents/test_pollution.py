"""Make polluting tests clean up after themselves.

Isolation runs name the polluter (a test that passes but leaves state behind) and the leak.
The fix goes where the cause is: the polluter's raw mutations of process-wide state (or those of
the fixtures it uses) become `monkeypatch` calls, which pytest undoes; a unittest class's
`MonkeyPatch()` or patcher that is never undone gets its `undo()`/`stop()` registered with
`addCleanup`. Only when the polluter changes the state indirectly (through the code it calls)
does an autouse fixture in its conftest restore exactly the leaked item after every test.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import cast

import libcst as cst
import libcst.matchers as m

from orchestrator.agents import codemod, syntax
from orchestrator.agents.monkeypatching import Mutations, local_names, stop_patchers
from orchestrator.agents.pollution_cleanups import add_cleanups
from orchestrator.models import Leak, Proposal, WorkOrder

_POLLUTER_KINDS = ("polluter", "state_setter", "pair")


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
        assert owner is not None  # a unittest method has its class
        new_module, notes = add_cleanups(module, owner)
        if not notes:
            problems.append(
                f"{nodeid}: unittest.TestCase methods take no pytest fixtures, and the class "
                "leaves no MonkeyPatch undone nor patcher running"
            )
            return []
        syntax.write(path, new_module)
        return [f"{nodeid}: {', '.join(notes)}"]
    fixer = Mutations(syntax.imported_names(module), local_names(func))
    new = cast(cst.FunctionDef, func.visit(fixer))  # the transformer keeps the function
    new, patcher_notes = stop_patchers(new, fixer)
    notes = fixer.notes + patcher_notes
    if not notes:
        return _fix_fixtures(worktree, path, func, nodeid)
    for fixture in fixer.fixtures:
        with_fixture = syntax.add_param(new, fixture)
        if with_fixture is None:
            problems.append(f"{nodeid}: can't add the {fixture} fixture to its signature")
            return []
        new = with_fixture
    syntax.write(path, cast(cst.Module, module.deep_replace(func, new)))
    return [f"{nodeid}: {', '.join(notes)}"]


def _fix_fixtures(worktree: Path, test_path: Path, test: cst.FunctionDef, nodeid: str) -> list[str]:
    """The polluter changes nothing itself: the fixtures it uses (its module's, its conftests')
    make their raw mutations through monkeypatch (a module- or session-scoped one through
    `pytest.MonkeyPatch.context()`, which undoes them at its teardown)."""
    wanted = set(syntax.param_names(test))
    rel = Path(codemod.relative(worktree, test_path))
    paths = [test_path] + [
        p
        for parent in rel.parents
        if (p := codemod.resolve_inside(worktree, parent / "conftest.py")) and p.is_file()
    ]
    changes: list[str] = []
    for path in paths:
        module = syntax.parse(path)
        if module is None:
            continue
        replacements: dict[cst.CSTNode, cst.CSTNode] = {}
        for func, owner in syntax.functions(module):
            if owner is None and func.name.value in wanted and _fixture_scope(func):
                fixed = _fixed_fixture(func, module)
                if fixed is not None:
                    replacements[func] = fixed[0]
                    changes.append(f"{codemod.relative(worktree, path)}: fixture {fixed[1]}")
                    wanted.discard(func.name.value)
        if replacements:
            module = syntax.replace_nodes(module, replacements)
            syntax.write(path, syntax.with_import(module, "pytest"))
    return [f"{nodeid} uses {'; '.join(changes)}"] if changes else []


def _fixture_scope(func: cst.FunctionDef) -> str | None:
    """The scope of a pytest fixture ("function" by default); None for other functions."""
    for decorator in func.decorators:
        dec = decorator.decorator
        target = dec.func if isinstance(dec, cst.Call) else dec
        if syntax.dotted(target).endswith("fixture"):
            scope = next(
                (
                    a.value
                    for a in getattr(dec, "args", [])
                    if a.keyword and a.keyword.value == "scope"
                ),
                None,
            )
            return syntax.string_value(scope) or "function"
    return None


def _fixed_fixture(func: cst.FunctionDef, module: cst.Module) -> tuple[cst.FunctionDef, str] | None:
    """The fixture with its raw mutations through monkeypatch, and what changed."""
    scope = _fixture_scope(func)
    wide = scope != "function"
    fixer = Mutations(
        syntax.imported_names(module), local_names(func), mp="mp" if wide else "monkeypatch"
    )
    new = cast(cst.FunctionDef, func.visit(fixer))
    if not fixer.notes:
        return None
    name = func.name.value
    if not wide:
        with_fixture = syntax.add_param(new, "monkeypatch")
        return (with_fixture, f"{name}: {', '.join(fixer.notes)}") if with_fixture else None
    body = syntax.statements(new)
    if syntax.find_all(new, m.Return(value=m.DoNotCare()), cst.Return) and not any(
        syntax.find_all(new, m.Yield(), cst.Yield)
    ):
        return None  # a returned value outlives a `with` block: can't wrap it
    start = 1 if body and syntax.is_docstring(body[0]) else 0
    inner = body[start:]
    if not syntax.find_all(new, m.Yield(), cst.Yield):
        inner.append(cst.parse_statement("yield\n"))
    block = cst.With(
        items=[
            cst.WithItem(
                cst.parse_expression("pytest.MonkeyPatch.context()"),
                asname=cst.AsName(cst.Name("mp")),
            )
        ],
        body=cst.IndentedBlock(inner),
    )
    note = f"{name} ({scope}-scoped): {', '.join(fixer.notes)} in pytest.MonkeyPatch.context()"
    return syntax.with_body(new, [*body[:start], block]), note.replace("monkeypatch.", "mp.")


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
