"""Patch where a name is looked up, not where it is defined.

`from pkg.mod import name` in `pkg/user.py` copies the binding into `pkg.user`; patching
`pkg.mod.name` afterwards leaves `pkg.user.name` pointing at the real function, so the mock is
never called. The fix retargets the failing test's patch to `pkg.user.name`.
"""

from __future__ import annotations

import re
from pathlib import Path

import libcst as cst
import libcst.matchers as m

from orchestrator.agents import codemod, syntax
from orchestrator.models import Proposal, WorkOrder

_EXPECTED = re.compile(r"Expected '([^']+)' to (?:have been|be) (?:called|awaited)")


class PatchTarget:
    name = "patch_target"

    def __init__(self, **kwargs: object) -> None:
        """No settings; unknown keyword arguments are accepted so every specialist loads alike."""

    def propose(self, order: WorkOrder, worktree: Path, feedback: list[str]) -> Proposal:
        mocked = {m.split(".")[-1] for f in order.failures for m in _EXPECTED.findall(f.message)}
        nodeids = [f.nodeid for f in order.failures] or list(order.tests)
        by_file: dict[str, list[str]] = {}
        for nodeid in nodeids:
            by_file.setdefault(codemod.split_nodeid(nodeid)[0], []).append(nodeid)
        changes: list[str] = []
        problems: list[str] = []
        for rel, ids in by_file.items():
            path = codemod.resolve_inside(worktree, rel)
            if path is None:
                problems.append(f"{rel} is outside the worktree")
                continue
            if path.is_file():
                changes += _fix_file(worktree, path, ids, mocked, problems)
        if not changes:
            reason = (
                "; ".join(problems)
                or "no patch(...) of a name imported elsewhere in the failing tests"
            )
            return codemod.decline(f"patch_target: {reason}")
        detail = "; ".join(changes)
        extra = f" Not changed: {'; '.join(problems)}." if problems else ""
        return Proposal(
            explanation=(
                "Retargeted mocks to the module where the code under test looks the name up "
                f"(it did `from ... import name`, so patching the defining module had no effect): {detail}.{extra}"
            )
        )


def _fix_file(
    worktree: Path, path: Path, nodeids: list[str], mocked: set[str], problems: list[str]
) -> list[str]:
    """Retarget the patches the failing tests in one file use; report what changed."""
    module = syntax.parse(path)
    if module is None:
        problems.append(f"{codemod.relative(worktree, path)} does not parse")
        return []
    imports = _test_imports(module)
    replacements: dict[cst.CSTNode, cst.CSTNode] = {}
    changes: list[str] = []
    for call in _patch_calls(module, nodeids):
        target = _target(call, module)
        if target is None or (mocked and target[1] not in mocked):
            continue
        owner, attr = target
        users = _users(worktree, owner, attr, path)
        exercised = [u for u in users if any(i == u or i.startswith(u + ".") for i in imports)]
        if len(users) > 1 and len(exercised) == 1:
            users = exercised
        if len(users) != 1:
            found = ", ".join(users) or "no module"
            problems.append(
                f"{owner}.{attr}: imported by {found}; can't tell which the test exercises"
            )
            continue
        if call not in replacements:
            replacements[call] = _retargeted(call, users[0], attr, module)
            changes.append(
                f"{codemod.relative(worktree, path)}: {owner}.{attr} -> {users[0]}.{attr}"
            )
    if replacements:
        syntax.write(path, syntax.replace_nodes(module, replacements))
    return changes


def _patch_calls(module: cst.Module, nodeids: list[str]) -> list[cst.Call]:
    """patch(...) calls in the failing tests, their decorators, and fixtures of the same file they use."""
    scopes: list[cst.CSTNode] = []
    fixtures = {f.name.value: f for f, owner in syntax.functions(module) if owner is None}
    for nodeid in nodeids:
        _, classes, name = codemod.split_nodeid(nodeid)
        found = syntax.find_function(module, classes, name)
        if found is None:
            continue
        func, owner = found
        scopes.append(func)
        if owner is not None:
            scopes += list(owner.decorators)
            scopes += [
                f for f, o in syntax.functions(module) if o is owner and f.name.value == "setUp"
            ]
        scopes += [fixtures[p] for p in syntax.param_names(func) if p in fixtures]
    calls: list[cst.Call] = []
    for scope in scopes:
        for call in syntax.find_all(scope, m.Call(), cst.Call):
            if _is_patch(call) and call not in calls:
                calls.append(call)
    return calls


