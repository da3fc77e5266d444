"""Cheats visible in a patch's source: skips, deselection, collection hooks, weakened asserts.

A static look at the diff, file by file: markers (skip, xfail, collect_ignore, collection hooks,
deselecting options) the patch added, `addopts` in the pytest config files that drop tests, and
edited test functions that lost asserts, compare more loosely or expect another literal.
"""

from __future__ import annotations

import ast
import configparser
import shlex
import tomllib
from collections import Counter
from pathlib import PurePosixPath
from typing import TypeGuard

CONFIG_FILES = ("pytest.ini", "setup.cfg", "tox.ini", "pyproject.toml")


def static_violations(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Cheats visible in the source: skips, deselection, hooks, weakened or removed asserts.

    `before`/`after` map paths to sources at the base and in the patch; a path missing from
    `after` was deleted.
    """
    found: list[str] = []
    for path in sorted(set(before) | set(after)):
        old, new = before.get(path, ""), after.get(path)
        if is_config(path) and new is not None:
            found += _config_violations(path, old, new)
        elif path.endswith(".py"):
            if new is not None:
                found += _marker_violations(path, old, new, options=is_conftest(path))
            if is_test_file(path):
                found += _test_violations(path, old, new or "")
    return found


def is_test_file(path: str) -> bool:
    """A pytest test module by name: test_*.py or *_test.py."""
    name = PurePosixPath(path).name
    return name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py"))


def is_conftest(path: str) -> bool:
    return PurePosixPath(path).name == "conftest.py"


def is_config(path: str) -> bool:
    return PurePosixPath(path).name in CONFIG_FILES


def parse(source: str) -> ast.Module | None:
    """The module's syntax tree, or None when the source does not parse."""
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
    tree = parse(source)
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


def _is_hiding_option(value: object) -> TypeGuard[str]:
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
    tree = parse(source)
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
            if _checks_nothing(node, last):
                continue
            if last in ("raises", "warns", "deprecated_call") or last.startswith("assertRaises"):
                counts["pytest.raises"] += 1
            elif name.startswith("self.assert"):
                counts["assert"] += 1
            elif last.startswith("assert_"):
                counts["mock assertion"] += 1
    return counts


def _checks_nothing(call: ast.Call, last: str) -> bool:
    """`pytest.warns(None)` never failed (it only recorded): replacing it weakens nothing."""
    first = call.args[0] if call.args else None
    return last == "warns" and isinstance(first, ast.Constant) and first.value is None


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
