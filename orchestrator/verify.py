"""Judge one patch: its tests pass, nothing that passed breaks, and it did not cheat.

An agent's word counts for nothing here. The patch is what its branch holds against the base
commit; the verdict comes from real pytest runs in the worktree (the order's tests plus every
test that could see the change, in one run), from the collection (no test may disappear), and
from a static look at the diff (no skips, no deselection, no weakened asserts). Fixes that
belong in source code are also graded against the original test files, as SWE-bench does.
"""

from __future__ import annotations

import ast
import configparser
import shlex
import tomllib
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Literal

from orchestrator.config import in_worktree
from orchestrator.errors import TargetError
from orchestrator.events import Emit, ignore
from orchestrator.gitops import GitRepo
from orchestrator.models import FAILING, RunSpec, SuiteRun, TestResult, Verdict, WorkOrder
from orchestrator.runner import collect, run_suite

# Categories whose fix lives in source code: the original tests must pass over the patch.
# uuid_type, api_conflict, validation_error, test_isolation and mock_not_called are usually
# wrong tests; the rest may be either, so their test edits are only reported.
SOURCE_FIX_CATEGORIES: frozenset[str] = frozenset(
    {"model_defaults", "mapper_conflict", "api_routing", "transaction_state", "db_schema"}
)
CONFIG_FILES = ("pytest.ini", "setup.cfg", "tox.ini", "pyproject.toml")
_PASSING = {"passed", "xpassed"}
_DOC_SUFFIXES = {".md", ".rst", ".txt"}
_OUTPUT_LIMIT = 8000


def verify(
    *,
    repo: GitRepo,
    worktree: Path,
    base: str,
    order: WorkOrder,
    baseline: SuiteRun,
    spec: RunSpec,
    mode: Literal["targeted", "full"] = "targeted",
    emit: Emit = ignore,
) -> Verdict:
    """The verdict on the worktree's committed branch against `base`."""
    head = repo.rev("HEAD", cwd=worktree)
    changed = repo.changed_files(base, head)
    if not changed:
        return _rejected(order, "empty patch: nothing changed against the base commit")
    spec = in_worktree(spec, worktree).model_copy(update={"select": None, "collect_only": False})
    try:
        collected = collect(spec)
    except TargetError as exc:  # the patch broke the suite itself (a conftest, an import)
        return _rejected(order, f"suite broken: {exc}")
    violations = static_violations(_sources(repo, base, changed), _sources(repo, head, changed))
    violations += _shrunk(baseline.collected, collected)

    wanted = set(order.tests) | {c for f in order.findings for c in f.culprits}
    wanted |= set(collected) if mode == "full" else _regression_set(worktree, changed, collected)
    selected = [n for n in collected if n in wanted]
    run = run_suite(spec.model_copy(update={"select": selected}), emit, f"verify {order.category}")
    results = run.by_id()
    fixed = [t for t in order.tests if t in results and results[t].outcome in _PASSING]
    still_failing = [t for t in order.tests if t not in fixed]
    was = baseline.by_id()
    regressions = [n for n in selected if _regressed(was.get(n), results.get(n))]
    violations += _hidden(selected, was, results)

    tests_changed = [p for p in changed if _is_test_file(p) or _is_conftest(p)]
    originals: dict[str, TestResult | None] = {}
    graded = order.category in SOURCE_FIX_CATEGORIES and tests_changed
    if graded and not (violations or still_failing or regressions):
        originals = _original_tests(
            repo, worktree, base, order, baseline, spec, tests_changed, emit
        )
        violations += [
            f"original tests fail: {t} fails with the base test files "
            f"(a {order.category} fix belongs in source code)"
            for t, r in originals.items()
            if r is None or r.outcome not in _PASSING
        ]

    accepted = not (violations or still_failing or regressions)
    return Verdict(
        accepted=accepted,
        fixed=fixed,
        still_failing=still_failing,
        regressions=regressions,
        violations=violations,
        reason=None if accepted else _reason(violations, still_failing, regressions, results),
        output=_output(violations, still_failing, regressions, results, originals, tests_changed),
    )


def _rejected(order: WorkOrder, reason: str) -> Verdict:
    return Verdict(accepted=False, still_failing=list(order.tests), reason=reason, output=reason)


