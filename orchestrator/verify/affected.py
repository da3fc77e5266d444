"""Which tests a patch can affect: the changed test files and those importing changed code.

The regression set follows the import graph of the changed files. A conftest is traced by what
changed in it: a fixture reaches the tests that request it (directly or through other fixtures),
an import reaches the tests that share the imported modules, and anything else (a hook, an
autouse fixture, module-level code) every test below it. A data file reaches the code that names
it; a pytest configuration file, or a data file nothing names, every test.
"""

from __future__ import annotations

import ast
from pathlib import Path, PurePosixPath

from orchestrator.verify.cheats import is_config, is_conftest, parse

_DOC_SUFFIXES = {".md", ".rst", ".txt"}


def regression_set(
    worktree: Path,
    changed: list[str],
    collected: list[str],
    before: dict[str, str] | None = None,
) -> set[str]:
    """Tests of changed test files and of test files that (transitively) import changed code.

    `before` holds the changed files' sources at the base: with it a changed conftest selects
    only what its changes reach; without it, every test below it.
    """
    everything = set(collected)
    tested = {n.split("::")[0] for n in collected}
    files = sorted(p for p in tested | set(_python_files(worktree)) if p.endswith(".py"))
    code = {p for p in changed if p.endswith(".py") and not is_conftest(p)}
    data = [
        p for p in changed if not p.endswith(".py") and PurePosixPath(p).suffix not in _DOC_SUFFIXES
    ]
    for path in data:
        named = [] if is_config(path) else _naming(worktree, files, path)
        if not named:
            return everything
        code |= set(named)
    below: list[PurePosixPath] = []  # conftest directories whose every test is affected
    fixtures: set[str] = set()
    for path in (p for p in changed if is_conftest(p)):
        scope = PurePosixPath(path).parent
        reach = _conftest_reach(worktree, path, (before or {}).get(path), before is not None)
        if reach is None:
            below.append(scope)
            continue
        names, imported = reach
        fixtures |= names
        code |= _imported_closure(worktree, files, imported)
    code |= set(_requesting(worktree, files, fixtures))
    affected = _importers(worktree, sorted(set(files) | code), code)
    return {
        n
        for n in collected
        if (f := n.split("::")[0]) in affected or any(d in PurePosixPath(f).parents for d in below)
    }


def _python_files(worktree: Path) -> list[str]:
    """Every Python file of the checkout (hidden directories and caches left out)."""
    return [
        str(p.relative_to(worktree).as_posix())
        for p in worktree.rglob("*.py")
        if not any(
            part.startswith(".") or part == "__pycache__" for part in p.relative_to(worktree).parts
        )
    ]


def _naming(worktree: Path, files: list[str], data: str) -> list[str]:
    """The Python files that mention the data file by its name."""
    name = PurePosixPath(data).name
    return [p for p in files if name in _read(worktree / p)]


# --- conftest files --------------------------------------------------------------------------------


def _conftest_reach(
    worktree: Path, path: str, old: str | None, traced: bool
) -> tuple[set[str], set[str]] | None:
    """The fixtures whose definition changed and the modules whose import changed; None when
    something else changed (a hook, an autouse fixture, module-level code): every test below."""
    if not traced:
        return None
    new_tree, old_tree = parse(_read(worktree / path)), parse(old or "")
    if new_tree is None or old_tree is None:
        return None
    new, old_parts = _parts(new_tree), _parts(old_tree)
    if new is None or old_parts is None:
        return None
    fixtures = {
        name
        for name in set(new[0]) | set(old_parts[0])
        if new[0].get(name) != old_parts[0].get(name)
    }
    imports = {**new[1], **old_parts[1]}
    changed = set(new[1]) ^ set(old_parts[1])
    package = list(PurePosixPath(path).parent.parts)
    return fixtures, {n for dump in changed for n in _import_names(imports[dump], package)}


_Parts = tuple[dict[str, str], dict[str, ast.Import | ast.ImportFrom]]


def _parts(tree: ast.Module) -> _Parts | None:
    """Fixture name -> its dump, and import dump -> the import; None when anything else is
    there that a change to would reach every test (hooks, autouse fixtures, other statements)."""
    fixtures: dict[str, str] = {}
    imports: dict[str, ast.Import | ast.ImportFrom] = {}
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            imports[ast.dump(node)] = node
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _is_fixture(node):
            fixtures[node.name] = ast.dump(node)
        elif not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
            return None  # not a docstring either
    return fixtures, imports


