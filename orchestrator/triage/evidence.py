"""Evidence from the test files themselves, for causes no message shows.

pytest 8 stopped calling nose-style `setup()`/`teardown()` methods and module functions. Nothing
says so when a test runs: the test just finds its state missing (an AttributeError on `self`, a
missing table, a None). The test file shows it: the failing test's class (or module) defines
`setup`/`teardown` and no `setup_method`/`setup_module`.
"""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

from orchestrator.models import Environment, TestResult

NOSE_METHODS = frozenset({"setup", "teardown"})
XUNIT_METHODS = frozenset({"setup_method", "teardown_method", "setup_module", "teardown_module"})


def nose_style_failures(repo: Path, results: list[TestResult], env: Environment | None) -> set[str]:
    """Failing tests whose class or module relies on nose-style setup that pytest >= 8 skips."""
    version = env.version("pytest") if env else None
    if version and _major(version) < 8:
        return set()
    found = set()
    for result in results:
        if not result.failing or result.when == "collect" or "::" not in result.nodeid:
            continue
        path, *classes, _ = result.nodeid.split("::")
        file = repo / path
        try:
            nose = _nose_scopes(str(file), file.stat().st_mtime_ns)
        except OSError:
            continue
        if ("",) in nose and not classes or tuple(classes[:1]) in nose:
            found.add(result.nodeid)
    return found


def _major(version: str) -> int:
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else 0


@lru_cache(maxsize=1024)
def _nose_scopes(path: str, mtime_ns: int) -> frozenset[tuple[str, ...]]:
    """("",) when the module has nose-style functions; (Class,) for each such class."""
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return frozenset()
    scopes: set[tuple[str, ...]] = set()
    if _nose(tree.body):
        scopes.add(("",))
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and not _is_unittest(node) and _nose(node.body):
            scopes.add((node.name,))
    return frozenset(scopes)


def _nose(body: list[ast.stmt]) -> bool:
    names = {n.name for n in body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    return bool(names & NOSE_METHODS) and not names & XUNIT_METHODS


def _is_unittest(node: ast.ClassDef) -> bool:
    """unittest classes call setUp/tearDown; a lowercase `setup` there was never called."""
    return any(ast.unparse(base).endswith("TestCase") for base in node.bases)
