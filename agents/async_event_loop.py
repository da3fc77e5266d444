"""Fix event-loop misuse in async tests.

Two causes, told apart by the message:

* `asyncio.run() cannot be called from a running event loop`: async code (a test, a fixture, or a
  sync helper they call) starts a second loop. The coroutine is awaited instead; a sync helper
  that only async code calls becomes async itself, and its call sites await it.
* `attached to a different loop` / `Event loop is closed`: a test on its own function-scoped loop
  uses an async fixture that lives on a wider (module/session) loop. The test is moved onto the
  fixture's loop with `pytest.mark.asyncio(loop_scope=...)` (pytest-asyncio >= 0.23).
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import libcst as cst
import libcst.matchers as m

from orchestrator.agents import codemod, syntax
from orchestrator.agents.async_wrappers import inline_wrappers
from orchestrator.models import Proposal, WorkOrder

RUNNING_LOOP = ("cannot be called from a running event loop", "This event loop is already running")
OTHER_LOOP = (
    "attached to a different loop",
    "Event loop is closed",
    "is bound to a different event loop",
)
_SCOPES = ("function", "class", "module", "package", "session")

FuncKey = tuple[str | None, str]  # (class name, function name)


class AsyncEventLoop:
    name = "async_event_loop"

    def __init__(self, **kwargs: object) -> None:
        """No settings; unknown keyword arguments are accepted so every specialist loads alike."""

    def propose(self, order: WorkOrder, worktree: Path, feedback: list[str]) -> Proposal:
        texts = [f"{f.message}\n{f.longrepr or ''}" for f in order.failures]
        changes: list[str] = []
        problems: list[str] = []
        if any(s in t for t in texts for s in RUNNING_LOOP):
            files = codemod.Files(worktree)
            tests = [files.path(p) for p in codemod.test_files(order, files)]
            changes, inlined = inline_wrappers(worktree, tests)
            for path in codemod.candidate_files(order, worktree):
                changes += _await_instead_of_run(worktree, path, problems, inlined)
        if any(s in t for t in texts for s in OTHER_LOOP):
            changes += _align_loop_scopes(order, worktree, problems)
        if not changes:
            reason = (
                "; ".join(problems)
                or "no asyncio.run() in async code and no loop-scope mismatch found"
            )
            return codemod.decline(f"async_event_loop: {reason}")
        extra = f" Not changed: {'; '.join(problems)}." if problems else ""
        return Proposal(explanation="Fixed event-loop misuse: " + "; ".join(changes) + "." + extra)


# --- asyncio.run() inside a running loop -----------------------------------------------------


def _is_loop_runner(call: cst.Call, imports: dict[str, str]) -> bool:
    """asyncio.run(x) / run(x) from asyncio / <loop>.run_until_complete(x), with one argument."""
    if len([a for a in call.args if a.keyword is None]) != 1:
        return False
    name = syntax.dotted(call.func)
    root = name.split(".")[0]
    resolved = f"{imports.get(root, root)}{name[len(root) :]}"
    return resolved == "asyncio.run" or name.endswith(".run_until_complete")


def _runners_by_function(
    module: cst.Module, imports: dict[str, str]
) -> dict[FuncKey, cst.FunctionDef]:
    found: dict[FuncKey, cst.FunctionDef] = {}
    for func, owner in syntax.functions(module):
        if any(_is_loop_runner(c, imports) for c in syntax.find_all(func, m.Call(), cst.Call)):
            found[(owner.name.value if owner else None, func.name.value)] = func
    return found


def _callers(module: cst.Module, key: FuncKey) -> list[FuncKey]:
    """The functions of this file that call `key` (by name, or through self./cls. in its class)."""
    owner, name = key
    callers: list[FuncKey] = []
    for func, cls in syntax.functions(module):
        for call in syntax.find_all(func, m.Call(), cst.Call):
            called = syntax.dotted(call.func)
            same_class = owner is not None and cls is not None and cls.name.value == owner
            if (owner is None and called == name) or (
                same_class and called in (f"self.{name}", f"cls.{name}")
            ):
                callers.append((cls.name.value if cls else None, func.name.value))
                break
    return callers


def _used_elsewhere(worktree: Path, path: Path, name: str) -> bool:
    """Whether another file calls `name`: making it async would break that caller."""
    return any(
        f"{name}(" in p.read_text(encoding="utf-8", errors="replace")
        for p in codemod.python_files(worktree)
        if p != path
    )


def _plan_async(
    worktree: Path, path: Path, module: cst.Module, problems: list[str], inlined: set[str]
) -> tuple[set[FuncKey], set[FuncKey]]:
    """(functions that await instead of running a loop, sync helpers that must become async)."""
    imports = syntax.imported_names(module)
    rel = codemod.relative(worktree, path)
    runners = _runners_by_function(module, imports)
    is_async = {
        (o.name.value if o else None, f.name.value): f.asynchronous is not None
        for f, o in syntax.functions(module)
    }
    awaiting = {k for k in runners if is_async[k]}
    to_async: set[FuncKey] = set()
    for key in runners:
        if is_async[key] or key[1].startswith("test") or key[1] in inlined:
            continue  # a sync test runs outside any loop: asyncio.run is right there; a
            # wrapper its async callers no longer call is right for its sync ones
        pending, seen, ok = [key], {key}, True
        while pending and ok:
            current = pending.pop()
            callers = _callers(module, current)
            ok = bool(callers) and not any(
                c[1].startswith("test") and not is_async[c] for c in callers
            )
            ok = ok and (current[0] is not None or not _used_elsewhere(worktree, path, current[1]))
            for caller in callers:
                if not is_async[caller] and caller not in seen:
                    seen.add(caller)
                    pending.append(caller)
        if ok:
            awaiting.add(key)
            to_async |= seen
        else:
            problems.append(
                f"{rel}: {'.'.join(p for p in key if p)} runs a loop but is called from sync code or from other files"
            )
    return awaiting, to_async


class _Awaiter(cst.CSTTransformer):
    """Replaces loop runners with `await`, makes helpers async and awaits their calls."""

    def __init__(
        self, imports: dict[str, str], awaiting: set[FuncKey], to_async: set[FuncKey]
    ) -> None:
        self.imports = imports
        self.awaiting = awaiting
        self.to_async = to_async
        self.stack: list[FuncKey] = []
        self.classes: list[str] = []

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.classes.append(node.name.value)

    def leave_ClassDef(self, original: cst.ClassDef, updated: cst.ClassDef) -> cst.ClassDef:
        self.classes.pop()
        return updated

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.stack.append((self.classes[-1] if self.classes else None, node.name.value))

    def leave_FunctionDef(
        self, original: cst.FunctionDef, updated: cst.FunctionDef
    ) -> cst.FunctionDef:
        key = self.stack.pop()
        if key in self.to_async and updated.asynchronous is None:
            return updated.with_changes(asynchronous=cst.Asynchronous())
        return updated

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        here = self.stack[-1] if self.stack else None
        if here in self.awaiting and _is_loop_runner(updated, self.imports):
            return cst.Await(expression=updated.args[0].value)
        called = syntax.dotted(updated.func)
        for owner, name in self.to_async:
            if (owner is None and called == name) or (
                owner is not None and called in (f"self.{name}", f"cls.{name}")
            ):
                return cst.Await(expression=updated)
        return updated

    def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> cst.Attribute:
        if isinstance(updated.value, cst.Await) and not updated.value.lpar:
            return updated.with_changes(
                value=updated.value.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
            )
        return updated


def _await_instead_of_run(
    worktree: Path, path: Path, problems: list[str], inlined: set[str]
) -> list[str]:
    module = syntax.parse(path)
    if module is None or "run" not in module.code:
        return []
    rel = codemod.relative(worktree, path)
    imports = syntax.imported_names(module)
    awaiting, to_async = _plan_async(worktree, path, module, problems, inlined)
    if not awaiting:
        return []
    new = module.visit(_Awaiter(imports, awaiting, to_async))
    new = syntax.drop_unused_import(new, "asyncio")
    syntax.write(path, new)
    names = lambda keys: ", ".join(sorted(".".join(p for p in k if p) for k in keys))  # noqa: E731
    made = f"; made async: {names(to_async)} (call sites now await them)" if to_async else ""
    return [
        f"{rel}: awaited the coroutine instead of starting a nested loop in {names(awaiting)}{made}"
    ]


# --- loop-scope mismatch ---------------------------------------------------------------------


def _keyword(call: cst.Call, name: str) -> str | None:
    arg = next((a for a in call.args if a.keyword is not None and a.keyword.value == name), None)
    return syntax.string_value(arg.value) if arg is not None else None


def _fixture_loop_scope(func: cst.FunctionDef) -> str | None:
    """The loop an async pytest_asyncio fixture runs on (its loop_scope, else its scope)."""
    if func.asynchronous is None:
        return None
    for decorator in func.decorators:
        dec = decorator.decorator
        if isinstance(dec, cst.Call) and syntax.dotted(dec.func).endswith("fixture"):
            return _keyword(dec, "loop_scope") or _keyword(dec, "scope") or "function"
        if syntax.dotted(dec).endswith("fixture"):
            return "function"
    return None


def _fixture_scopes(worktree: Path, test_path: Path) -> dict[str, str]:
    """Async fixture name -> loop scope, from the test file and the conftests above it."""
    scopes: dict[str, str] = {}
    root = worktree.resolve()
    files = [test_path]
    directory = test_path.parent
    while directory == root or root in directory.parents:
        files.append(directory / "conftest.py")
        directory = directory.parent
    for path in reversed(files):  # nearer definitions override
        module = syntax.parse(path) if path.is_file() else None
        for func, owner in syntax.functions(module) if module is not None else []:
            scope = _fixture_loop_scope(func)
            if owner is None and scope is not None:
                scopes[func.name.value] = scope
    return scopes


def _asyncio_mark(func: cst.FunctionDef) -> cst.Decorator | None:
    for decorator in func.decorators:
        dec = decorator.decorator
        target = dec.func if isinstance(dec, cst.Call) else dec
        if syntax.dotted(target).endswith("mark.asyncio"):
            return decorator
    return None


def _with_loop_scope(func: cst.FunctionDef, scope: str) -> cst.FunctionDef:
    """The test marked `@pytest.mark.asyncio(loop_scope=scope)`, keeping its other mark arguments."""
    mark = _asyncio_mark(func)
    arg = cst.Arg(
        cst.SimpleString(f'"{scope}"'),
        keyword=cst.Name("loop_scope"),
        equal=cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace("")),
    )
    if mark is None:
        new = cst.Decorator(cst.Call(cst.parse_expression("pytest.mark.asyncio"), [arg]))
        return func.with_changes(decorators=[*func.decorators, new])
    dec = mark.decorator
    if isinstance(dec, cst.Call):
        kept = [
            a
            for a in dec.args
            if not (a.keyword is not None and a.keyword.value in ("loop_scope", "scope"))
        ]
        if kept:
            kept[-1] = kept[-1].with_changes(
                comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
            )
        call = dec.with_changes(args=[*kept, arg])
    else:
        call = cst.Call(dec, [arg])
    decorators = [d.with_changes(decorator=call) if d is mark else d for d in func.decorators]
    return func.with_changes(decorators=decorators)


def _align_loop_scopes(order: WorkOrder, worktree: Path, problems: list[str]) -> list[str]:
    changes: list[str] = []
    for nodeid in [f.nodeid for f in order.failures] or order.tests:
        found = codemod.find_test(worktree, nodeid)
        if found is None:
            problems.append(f"{nodeid}: test not found in the worktree")
            continue
        path, module, func, _ = found
        scopes = _fixture_scopes(worktree, path)
        wanted = {scopes[p] for p in syntax.param_names(func) if p in scopes} - {"function"}
        if len(wanted) != 1 or func.asynchronous is None:
            problems.append(
                f"{nodeid}: can't tell which loop it should share (wider-loop fixtures: {sorted(wanted) or 'none'})"
            )
            continue
        scope = wanted.pop()
        mark = _asyncio_mark(func)
        if (
            mark is not None
            and isinstance(mark.decorator, cst.Call)
            and _keyword(mark.decorator, "loop_scope") == scope
        ):
            continue
        module = cast(cst.Module, module.deep_replace(func, _with_loop_scope(func, scope)))
        if mark is None:
            module = syntax.with_import(module, "pytest")
        syntax.write(path, module)
        changes.append(f"{nodeid} now runs on the {scope}-scoped loop its fixtures were created on")
    return changes