def _is_fixture(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A `@pytest.fixture` (or `@fixture`), not autouse: it reaches only the tests asking for it."""
    for decorator in node.decorator_list:
        call = decorator if isinstance(decorator, ast.Call) else None
        target = call.func if call else decorator
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
        if name != "fixture":
            continue
        autouse = call and any(
            k.arg == "autouse" and not (isinstance(k.value, ast.Constant) and not k.value.value)
            for k in call.keywords
        )
        return not autouse
    return False


def _import_names(node: ast.Import | ast.ImportFrom, package: list[str]) -> set[str]:
    """The module names an import statement of a file in `package` (its directory) names."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    stem = package[: len(package) - node.level + 1] if node.level else []
    base = ".".join([*stem, *([node.module] if node.module else [])])
    return {base} | {f"{base}.{alias.name}".lstrip(".") for alias in node.names}


def _requesting(worktree: Path, files: list[str], fixtures: set[str]) -> list[str]:
    """Files with a function asking for one of `fixtures` (or a fixture that does), by name."""
    if not fixtures:
        return []
    wanted = set(fixtures)
    params: dict[str, dict[str, set[str]]] = {}
    for path in files:
        tree = parse(_read(worktree / path))
        if tree is None:
            continue
        asked: dict[str, set[str]] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                asked[node.name] = {a.arg for a in node.args.args + node.args.kwonlyargs}
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                asked.setdefault("<usefixtures>", set()).add(node.value)  # usefixtures("db")
        params[path] = asked
    grown = True
    while grown:  # fixtures that request a changed fixture are changed for their users
        grown = False
        for asked in params.values():
            for name, args in asked.items():
                if name not in wanted and args & wanted and name != "<usefixtures>":
                    wanted.add(name)
                    grown = True
    return [p for p, asked in params.items() if any(args & wanted for args in asked.values())]


def _imported_closure(worktree: Path, files: list[str], names: set[str]) -> set[str]:
    """The project files `names` import, and what those import, transitively: the modules
    whose state the imports can change (the packages on the way only run their __init__)."""
    modules = _module_map(worktree, files)
    found: set[str] = set()
    todo = [p for n in names for p in _targets(modules, n)[-1:]]
    while todo:
        path = todo.pop()
        if path in found:
            continue
        found.add(path)
        todo += [p for n in _imports(worktree, path) for p in _targets(modules, n)[-1:]]
    return {p for p in found if not _empty(worktree, p)}


def _empty(worktree: Path, path: str) -> bool:
    """An `__init__.py` without code holds no state an import could change."""
    tree = parse(_read(worktree / path))
    return PurePosixPath(path).name == "__init__.py" and tree is not None and not tree.body


# --- the import graph ------------------------------------------------------------------------------


def _module_map(worktree: Path, files: list[str]) -> dict[str, str]:
    modules: dict[str, str] = {}
    for path in files:
        for name in _module_names(worktree, path):
            modules.setdefault(name, path)
    return modules


def _targets(modules: dict[str, str], name: str) -> list[str]:
    """The files importing `name` runs: each package on the way, then the module."""
    parts = name.split(".")
    return [t for i in range(1, len(parts) + 1) if (t := modules.get(".".join(parts[:i])))]


def _importers(worktree: Path, files: list[str], changed: set[str]) -> set[str]:
    """`changed` and every file that imports one of them, directly or through others."""
    modules = _module_map(worktree, files)
    imported_by: dict[str, set[str]] = {}
    for path in files:
        for name in _imports(worktree, path):
            for target in _targets(modules, name):
                imported_by.setdefault(target, set()).add(path)
    affected, todo = set(changed), list(changed)
    while todo:
        for importer in imported_by.get(todo.pop(), ()):
            if importer not in affected:
                affected.add(importer)
                todo.append(importer)
    return affected


def _module_names(worktree: Path, path: str) -> list[str]:
    """The dotted names `path` is importable as (src/ layout and rootdir-style test dirs)."""
    parts = list(PurePosixPath(path).with_suffix("").parts)
    if parts and parts[0] == "src" and len(parts) > 1:
        parts = parts[1:]
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    names = [".".join(parts)] if parts else []
    if len(parts) > 1 and not (worktree / PurePosixPath(path).parent / "__init__.py").exists():
        names.append(parts[-1])  # pytest's rootdir insertion makes it importable by its own name
    return names


def _imports(worktree: Path, path: str) -> set[str]:
    """Every module name `path` imports, anywhere in it, relative imports made absolute."""
    tree = parse(_read(worktree / path))
    if tree is None:
        return set()
    own = _module_names(worktree, path)
    package = own[0].split(".") if own else []
    if not path.endswith("__init__.py"):
        package = package[:-1]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            stem = package[: len(package) - node.level + 1] if node.level else []
            base = ".".join([*stem, *([node.module] if node.module else [])])
            names |= {base} | {f"{base}.{alias.name}".lstrip(".") for alias in node.names}
    return names


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, IsADirectoryError):
        return ""
