"""Fix requests the app does not route: a router mounted without its prefix, a Flask rule that
refuses a trailing slash, a dependency override keyed on a function the routes never call.

The routes come from the app's own source (`routes.py`); the requests from the failing tests'
literal paths. A fix is kept only when every failing request then reaches a route and every
request the tests make that reached one still does.

* `app.include_router(items.router)` serving `/` while the tests post to `/items/`: the mount
  gets `prefix="/items"` (Flask: `register_blueprint(bp, url_prefix=...)`).
* `@bp.get("/users")` requested as `/users/`: the rule gets `strict_slashes=False`.
* `app.dependency_overrides[get_current_user]` while the routes depend on `get_token_user`,
  which `get_current_user` itself wraps: the override is keyed on what the routes call.
"""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import libcst.matchers as m
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor, RemoveImportsVisitor

from orchestrator.agents import codemod, syntax
from orchestrator.agents.routes import (
    App,
    Request,
    Route,
    is_test_file,
    matches,
    read_app,
    requests_in,
)
from orchestrator.models import Proposal, WorkOrder


class ApiRouting:
    name = "api_routing"

    def __init__(self, **kwargs: object) -> None:
        """No settings; unknown keyword arguments are accepted so every specialist loads alike."""

    def propose(self, order: WorkOrder, worktree: Path, feedback: list[str]) -> Proposal:
        files = codemod.Files(worktree)
        app = read_app(files)
        failing = [
            r
            for path, names in codemod.failing_tests(order).items()
            if (module := files.parse(path)) is not None
            for r in requests_in(module, names)
        ]
        if not app.routers:
            return codemod.decline("api_routing: no FastAPI or Flask routes found in the project")
        if not failing:
            return codemod.decline(
                "api_routing: the failing tests make no request to a literal path"
            )
        everyone = _all_requests(files)
        lost = [r for r in failing if not _served(app, r)]
        if lost:
            changes = _fix_prefix(files, app, lost, everyone) or _fix_slashes(files, app, lost)
            what = ", ".join(sorted({f"{r.method.upper()} {r.path}" for r in lost}))
            problem = f"no mount prefix or slash rule makes the app serve {what}"
        else:
            changes = _fix_overrides(files, app, failing, order)
            problem = "every request reaches a route, and no override is keyed on a dependency the routes skip"
        if not changes:
            return codemod.decline(f"api_routing: {problem}")
        return Proposal(
            explanation="The app now routes what the tests request: " + "; ".join(changes) + "."
        )


def _all_requests(files: codemod.Files) -> list[Request]:
    found: list[Request] = []
    for rel in files.python_files():
        if is_test_file(rel) and (module := files.parse(rel)) is not None:
            names = {f.name.value for f, _ in syntax.functions(module)}
            found += requests_in(module, names)
    return found


def _served(app: App, request: Request) -> Route | None:
    return next(
        (
            route
            for full, route in app.served()
            if request.method in route.methods and matches(full, request.path)
        ),
        None,
    )


# --- prefixes --------------------------------------------------------------------------------------


def _fix_prefix(
    files: codemod.Files, app: App, lost: list[Request], everyone: list[Request]
) -> list[str]:
    """Give one mount the prefix under which its routes serve every lost request."""
    served_before = [r for r in everyone if _served(app, r)]
    for mount in app.mounts:
        for prefix in _prefixes(lost):
            if prefix == mount.prefix:
                continue
            old, mount.prefix = mount.prefix, prefix
            works = all(_served(app, r) for r in [*lost, *served_before])
            mount.prefix = old
            if not works:
                continue
            module = app.modules[mount.file]
            value = cst.SimpleString(f'"{prefix}"')
            files.write(
                mount.file,
                syntax.replace_nodes(
                    module, {mount.call: _with_keyword(mount.call, mount.keyword, value)}
                ),
            )
            child = mount.child.rsplit(".", 2)[-2:]
            return [f"{mount.file}: {'.'.join(child)} mounted with {mount.keyword}={prefix!r}"]
    return []


def _prefixes(lost: list[Request]) -> list[str]:
    """Candidate prefixes: the first one and two path segments the lost requests share."""
    found: list[str] = []
    for depth in (1, 2):
        heads = {"/" + "/".join(r.path.strip("/").split("/")[:depth]) for r in lost}
        if len(heads) == 1 and (head := heads.pop()) != "/":
            found.append(head)
    return found


def _with_keyword(call: cst.Call, name: str, value: cst.BaseExpression) -> cst.Call:
    args = [a for a in call.args if not (a.keyword and a.keyword.value == name)]
    if args:
        args[-1] = args[-1].with_changes(
            comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
        )
    arg = cst.Arg(
        value,
        keyword=cst.Name(name),
        equal=cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace("")),
    )
    return call.with_changes(args=[*args, arg])