def _is_patch(call: cst.Call) -> bool:
    name = syntax.dotted(call.func)
    return name.split(".")[-1] == "patch" or name.endswith("patch.object")


def _target(call: cst.Call, module: cst.Module) -> tuple[str, str] | None:
    """(owner module, attribute) that a patch call replaces, when it is spelled out literally."""
    args = [a for a in call.args if a.keyword is None]
    if syntax.dotted(call.func).endswith("patch.object"):
        if len(args) < 2 or syntax.string_value(args[1].value) is None:
            return None
        local = syntax.dotted(args[0].value)
        root, _, rest = local.partition(".")
        dotted = syntax.imported_names(module).get(root)
        if dotted is None:
            return None
        owner = f"{dotted}.{rest}" if rest else dotted
        return owner, str(syntax.string_value(args[1].value))
    target = syntax.string_value(args[0].value) if args else None
    if target is None or "." not in target:
        return None
    owner, _, attr = target.rpartition(".")
    return owner, attr


def _retargeted(call: cst.Call, user: str, attr: str, module: cst.Module) -> cst.Call:
    """The same call patching `user.attr`, keeping quotes, keywords and formatting."""
    first = call.args[0]
    if not syntax.dotted(call.func).endswith("patch.object"):
        assert isinstance(first.value, cst.SimpleString)  # _target() read the target from it
        return call.with_changes(
            args=[
                first.with_changes(value=syntax.with_string(first.value, f"{user}.{attr}")),
                *call.args[1:],
            ]
        )
    local = next(
        (name for name, dotted in syntax.imported_names(module).items() if dotted == user), None
    )
    if local is not None:
        return call.with_changes(
            args=[first.with_changes(value=cst.parse_expression(local)), *call.args[1:]]
        )
    # The test has no handle on the user module: patch it by its dotted path instead.
    quote = call.args[1].value.quote if isinstance(call.args[1].value, cst.SimpleString) else '"'
    target = cst.SimpleString(f"{quote}{user}.{attr}{quote}")
    func = call.func.value if isinstance(call.func, cst.Attribute) else call.func
    return call.with_changes(func=func, args=[first.with_changes(value=target), *call.args[2:]])


def _test_imports(module: cst.Module) -> set[str]:
    """Every dotted module (and module.name) the test file imports."""
    found = set(syntax.imported_names(module).values())
    for stmt in module.body:
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                if isinstance(small, cst.Import):
                    found |= {syntax.dotted(a.name) for a in small.names}
    return found


def _users(worktree: Path, owner: str, attr: str, test_file: Path) -> list[str]:
    """Modules (not tests) that do `from owner import attr`, absolute or relative."""
    files = codemod.Files(worktree)
    users: list[str] = []
    for path in codemod.python_files(worktree):
        if path == test_file or path.name == "conftest.py" or path.name.startswith("test_"):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if attr not in text or "import" not in text:
            continue
        module = syntax.parse(path)
        name = codemod.module_name(files, files.rel(path))
        if module is not None and _imports_from(module, name, path, owner, attr):
            users.append(name)
    return users


def _imports_from(module: cst.Module, name: str, path: Path, owner: str, attr: str) -> bool:
    for node in syntax.find_all(module, m.ImportFrom(), cst.ImportFrom):
        if isinstance(node.names, cst.ImportStar):
            continue
        if _absolute(node, name, path.name == "__init__.py") != owner:
            continue
        if any(syntax.dotted(alias.name) == attr for alias in node.names):
            return True
    return False


def _absolute(node: cst.ImportFrom, importer: str, is_package: bool) -> str:
    """The absolute module an ImportFrom names, resolving leading dots against the importer."""
    dotted = syntax.dotted(node.module) if node.module is not None else ""
    level = len(node.relative)
    if not level:
        return dotted
    package = importer.split(".") if is_package else importer.split(".")[:-1]
    base = package[: len(package) - (level - 1)] if level > 1 else package
    return ".".join([*base, dotted] if dotted else base)
