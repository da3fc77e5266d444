"""Async callers of a sync wrapper await the coroutine it runs.

A module often exposes a coroutine and a sync wrapper for scripts: `def get_rate(c): return
asyncio.run(fetch_rate(c))`. Async tests that call the wrapper start a loop inside the running
one. The wrapper is right for its sync callers, so it stays; the async call sites change:
`get_rate("EUR")` becomes `await fetch_rate("EUR")`, and a comprehension of calls becomes one
`asyncio.gather`. Only wrappers another module defines are followed (the test's own helpers are
`async_event_loop`'s business), and only when the wrapper does nothing but run the coroutine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libcst as cst
import libcst.matchers as m
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor, RemoveImportsVisitor

from orchestrator.agents import codemod, syntax


@dataclass(frozen=True)
class Wrapper:
    """A sync function or method whose body is `return asyncio.run(<coroutine>(...))`."""

    name: str
    params: list[str]
    inner: cst.Call  # the coroutine call, in terms of the wrapper's parameters
    coroutine: str  # its name: a module-level function, or a method of the same class
    module: str  # the dotted module defining it
    method: bool


def inline_wrappers(worktree: Path, paths: list[Path]) -> tuple[list[str], set[str]]:
    """Rewrite the async call sites in `paths`; (what changed, the wrappers inlined)."""
    files = codemod.Files(worktree)
    changes: list[str] = []
    inlined: set[str] = set()
    for path in paths:
        module = syntax.parse(path)
        if module is None:
            continue
        rel = files.rel(path)
        wrappers = _wrappers_for(files, rel, module)
        if not wrappers:
            continue
        fixer = _Inline(wrappers)
        new = module.visit(fixer)
        if not fixer.done:
            continue
        if fixer.gathered:
            new = syntax.with_import(new, "asyncio")
        by_name = [w for key, w in fixer.done.items() if "." not in key]  # imported by name
        context = CodemodContext()
        for wrapper in by_name:
            AddImportsVisitor.add_needed_import(context, wrapper.module, wrapper.coroutine)
        new = AddImportsVisitor(context).transform_module(new)
        context = CodemodContext()
        for wrapper in by_name:
            RemoveImportsVisitor.remove_unused_import(context, wrapper.module, wrapper.name)
        new = RemoveImportsVisitor(context).transform_module(new)
        syntax.write(path, new)
        inlined |= {w.name for w in fixer.done.values()}
        names = ", ".join(f"{w.name} -> await {w.coroutine}" for w in fixer.done.values())
        changes.append(f"{rel}: async callers await the coroutine the wrapper runs ({names})")
    return changes, inlined


def _wrappers_for(files: codemod.Files, rel: str, module: cst.Module) -> dict[str, Wrapper]:
    """Wrappers the file can reach: imported functions by their local name, and the methods of
    other modules' classes by attribute name (when only one class has that method)."""
    found: dict[str, Wrapper] = {}
    for local, target in syntax.imported_names(module).items():
        source, _, name = target.rpartition(".")
        path = codemod.module_file(files.root, source) if source else None
        if path is not None and files.rel(path) != rel and (tree := syntax.parse(path)):
            wrapper = _function_wrapper(tree, name, source)
            if wrapper is not None:
                found[local] = wrapper  # `from rates.client import get_rate`
        path = codemod.module_file(files.root, target)
        if path is not None and files.rel(path) != rel and (tree := syntax.parse(path)):
            for func, cls in syntax.functions(tree):
                if cls is None and (wrapper := _wrapper(func, target, method=False)):
                    found[f"{local}.{wrapper.name}"] = wrapper  # `from rates import client`
    methods: dict[str, list[Wrapper]] = {}
    for other in files.python_files():
        if other == rel or not (tree := files.parse(other)) or "asyncio" not in tree.code:
            continue
        dotted = codemod.module_name(files, other)
        for func, cls in syntax.functions(tree):
            wrapper = _wrapper(func, dotted, method=True) if cls is not None else None
            if wrapper is not None:
                methods.setdefault(wrapper.name, []).append(wrapper)
    found |= {f".{name}": ws[0] for name, ws in methods.items() if len(ws) == 1}
    return found


def _function_wrapper(module: cst.Module, name: str, dotted: str) -> Wrapper | None:
    found = syntax.find_function(module, [], name)
    return _wrapper(found[0], dotted, method=False) if found else None


def _wrapper(func: cst.FunctionDef, module: str, *, method: bool) -> Wrapper | None:
    if func.asynchronous is not None:
        return None
    body = [s for s in syntax.statements(func) if not syntax.is_docstring(s)]
    if len(body) != 1 or not isinstance(body[0], cst.SimpleStatementLine):
        return None
    ret = body[0].body[0]
    if not (isinstance(ret, cst.Return) and isinstance(ret.value, cst.Call)):
        return None
    run = ret.value
    if syntax.dotted(run.func) not in ("asyncio.run", "run") or len(run.args) != 1:
        return None
    inner = run.args[0].value
    if not isinstance(inner, cst.Call):
        return None
    callee = syntax.dotted(inner.func)
    coroutine = callee.removeprefix("self.") if method else callee
    if not coroutine or "." in coroutine:
        return None
    params = syntax.param_names(func)[1:] if method else syntax.param_names(func)
    return Wrapper(func.name.value, params, inner, coroutine, module, method)


