"""The routes an app serves, read from its source: FastAPI routers and Flask blueprints, where they
are mounted and under which prefix, and the requests the tests make."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import libcst as cst
import libcst.matchers as m

from orchestrator.agents import codemod, syntax

METHODS = ("get", "post", "put", "patch", "delete", "head", "options")
ROUTERS = {"APIRouter": "prefix", "Blueprint": "url_prefix"}
MOUNTS = {"include_router": "prefix", "register_blueprint": "url_prefix"}


@dataclass
class Route:
    methods: set[str]
    path: str
    func: cst.FunctionDef
    decorator: cst.Decorator
    file: str


@dataclass
class Router:
    name: str  # dotted: "app.routers.items.router"
    file: str
    prefix: str = ""
    kind: str = ""  # FastAPI, APIRouter, Flask, Blueprint ("" when only its routes were seen)
    routes: list[Route] = field(default_factory=list)


@dataclass
class Mount:
    child: str  # the dotted router mounted
    parent: str  # the dotted object it is mounted on (an app or another router)
    prefix: str
    call: cst.Call
    file: str
    keyword: str  # "prefix" or "url_prefix"


@dataclass
class App:
    routers: dict[str, Router] = field(default_factory=dict)  # apps are routers too
    mounts: list[Mount] = field(default_factory=list)
    modules: dict[str, cst.Module] = field(default_factory=dict)  # the trees the nodes are in

    def served(self) -> list[tuple[str, Route]]:
        """(full path, route) for every route reachable from an object nothing mounts."""
        mounted = {mount.child for mount in self.mounts}
        found: list[tuple[str, Route]] = []
        for name in self.routers:
            if name not in mounted:
                found += self._under(name, "", set())
        return found

    def _under(self, name: str, prefix: str, seen: set[str]) -> list[tuple[str, Route]]:
        router = self.routers.get(name)
        if router is None or name in seen:
            return []
        base = prefix + router.prefix
        found = [(base + route.path, route) for route in router.routes]
        for mount in self.mounts:
            if mount.parent == name:
                found += self._under(mount.child, base + mount.prefix, seen | {name})
        return found


def read_app(files: codemod.Files) -> App:
    """Every router, route and mount in the project's source (tests left out)."""
    app = App()
    for rel in files.python_files():
        if is_test_file(rel):
            continue
        source = files.read(rel)
        if not any(word in source for word in ("route", "Router", "Blueprint", "FastAPI", "Flask")):
            continue
        module = files.parse(rel)
        if module is not None:
            app.modules[rel] = module
            _read_module(app, files, rel, module)
    return app


def is_test_file(rel: str) -> bool:
    parts = rel.split("/")
    return parts[0] in ("tests", "test") or parts[-1].startswith(("test_", "conftest"))


def _read_module(app: App, files: codemod.Files, rel: str, module: cst.Module) -> None:
    here = codemod.module_name(files, rel)
    names = _all_imports(module)

    def dotted(node: cst.BaseExpression) -> str:
        text = syntax.dotted(node)
        root, _, rest = text.partition(".")
        if root in names:
            return names[root] + (f".{rest}" if rest else "")
        return f"{here}.{text}"

    for assign in syntax.find_all(module, m.Assign(value=m.Call()), cst.Assign):
        call = assign.value
        assert isinstance(call, cst.Call)  # the matcher asked for one
        kind = syntax.dotted(call.func).rsplit(".", 1)[-1]
        if kind in ("FastAPI", "Flask", *ROUTERS) and len(assign.targets) == 1:
            name = dotted(assign.targets[0].target)
            prefix = _keyword(call, ROUTERS.get(kind, "")) or ""
            app.routers.setdefault(name, Router(name, rel, prefix, kind))
    for func in syntax.find_all(module, m.FunctionDef(), cst.FunctionDef):  # app factories too
        for decorator in func.decorators:
            route = _route(decorator, func, rel)
            if route is not None:
                assert isinstance(decorator.decorator, cst.Call)  # _route() read a call
                owner = dotted(_owner(decorator.decorator))
                app.routers.setdefault(owner, Router(owner, rel)).routes.append(route)
    for call in syntax.find_all(module, m.Call(func=m.Attribute()), cst.Call):
        assert isinstance(call.func, cst.Attribute)  # the matcher asked for one
        keyword = MOUNTS.get(call.func.attr.value)
        if keyword and call.args:
            child = call.args[0].value
            prefix = _keyword(call, keyword) or ""
            app.mounts.append(
                Mount(dotted(child), dotted(call.func.value), prefix, call, rel, keyword)
            )


def _all_imports(module: cst.Module) -> dict[str, str]:
    """`imported_names`, function-level imports included (app factories import blueprints)."""
    found: list[cst.BaseSmallStatement] = [*syntax.find_all(module, m.Import(), cst.Import)]
    found += syntax.find_all(module, m.ImportFrom(), cst.ImportFrom)
    lines = [cst.SimpleStatementLine([node]) for node in found]
    return syntax.imported_names(cst.Module(body=lines))


def _owner(call: cst.Call) -> cst.BaseExpression:
    assert isinstance(call.func, cst.Attribute)  # `@router.get(...)`
    return call.func.value


def _route(decorator: cst.Decorator, func: cst.FunctionDef, rel: str) -> Route | None:
    """`@router.get("/x")`, `@app.route("/x", methods=["POST"])`, `@bp.post("/x")`."""
    call = decorator.decorator
    if not (isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute) and call.args):
        return None
    verb = call.func.attr.value
    path = syntax.string_value(call.args[0].value)
    if path is None or (verb not in METHODS and verb not in ("route", "api_route")):
        return None
    methods = {verb} if verb in METHODS else {"get"}
    listed = next((a.value for a in call.args if a.keyword and a.keyword.value == "methods"), None)
    if isinstance(listed, cst.List | cst.Tuple):
        methods = {(syntax.string_value(e.value) or "").lower() for e in listed.elements}
    return Route(methods, path, func, decorator, rel)


def _keyword(call: cst.Call, name: str) -> str | None:
    arg = next((a for a in call.args if a.keyword and a.keyword.value == name), None)
    return syntax.string_value(arg.value) if arg is not None else None


def matches(template: str, path: str) -> bool:
    """Whether a request path is served by a route template (`{id}`, `<int:id>` placeholders)."""
    parts = re.split(r"(\{[^}]*\}|<[^>]*>)", template)
    pattern = "".join("[^/]+" if p[:1] in "{<" and p else re.escape(p) for p in parts)
    return re.fullmatch(pattern, path.split("?")[0]) is not None


# --- the requests the tests make -------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # placeholders filled in with "1"
    test: str


def requests_in(module: cst.Module, tests: set[str]) -> list[Request]:
    """`client.post("/items/", json=...)`, `client.get(f"/items/{id}")` in the named tests."""
    found: list[Request] = []
    for func, _ in syntax.functions(module):
        if func.name.value not in tests:
            continue
        for call in syntax.find_all(func, m.Call(func=m.Attribute()), cst.Call):
            assert isinstance(call.func, cst.Attribute)  # the matcher asked for one
            method = call.func.attr.value
            path = _path(call.args[0].value) if call.args and method in METHODS else None
            if path is not None and path.startswith("/"):
                found.append(Request(method, path, func.name.value))
    return found


def _path(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.SimpleString):
        return syntax.string_value(node)
    if isinstance(node, cst.FormattedString):
        return "".join(
            p.value if isinstance(p, cst.FormattedStringText) else "1" for p in node.parts
        )
    return None
