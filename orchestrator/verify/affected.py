"""Which tests a patch can affect: the changed test files and the tests reaching changed code.

The regression set follows the import graph of the changed files. A conftest is traced by what
changed in it: a fixture reaches the tests that request it (directly or through other fixtures),
an import reaches the tests that share the imported modules, and anything else (a hook, an
autouse fixture, module-level code) every test below it. A data file reaches the code that names
it; a pytest configuration file, or a data file nothing names, every test.

A test file that only imports changed code (it is not itself changed, nor names a changed data
file or requests a changed conftest fixture) is narrowed to its tests that can reach it. The
tainted modules are the affected files (the changed ones and their importers, test helpers
included). In the file and in the conftests above it (and the project plugins they list), a
top-level name is tainted when an import from a tainted module binds it (`import a.b` binds `a`,
tainted when any of a, a.b is), and a top-level def or class when anything in it (decorators,
defaults, nested imports, the fixtures its functions ask for) names a tainted name or fixture,
or a string in it names a tainted module (`mock.patch("app.bug.f")`), to a fixpoint; a fixture
(by its name or its `name=`) when its def is. A test is selected when its def is tainted (for a
method, its whole class). A package `__init__` on the way of an import taints it only when it
changed itself: an unchanged one that imports changed code changes its own namespace only.

Every test of the file is selected when the narrowing is unsure: the file does not parse, has a
star import from a tainted module, module-level code (other than imports, defs, classes and
docstrings) reaching tainted names, pytest hooks or `pytest_plugins`, a tainted module-level
setup/teardown or autouse fixture (there or in a conftest above), dynamic access (`importlib`,
`__import__`, `globals()`, `sys.modules`, `eval`, subprocesses, `pytester`), a node id naming
no def or class of the file (generated or imported tests); or a conftest above it that imports
tainted code and does not parse, or has any of those, or a tainted hook.
"""

from __future__ import annotations

import ast
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from orchestrator.verify.cheats import is_config, is_conftest, parse

_DOC_SUFFIXES = {".md", ".rst", ".txt"}


@dataclass
class Reach:
    """What a patch can affect: the tests to run, and the test files whose tests or collection
    it can change (None: any file, e.g. when it changed pytest's configuration)."""

    tests: set[str]
    files: set[str] | None


def regression_set(
    worktree: Path,
    changed: list[str],
    collected: list[str],
    before: dict[str, str] | None = None,
) -> set[str]:
    """Tests of changed test files and of test files that (transitively) import changed code."""
    return reach(worktree, changed, collected, before).tests


def reach(
    worktree: Path,
    changed: list[str],
    collected: list[str],
    before: dict[str, str] | None = None,
) -> Reach:
    """The regression set and the files it comes from.

    `before` holds the changed files' sources at the base: with it a changed conftest selects
    only what its changes reach; without it, every test below it.
    """
    everything = Reach(set(collected), None)
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
    scans: dict[str, list[_Scan] | None] = {}
    modules = _module_map(worktree, sorted(set(files) | code))
    affected = _importers(worktree, sorted(set(files) | code), code, modules)
    by_file: dict[str, list[str]] = {}
    for n in collected:
        by_file.setdefault(n.split("::")[0], []).append(n)
    taint = _Taint(worktree, modules, affected, code, set(files), scans)
    selected: set[str] = set()
    reached: set[str] = set()
    for f, ids in by_file.items():
        if f in code or any(d in PurePosixPath(f).parents for d in below):
            selected |= set(ids)
        elif f in affected:
            selected |= _narrowed(taint, f, ids)
        else:
            continue
        reached.add(f)
    return Reach(selected, reached)


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


# --- narrowing an importing test file to its tests -------------------------------------------------

_DYNAMIC = {"__import__", "importlib", "import_module", "globals", "vars", "eval", "exec"}
_DYNAMIC |= {"subprocess", "runpy", "pytester", "testdir"}  # code run out of sight of the tree
_DYNAMIC_ATTRIBUTES = {"modules", "import_module", "__dict__"}  # sys.modules, importlib's
_MODULE_SETUP = {"setup_module", "teardown_module", "setup_function", "teardown_function"}
_MODULE_SETUP |= {"setUpModule", "tearDownModule", "setup", "teardown"}
_TOKEN = re.compile(r"[\w./\\-]+")