class _Inline(cst.CSTTransformer):
    """In async functions: `wrapper(a)` -> `await coroutine(a)`; `[wrapper(x) for x in xs]` ->
    `list(await asyncio.gather(*(coroutine(x) for x in xs)))`."""

    def __init__(self, wrappers: dict[str, Wrapper]) -> None:
        super().__init__()
        self.wrappers = wrappers
        self.stack: list[bool] = []  # is each enclosing function async?
        self.done: dict[str, Wrapper] = {}
        self.direct: dict[int, cst.Call] = {}  # id of a wrapper call -> its coroutine call
        self.gathered = False

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.stack.append(node.asynchronous is not None)

    def leave_FunctionDef(self, original: cst.FunctionDef, updated: cst.FunctionDef) -> Any:
        self.stack.pop()
        return updated

    def visit_Lambda(self, node: cst.Lambda) -> None:
        self.stack.append(False)

    def leave_Lambda(self, original: cst.Lambda, updated: cst.Lambda) -> Any:
        self.stack.pop()
        return updated

    def _direct(self, call: cst.Call) -> cst.Call | None:
        """The coroutine call replacing a wrapper call, None when it is not one."""
        if not (self.stack and self.stack[-1]):
            return None
        key = syntax.dotted(call.func)
        if key not in self.wrappers and isinstance(call.func, cst.Attribute):
            key = f".{call.func.attr.value}"  # a method, on whatever object
        wrapper = self.wrappers.get(key)
        if wrapper is None or (key.startswith(".") and not wrapper.method):
            return None
        inner = _substitute(wrapper, call)
        if inner is None:
            return None
        self.done[key] = wrapper
        if wrapper.method:
            assert isinstance(call.func, cst.Attribute)  # a method is called on its object
            func: cst.BaseExpression = call.func.with_changes(attr=cst.Name(wrapper.coroutine))
        elif isinstance(call.func, cst.Attribute):  # `client.get_rate` -> `client.fetch_rate`
            func = call.func.with_changes(attr=cst.Name(wrapper.coroutine))
        else:
            func = cst.Name(wrapper.coroutine)
        return inner.with_changes(func=func)

    def leave_ListComp(self, original: cst.ListComp, updated: cst.ListComp) -> Any:
        direct = self.direct.get(id(original.elt))  # the element is a wrapper call
        if direct is None:
            return updated
        self.gathered = True
        tasks = cst.GeneratorExp(elt=direct, for_in=updated.for_in)
        gather = cst.Call(cst.parse_expression("asyncio.gather"), [cst.Arg(tasks, star="*")])
        return cst.Call(cst.Name("list"), [cst.Arg(cst.Await(gather))])

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> Any:
        direct = self._direct(updated)
        if direct is None:
            return updated
        self.direct[id(original)] = direct
        return cst.Await(direct)

    def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> Any:
        if isinstance(updated.value, cst.Await) and not updated.value.lpar:
            return updated.with_changes(
                value=updated.value.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
            )
        return updated


def _substitute(wrapper: Wrapper, call: cst.Call) -> cst.Call | None:
    """The wrapper's coroutine call with the call site's arguments in place of its parameters;
    None when the arguments can't be matched (star arguments, unknown keywords)."""
    values: dict[str, cst.BaseExpression] = {}
    positional = [a for a in call.args if a.keyword is None]
    if any(a.star for a in call.args) or len(positional) > len(wrapper.params):
        return None
    for param, arg in zip(wrapper.params, positional, strict=False):
        values[param] = arg.value
    for arg in call.args:
        if arg.keyword is not None:
            if arg.keyword.value not in wrapper.params:
                return None
            values[arg.keyword.value] = arg.value
    used = {n.value for n in syntax.find_all(wrapper.inner, m.Name(), cst.Name)}
    if any(p in used and p not in values for p in wrapper.params):
        return None  # a default the wrapper fills in: leave the call alone
    return wrapper.inner.with_changes(args=[a.visit(_Swap(values)) for a in wrapper.inner.args])


class _Swap(cst.CSTTransformer):
    """Parameters become the call site's arguments (keywords and attribute names stay)."""

    def __init__(self, values: dict[str, cst.BaseExpression]) -> None:
        super().__init__()
        self.values = values

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> Any:
        return self.values.get(original.value, updated)

    def leave_Arg(self, original: cst.Arg, updated: cst.Arg) -> Any:
        return updated.with_changes(keyword=original.keyword)

    def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> Any:
        return updated.with_changes(attr=original.attr)