def _original_tests(
    repo: GitRepo,
    worktree: Path,
    base: str,
    order: WorkOrder,
    baseline: SuiteRun,
    spec: RunSpec,
    tests_changed: list[str],
    emit: Emit,
) -> dict[str, TestResult | None]:
    """The order's tests run from the base test files over the patched source."""
    targets = [t for t in order.tests if t in set(baseline.collected)]
    with repo.files_from(worktree, base, tests_changed):
        label = f"verify {order.category} (original tests)"
        run = run_suite(spec.model_copy(update={"select": targets}), emit, label)
    results = run.by_id()
    return {t: results.get(t) for t in targets}


# --- what to run ---------------------------------------------------------------------------------


def _sources(repo: GitRepo, rev: str, paths: list[str]) -> dict[str, str]:
    """The inspectable files among `paths` as they are at `rev` (absent ones left out)."""
    texts = {p: repo.file_at(rev, p) for p in paths if p.endswith(".py") or _is_config(p)}
    return {p: t for p, t in texts.items() if t is not None}


def _regression_set(worktree: Path, changed: list[str], collected: list[str]) -> set[str]:
    """Tests of changed test files and of test files that (transitively) import changed code.

    A change to a non-Python file (a schema, a config) cannot be traced, so it selects all.
    """
    if any(not p.endswith(".py") and PurePosixPath(p).suffix not in _DOC_SUFFIXES for p in changed):
        return set(collected)
    code = {p for p in changed if p.endswith(".py")}
    tested = {n.split("::")[0] for n in collected}
    files = sorted(p for p in tested | set(_python_files(worktree)) | code if p.endswith(".py"))
    affected = _importers(worktree, files, code)
    conftest_dirs = [PurePosixPath(p).parent for p in changed if _is_conftest(p)]
    return {
        n
        for n in collected
        if (f := n.split("::")[0]) in affected
        or any(d in PurePosixPath(f).parents for d in conftest_dirs)
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


def _importers(worktree: Path, files: list[str], changed: set[str]) -> set[str]:
    """`changed` and every file that imports one of them, directly or through others."""
    modules: dict[str, str] = {}
    for path in files:
        for name in _module_names(worktree, path):
            modules.setdefault(name, path)
    imported_by: dict[str, set[str]] = {}
    for path in files:
        for name in _imports(worktree, path):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                target = modules.get(".".join(parts[:i]))
                if target:
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
    tree = _parse(_read(worktree / path))
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


# --- outcomes ------------------------------------------------------------------------------------


def _shrunk(before: list[str], now: list[str]) -> list[str]:
    present = set(now)
    return [f"collection shrank: {n} is no longer collected" for n in before if n not in present]


def _regressed(was: TestResult | None, now: TestResult | None) -> bool:
    return (
        was is not None and was.outcome == "passed" and now is not None and now.outcome in FAILING
    )


def _hidden(
    selected: list[str], was: dict[str, TestResult], now: dict[str, TestResult]
) -> list[str]:
    """Tests that ran (passing or failing) at baseline and are now skipped, xfailed or dropped."""
    found = []
    for nodeid in selected:
        old = was.get(nodeid)
        if old is None or old.outcome not in _PASSING | FAILING:
            continue
        new = now.get(nodeid)
        if new is None:
            found.append(f"outcome hidden: {nodeid} {old.outcome} at baseline and was deselected")
        elif new.outcome in ("skipped", "xfailed"):
            found.append(
                f"outcome hidden: {nodeid} {old.outcome} at baseline and {new.outcome} now"
            )
    return found


def _reason(
    violations: list[str], still: list[str], regressions: list[str], results: dict[str, TestResult]
) -> str:
    if violations:
        return violations[0]
    if still:
        result = results.get(still[0])
        return f"not fixed: {still[0]} {'still ' + result.outcome if result else 'did not run'}"
    return f"regression: {regressions[0]} passed at baseline and fails now"


def _output(
    violations: list[str],
    still: list[str],
    regressions: list[str],
    results: dict[str, TestResult],
    originals: dict[str, TestResult | None],
    tests_changed: list[str],
) -> str:
    """What the agent needs to try again: the broken rules and the failures' own words."""
    parts = [f"violation: {v}" for v in violations]
    parts += [_describe("still failing", n, results.get(n)) for n in still]
    parts += [_describe("regression", n, results.get(n)) for n in regressions]
    parts += [
        _describe("fails with the original tests", n, r)
        for n, r in originals.items()
        if r is None or r.outcome not in _PASSING
    ]
    if tests_changed:
        parts.append("test files changed: " + ", ".join(tests_changed))
    text = "\n\n".join(parts)
    return text if len(text) <= _OUTPUT_LIMIT else text[:_OUTPUT_LIMIT] + "\n[... trimmed]"


def _describe(label: str, nodeid: str, result: TestResult | None) -> str:
    if result is None:
        return f"{label}: {nodeid} (did not run)"
    detail = (result.longrepr or result.message or "")[-1500:]
    return f"{label}: {nodeid} ({result.outcome})\n{detail}".rstrip()


# --- static anti-cheat rules ----------------------------------------------------------------------


def static_violations(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Cheats visible in the source: skips, deselection, hooks, weakened or removed asserts.

    `before`/`after` map paths to sources at the base and in the patch; a path missing from
    `after` was deleted.
    """
    found: list[str] = []
    for path in sorted(set(before) | set(after)):
        old, new = before.get(path, ""), after.get(path)
        if _is_config(path) and new is not None:
            found += _config_violations(path, old, new)
        elif path.endswith(".py"):
            if new is not None:
                found += _marker_violations(path, old, new, options=_is_conftest(path))
            if _is_test_file(path):
                found += _test_violations(path, old, new or "")
    return found


def _is_test_file(path: str) -> bool:
    name = PurePosixPath(path).name
    return name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py"))


def _is_conftest(path: str) -> bool:
    return PurePosixPath(path).name == "conftest.py"


def _is_config(path: str) -> bool:
    return PurePosixPath(path).name in CONFIG_FILES


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError):
        return None


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Call):
        return _dotted(node.func)
    return ""


# --- skips, collection hooks -----------------------------------------------------------------------

_SKIPS = dict.fromkeys(
    (
        "pytest.skip",
        "pytest.importorskip",
        "pytest.mark.skip",
        "pytest.mark.skipif",
        "mark.skip",
        "mark.skipif",
        "unittest.skip",
        "unittest.skipIf",
        "unittest.skipUnless",
        "self.skipTest",
    ),
    "skip added",
) | dict.fromkeys(
    ("pytest.xfail", "pytest.mark.xfail", "mark.xfail", "unittest.expectedFailure"), "xfail added"
)
_COLLECTION_HOOKS = {
    "pytest_collection_modifyitems",
    "pytest_ignore_collect",
    "pytest_collection",
    "pytest_deselected",
}
_HIDING_OPTIONS = ("--ignore", "--ignore-glob", "--deselect", "-k", "-m")


def _markers(source: str, options: bool) -> list[tuple[str, str, int, str]]:
    """(rule, scope, line, text) of every skip, xfail, collect_ignore and collection hook.

    With `options` (conftest files), string literals that are deselecting options count too.
    """
    tree = _parse(source)
    if tree is None:
        return []
    decorators = {
        id(_strip_call(d)) for n in ast.walk(tree) for d in getattr(n, "decorator_list", [])
    }
    found = []
    for scope, node in _walk_scoped(tree):
        if isinstance(node, ast.Attribute) and (rule := _SKIPS.get(_dotted(node))):
            text = f"@{_dotted(node)}" if id(node) in decorators else f"{_dotted(node)}("
            found.append((rule, scope, node.lineno, text))
        elif isinstance(node, ast.Name) and node.id in ("collect_ignore", "collect_ignore_glob"):
            found.append(("collect_ignore added", scope, node.lineno, node.id))
        elif (
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.name in _COLLECTION_HOOKS
        ):
            found.append(("collection hook added", scope, node.lineno, node.name))
        elif options and isinstance(node, ast.Constant) and _is_hiding_option(node.value):
            found.append(("collection option added", scope, node.lineno, node.value))
    return found


def _is_hiding_option(value: object) -> bool:
    return isinstance(value, str) and value.split("=")[0] in _HIDING_OPTIONS


def _strip_call(node: ast.AST) -> ast.AST:
    return node.func if isinstance(node, ast.Call) else node


def _walk_scoped(tree: ast.AST, scope: str = "") -> list[tuple[str, ast.AST]]:
    """Every node with the qualified name of the class/function it sits in."""
    out = []
    for child in ast.iter_child_nodes(tree):
        out.append((scope, child))
        inner = scope
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            inner = f"{scope}.{child.name}" if scope else child.name
        out += _walk_scoped(child, inner)
    return out


def _marker_violations(path: str, old: str, new: str, options: bool) -> list[str]:
    """Markers the patch added; moving an existing one within its scope is not adding."""
    had = Counter((rule, scope, text) for rule, scope, _, text in _markers(old, options))
    found = []
    for rule, scope, line, text in _markers(new, options):
        if had[(rule, scope, text)]:
            had[(rule, scope, text)] -= 1
        else:
            found.append(f"{rule}: {path}:{line} {text}")
    return found


def _config_violations(path: str, old: str, new: str) -> list[str]:
    added = [o for o in _hiding_options(path, new) if o not in set(_hiding_options(path, old))]
    return [f"collection option added: {path} addopts {o}" for o in added]


def _hiding_options(path: str, text: str) -> list[str]:
    """The addopts options that drop tests: --ignore, --deselect, -k, `-m not ...`."""
    tokens = _addopts(path, text)
    found = []
    for i, token in enumerate(tokens):
        for option in _HIDING_OPTIONS:
            if token == option and i + 1 < len(tokens):
                value = tokens[i + 1]
            elif token.startswith(option + "=") or (
                len(option) == 2 and token.startswith(option) and token != option
            ):
                value = token[len(option) :].lstrip("=")
            else:
                continue
            if option != "-m" or "not" in value.split():
                found.append(f"{option} {value}")
            break
    return found


def _addopts(path: str, text: str) -> list[str]:
    name = PurePosixPath(path).name
    try:
        if name == "pyproject.toml":
            tool = tomllib.loads(text).get("tool", {})
            opts = tool.get("pytest", {}).get("ini_options", {}).get("addopts", "")
            return opts if isinstance(opts, list) else shlex.split(str(opts))
        parser = configparser.ConfigParser(interpolation=None)
        parser.read_string(text)
        section = "tool:pytest" if name == "setup.cfg" else "pytest"
        return shlex.split(parser.get(section, "addopts", fallback=""))
    except (tomllib.TOMLDecodeError, configparser.Error, ValueError):
        return []


# --- weakened tests -----------------------------------------------------------------------------------


def _test_functions(source: str) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    """Test functions by qualified name ("TestUser.test_create")."""
    tree = _parse(source)
    if tree is None:
        return {}
    found = {}
    for scope, node in _walk_scoped(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
            "test"
        ):
            found[f"{scope}.{node.name}" if scope else node.name] = node
    return found


def _test_violations(path: str, old: str, new: str) -> list[str]:
    before, after = _test_functions(old), _test_functions(new)
    found = []
    for name, old_fn in before.items():
        new_fn = after.get(name)
        if new_fn is None:
            found.append(f"test removed: {path}::{name.replace('.', '::')}")
        elif ast.dump(old_fn) != ast.dump(new_fn):
            found += _weakened(path, name, old_fn, new_fn)
    return found


def _checks(fn: ast.AST) -> Counter[str]:
    """How many asserts, pytest.raises and mock assertions a function makes."""
    counts: Counter[str] = Counter()
    for node in ast.walk(fn):
        if isinstance(node, ast.Assert):
            counts["assert"] += 1
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            last = name.rsplit(".", 1)[-1]
            if last in ("raises", "warns", "deprecated_call") or last.startswith("assertRaises"):
                counts["pytest.raises"] += 1
            elif name.startswith("self.assert"):
                counts["assert"] += 1
            elif last.startswith("assert_"):
                counts["mock assertion"] += 1
    return counts


def _weakened(
    path: str,
    name: str,
    old: ast.FunctionDef | ast.AsyncFunctionDef,
    new: ast.FunctionDef | ast.AsyncFunctionDef,
) -> list[str]:
    """Cheats inside one edited test function."""
    found = []
    had, has = _checks(old), _checks(new)
    for kind in ("assert", "pytest.raises", "mock assertion"):
        if has[kind] < had[kind]:
            found.append(f"{kind} removed: {path}:{new.lineno} {name} ({had[kind]} -> {has[kind]})")
    old_asserts = [n for n in ast.walk(old) if isinstance(n, ast.Assert)]
    new_asserts = [n for n in ast.walk(new) if isinstance(n, ast.Assert)]
    old_dumps = Counter(ast.dump(a.test) for a in old_asserts)
    for node in new_asserts:
        if _constant(node.test) and not old_dumps[ast.dump(node.test)]:
            found.append(
                f"constant assert: {path}:{node.lineno} {name} assert {ast.unparse(node.test)}"
            )
    found += _loosened(path, name, old_asserts, new_asserts)
    return found


def _constant(test: ast.expr) -> bool:
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.Or):
        return any(_constant(v) for v in test.values)
    return _literal(test) is not _NOT_LITERAL


_NOT_LITERAL = object()


def _literal(node: ast.expr) -> object:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _NOT_LITERAL


_SYMMETRIC = (ast.Eq, ast.NotEq, ast.Is, ast.IsNot)
_SPELLINGS = ({ast.Eq, ast.Is}, {ast.NotEq, ast.IsNot})


def _comparisons(asserts: list[ast.Assert]) -> list[tuple[str, ast.cmpop, ast.expr, ast.Assert]]:
    """(subject, operator, expected, node) per `assert a <op> b`, the literal side as expected."""
    out = []
    for node in asserts:
        test = node.test
        if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
            continue
        left, op, right = test.left, test.ops[0], test.comparators[0]
        if (
            isinstance(op, _SYMMETRIC)
            and _literal(left) is not _NOT_LITERAL
            and _literal(right) is _NOT_LITERAL
        ):
            left, right = right, left
        out.append((ast.dump(left), op, right, node))
    return out


def _loosened(path: str, name: str, old: list[ast.Assert], new: list[ast.Assert]) -> list[str]:
    """Comparisons that got looser (== -> >=, is -> is not) or expect another literal.

    Old and new asserts pair up by subject; those whose subject was rewritten pair by position.
    """
    found = []
    remaining = _comparisons(new)
    bare = {ast.dump(n.test): n.lineno for n in new}
    pairs, unpaired = [], []
    for before in _comparisons(old):
        match = next((c for c in remaining if c[0] == before[0]), None)
        if match is not None:
            remaining.remove(match)
            pairs.append((before, match))
        elif before[0] in bare:
            line = bare[before[0]]
            found.append(
                f"assert weakened: {path}:{line} {name} `{_op(before[1])}` comparison dropped"
            )
        else:
            unpaired.append(before)
    pairs += zip(unpaired, remaining, strict=False)
    for (_, op, expected, _), (_, new_op, new_expected, node) in pairs:
        place = f"{path}:{node.lineno} {name}"
        if type(op) is not type(new_op) and not _singleton_spelling(op, new_op, new_expected):
            found.append(f"assert weakened: {place} `{_op(op)}` -> `{_op(new_op)}`")
        elif type(op) is type(new_op) and _other_literal(expected, new_expected):
            change = f"{ast.unparse(expected)} -> {ast.unparse(new_expected)}"
            found.append(f"expected value changed: {place} {change}")
    return found


def _singleton_spelling(op: ast.cmpop, new_op: ast.cmpop, expected: ast.expr) -> bool:
    """`== None` -> `is None` (and back) is style, not loosening."""
    value = _literal(expected)
    return any(value is s for s in (None, True, False)) and {type(op), type(new_op)} in _SPELLINGS


def _other_literal(expected: ast.expr, new_expected: ast.expr) -> bool:
    was, now = _literal(expected), _literal(new_expected)
    return was is not _NOT_LITERAL and now is not _NOT_LITERAL and was != now


def _op(op: ast.cmpop) -> str:
    return {
        ast.Eq: "==",
        ast.NotEq: "!=",
        ast.Lt: "<",
        ast.LtE: "<=",
        ast.Gt: ">",
        ast.GtE: ">=",
        ast.Is: "is",
        ast.IsNot: "is not",
        ast.In: "in",
        ast.NotIn: "not in",
    }[type(op)]