@dataclass
class _Def:
    """A top-level def or class (or the rest of the module-level code): the names, argument
    names and string words in it, and whether it imports or names a tainted module."""

    name: str
    words: set[str]
    direct: bool
    fixture: str | None = None  # the name it is requested by, when a fixture
    autouse: bool = False
    special: bool = False  # a hook or module-level setup: it reaches every test of the file
    methods: set[str] | None = None  # a class's function names, anywhere in it
    bases: bool = False


@dataclass
class _Top:
    """A file's top level: the names tainted imports bind, its defs, and what makes it unsure."""

    bound: set[str]
    defs: list[_Def]
    rest: _Def
    unsure: bool  # a star import from a tainted module, dynamic access
    hooks: bool  # pytest hooks or pytest_plugins
    plugins: list[str] | None  # the pytest_plugins it lists, None when not a literal


@dataclass
class _Taint:
    """The affected files of one call, and each file's top level read once."""

    worktree: Path
    modules: dict[str, str]
    affected: set[str]
    changed: set[str]
    files: set[str]
    scans: dict[str, list[_Scan] | None]
    tops: dict[str, _Top | None] = field(default_factory=dict)
    chains: dict[str, list[_Top] | None] = field(default_factory=dict)


def _narrowed(taint: _Taint, path: str, ids: list[str]) -> set[str]:
    """The tests of `path` (affected through its imports only) that reach tainted code: every
    one when unsure (see the module docstring)."""
    everything = set(ids)
    top, chain = _top(taint, path), _chain(taint, str(PurePosixPath(path).parent))
    if top is None or chain is None or top.unsure or top.hooks:
        return everything
    tops = [*chain, top]
    names = [set(t.bound) for t in tops]
    fixtures: set[str] = set()
    hit: set[int] = set()
    grown = True
    while grown:  # helpers calling helpers, fixtures asking for fixtures
        grown = False
        for t, tainted in zip(tops, names, strict=True):
            for d in [*t.defs, t.rest]:
                if id(d) not in hit and (d.direct or d.words & tainted or d.words & fixtures):
                    hit.add(id(d))
                    grown = True
                    tainted.add(d.name)
                    if d.fixture:
                        fixtures.add(d.fixture)
    for t in tops:
        if id(t.rest) in hit or any(id(d) in hit and (d.autouse or d.special) for d in t.defs):
            return everything
    defs: dict[str, list[_Def]] = {}
    for d in top.defs:
        defs.setdefault(d.name, []).append(d)
    selected: set[str] = set()
    for n in ids:
        unit = _unit(defs, n[len(path) + 2 :])
        if unit is None:
            return everything
        if any(id(d) in hit for d in unit):
            selected.add(n)
    return selected


def _unit(defs: dict[str, list[_Def]], test: str) -> list[_Def] | None:
    """The top-level defs a node id's test (past the file) runs: its function, or its whole
    class; None when the id names none of them (generated or imported tests)."""
    parts = test.split("[", 1)[0].split("::")
    found = defs.get(parts[0])
    if not found:
        return None
    if len(parts) == 1:
        return found if all(d.methods is None for d in found) else None
    if all(d.methods is not None and (parts[-1] in d.methods or d.bases) for d in found):
        return found
    return None


def _chain(taint: _Taint, directory: str) -> list[_Top] | None:
    """The conftests above a directory (and the project plugins they list), outermost first;
    None when one that imports tainted code is unsure."""
    if directory in taint.chains:
        return taint.chains[directory]
    here = PurePosixPath(directory)
    outer = _chain(taint, str(here.parent)) if here != here.parent else []
    chain: list[_Top] | None = None
    if outer is not None:
        chain = list(outer)
        paths = [str(here / "conftest.py")] if str(here / "conftest.py") in taint.files else []
        while paths and chain is not None:
            path = paths.pop(0)
            top = _top(taint, path)
            if top is None or top.plugins is None or (top.unsure and path in taint.affected):
                chain = None
                break
            chain.append(top)
            paths += [p for n in top.plugins if (p := taint.modules.get(n)) and p != path]
    taint.chains[directory] = chain
    return chain