# --- trailing slashes ------------------------------------------------------------------------------


def _fix_slashes(files: codemod.Files, app: App, lost: list[Request]) -> list[str]:
    """Flask rules the tests request with the other trailing slash accept both spellings."""
    decorators: dict[str, dict[cst.CSTNode, cst.CSTNode]] = {}
    notes: list[str] = []
    for request in lost:
        other = request.path[:-1] if request.path.endswith("/") else request.path + "/"
        for full, route in app.served():
            call = route.decorator.decorator
            flask = isinstance(call, cst.Call) and _is_flask(app, route)
            if flask and request.method in route.methods and matches(full, other):
                assert isinstance(call, cst.Call)
                new = _with_keyword(call, "strict_slashes", cst.Name("False"))
                decorators.setdefault(route.file, {})[call] = new
                notes.append(
                    f"{route.file}: {full!r} also serves {request.path!r} (strict_slashes=False)"
                )
                break
        else:
            return []  # every lost request must be explained
    for rel, mapping in decorators.items():
        files.write(rel, syntax.replace_nodes(app.modules[rel], mapping))
    return list(dict.fromkeys(notes))


def _is_flask(app: App, route: Route) -> bool:
    return any(route in r.routes and r.kind in ("Flask", "Blueprint") for r in app.routers.values())


# --- dependency overrides --------------------------------------------------------------------------


def _fix_overrides(
    files: codemod.Files, app: App, failing: list[Request], order: WorkOrder
) -> list[str]:
    """Re-key overrides of a dependency the failing routes never call onto the one they do
    call that the overridden function itself depends on."""
    used: set[str] = set()
    for request in failing:
        route = _served(app, request)
        if route is not None:
            used |= _closure(files, route.func, route.file)
    notes: list[str] = []
    for rel in codemod.test_files(order, files):
        module = files.parse(rel)
        if module is None:
            continue
        names = syntax.imported_names(module)
        new, changed = module, []
        for assign in syntax.find_all(
            module, m.Assign(targets=[m.AssignTarget(target=m.Subscript())]), cst.Assign
        ):
            target = assign.targets[0].target
            assert isinstance(target, cst.Subscript)  # the matcher asked for one
            if not syntax.dotted(target.value).endswith("dependency_overrides"):
                continue
            key = target.slice[0].slice
            if not isinstance(key, cst.Index) or not isinstance(key.value, cst.Name):
                continue
            local = key.value.value
            overridden = names.get(local)
            if overridden is None or overridden in used:
                continue
            defined = _function(files, overridden)
            wraps = _closure(files, *defined) if defined else set()
            target_dep = sorted((used & wraps) - {overridden})
            if len(target_dep) != 1:
                continue
            owner, _, dep = target_dep[0].rpartition(".")
            new = syntax.replace_nodes(new, {key.value: cst.Name(dep)})
            changed.append((overridden, owner, dep, local))
        if not changed:
            continue
        add, remove = CodemodContext(), CodemodContext()
        for overridden, owner, dep, local in changed:
            AddImportsVisitor.add_needed_import(add, owner, dep)
            RemoveImportsVisitor.remove_unused_import(remove, overridden.rpartition(".")[0], local)
            notes.append(
                f"{rel}: the override of {local} (no failing route calls it) now replaces {dep}, which {local} wraps and the routes depend on"
            )
        new = RemoveImportsVisitor(remove).transform_module(
            AddImportsVisitor(add).transform_module(new)
        )
        files.write(rel, new)
    return notes


def _function(files: codemod.Files, dotted: str) -> tuple[cst.FunctionDef, str] | None:
    owner, _, name = dotted.rpartition(".")
    path = codemod.module_file(files.root, owner) if owner else None
    module = syntax.parse(path) if path is not None else None
    found = syntax.find_function(module, [], name) if module is not None else None
    return (found[0], files.rel(path)) if found and path is not None else None


def _closure(
    files: codemod.Files, func: cst.FunctionDef, rel: str, seen: set[str] | None = None
) -> set[str]:
    """Every dependency (dotted) a function reaches through `Depends(...)`, transitively."""
    seen = seen or set()
    module = files.parse(rel)
    assert module is not None
    names = syntax.imported_names(module)
    here = codemod.module_name(files, rel)
    found: set[str] = set()
    for call in syntax.find_all(func.params, m.Call(), cst.Call):
        if syntax.dotted(call.func).rsplit(".", 1)[-1] != "Depends" or not call.args:
            continue
        local = syntax.dotted(call.args[0].value)
        dep = names.get(local, f"{here}.{local}")
        if dep in found or dep in seen:
            continue
        found.add(dep)
        if (defined := _function(files, dep)) is not None:
            found |= _closure(files, *defined, seen | found)
    return found