def _top(taint: _Taint, path: str) -> _Top | None:
    """The file's top level as the narrowing reads it; None when it does not parse."""
    if path in taint.tops:
        return taint.tops[path]
    scans = _scanned(taint.worktree, path, taint.scans)
    top = None if scans is None else _read_top(taint, scans)
    taint.tops[path] = top
    return top


def _read_top(taint: _Taint, scans: list[_Scan]) -> _Top:
    bound: set[str] = set()
    defs: list[_Def] = []
    rest: list[_Scan] = []
    unsure = hooks = False
    plugins: list[str] | None = []
    for scan in scans:
        node = scan.node
        if isinstance(node, ast.Import | ast.ImportFrom):
            names, star = _bound(taint, node, scan.package)
            bound |= names
            unsure = unsure or star or any(a.name.split(".")[0] in _DYNAMIC for a in node.names)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            words, direct, dynamic = _words(taint, [scan])
            unsure = unsure or dynamic
            d = _Def(node.name, words, direct)
            d.special = node.name.startswith("pytest_") or node.name in _MODULE_SETUP
            hooks = hooks or node.name.startswith("pytest_")
            if isinstance(node, ast.ClassDef):
                d.bases, d.methods = bool(node.bases), scan.functions
            else:
                d.fixture, d.autouse = _fixture(node)
            defs.append(d)
        elif _assigns(node, "pytest_plugins"):
            hooks = True
            plugins = _literal_strings(node)
        elif not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
            rest.append(scan)
    words, direct, dynamic = _words(taint, rest)
    return _Top(bound, defs, _Def("", words, direct), unsure or dynamic, hooks, plugins)


def _bound(
    taint: _Taint, node: ast.Import | ast.ImportFrom, package: list[str]
) -> tuple[set[str], bool]:
    """The names a top-level import binds to tainted code, and whether it is a tainted `*`."""
    names: set[str] = set()
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.asname:
                if _tainted(taint, alias.name):
                    names.add(alias.asname)
            elif any(t in taint.affected for t in _targets(taint.modules, alias.name)):
                names.add(alias.name.split(".")[0])  # `import a.b` binds `a`
        return names, False
    base = _base(node, package)
    star = False
    for alias in node.names:
        if alias.name == "*":
            star = _tainted(taint, base)
        elif _tainted(taint, f"{base}.{alias.name}".lstrip(".")):
            names.add(alias.asname or alias.name)
    return names, star


def _tainted(taint: _Taint, dotted: str) -> bool:
    """Whether the innermost project module a dotted name lies in is affected (or a package
    on its way changed: its import runs the change)."""
    parts = dotted.split(".")
    last = None
    for i in range(1, len(parts) + 1):
        if (target := taint.modules.get(".".join(parts[:i]))) is not None:
            if target in taint.changed:
                return True
            last = target
    return last in taint.affected


def _words(taint: _Taint, scans: list[_Scan]) -> tuple[set[str], bool, bool]:
    """The names, argument names and string words in `scans`; whether they import or name a
    tainted module (`mock.patch("app.bug.f")`); whether they reach code dynamically."""
    words: set[str] = set()
    direct = dynamic = False
    for scan in scans:
        words |= scan.names
        dynamic = dynamic or scan.dynamic
        direct = direct or any(_tainted(taint, n) for n in scan.imports)
        for text in scan.strings:
            for token in _TOKEN.findall(text):
                words.add(token)
                if not direct and ("." in token or "/" in token or "\\" in token):
                    path = token.replace("\\", "/")
                    dotted = path.removesuffix(".py").replace("/", ".").strip(".")
                    direct = path in taint.affected or _tainted(taint, dotted)
    return words, direct, dynamic or bool(words & _DYNAMIC)


@dataclass
class _Scan:
    """One top-level statement, walked once: what the import graph and the narrowing read."""

    node: ast.stmt
    package: list[str]
    names: set[str] = field(default_factory=set)  # names and argument names
    strings: list[str] = field(default_factory=list)
    imports: set[str] = field(default_factory=set)  # module names, made absolute
    functions: set[str] = field(default_factory=set)
    dynamic: bool = False  # sys.modules, a module's __dict__


def _scanned(worktree: Path, path: str, scans: dict[str, list[_Scan] | None]) -> list[_Scan] | None:
    """The file's top-level statements walked, once per call; None when it does not parse."""
    if path not in scans:
        tree = parse(_read(worktree / path))
        package = _package(worktree, path)
        scans[path] = None if tree is None else [_scan(n, package) for n in tree.body]
    return scans[path]


def _scan(node: ast.stmt, package: list[str]) -> _Scan:
    scan = _Scan(node, package)
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            scan.names.add(sub.id)
        elif isinstance(sub, ast.arg):
            scan.names.add(sub.arg)
        elif isinstance(sub, ast.Attribute):
            scan.dynamic = scan.dynamic or sub.attr in _DYNAMIC_ATTRIBUTES
        elif isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            scan.strings.append(sub.value)
        elif isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef):
            scan.functions.add(sub.name)
        elif isinstance(sub, ast.Import | ast.ImportFrom):
            scan.imports |= _imported(sub, package)
    return scan


def _imported(node: ast.Import | ast.ImportFrom, package: list[str]) -> set[str]:
    """The module names an import statement imports, made absolute."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    base = _base(node, package)
    return {base} | {f"{base}.{alias.name}".lstrip(".") for alias in node.names}


def _base(node: ast.ImportFrom, package: list[str]) -> str:
    """The module a `from` import imports from, made absolute."""
    stem = package[: len(package) - node.level + 1] if node.level else []
    return ".".join([*stem, *([node.module] if node.module else [])])


def _fixture(node: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[str | None, bool]:
    """The name a fixture is requested by (None when not a fixture), and whether it is autouse
    (or named by something else than a literal: it could be any, as if used everywhere)."""
    for decorator in node.decorator_list:
        call = decorator if isinstance(decorator, ast.Call) else None
        target = call.func if call else decorator
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
        if name != "fixture":
            continue
        alias, autouse = node.name, False
        for k in call.keywords if call else []:
            value = k.value.value if isinstance(k.value, ast.Constant) else ...
            if k.arg == "name" and isinstance(value, str):
                alias = value
            elif k.arg == "name" or k.arg is None or (k.arg == "autouse" and value is not False):
                autouse = True  # a computed name, **options or autouse=True
        return alias, autouse
    return None, False


def _assigns(node: ast.stmt, name: str) -> bool:
    targets = (
        node.targets
        if isinstance(node, ast.Assign)
        else [node.target]
        if isinstance(node, ast.AnnAssign | ast.AugAssign)
        else []
    )
    return any(isinstance(t, ast.Name) and t.id == name for t in targets)


def _literal_strings(node: ast.stmt) -> list[str] | None:
    """The strings a `pytest_plugins = ...` lists; None when not a literal."""
    value = getattr(node, "value", None)
    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        return [value.value]
    if isinstance(value, ast.List | ast.Tuple) and all(
        isinstance(e, ast.Constant) and isinstance(e.value, str) for e in value.elts
    ):
        return [
            e.value for e in value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)
        ]
    return None


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


def _importers(
    worktree: Path,
    files: list[str],
    changed: set[str],
    modules: dict[str, str] | None = None,
) -> set[str]:
    """`changed` and every file that imports one of them, directly or through others."""
    modules = _module_map(worktree, files) if modules is None else modules
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


_IMPORTS: dict[tuple[bytes, tuple[str, ...]], frozenset[str]] = {}


def _imports(worktree: Path, path: str) -> frozenset[str]:
    """Every module name `path` imports, anywhere in it, relative imports made absolute.

    Kept by the source's digest: every verification reads the whole import graph, and a
    patch changes a few files of it."""
    source = _read(worktree / path)
    package = tuple(_package(worktree, path))
    key = hashlib.blake2b(source.encode(), digest_size=16).digest(), package
    if key not in _IMPORTS:
        _IMPORTS[key] = _imports_of(source, list(package))
    return _IMPORTS[key]


def _imports_of(source: str, package: list[str]) -> frozenset[str]:
    tree = parse(source)
    if tree is None:
        return frozenset()
    imports = (n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom))
    return frozenset(name for node in imports for name in _imported(node, package))


def _package(worktree: Path, path: str) -> list[str]:
    """The package a relative import in `path` starts from."""
    own = _module_names(worktree, path)
    package = own[0].split(".") if own else []
    return package if path.endswith("__init__.py") else package[:-1]


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, IsADirectoryError):
        return ""
