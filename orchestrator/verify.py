"""Judge one patch: its tests pass, nothing that passed breaks, and it did not cheat.

An agent's word counts for nothing here. The patch is what its branch holds against the base
commit; the verdict comes from real pytest runs in the worktree (the order's tests plus every
test that could see the change, in one run), from the collection (no test may disappear), and
from a static look at the diff (no skips, no deselection, no weakened asserts). Fixes that
belong in source code are also graded against the original test files, as SWE-bench does.
"""

from __future__ import annotations

import ast
from pathlib import Path, PurePosixPath
from typing import Literal

from orchestrator.cheats import is_config, is_conftest, is_test_file, parse, static_violations
from orchestrator.config import in_worktree
from orchestrator.errors import TargetError
from orchestrator.events import Emit, ignore
from orchestrator.gitops import GitRepo
from orchestrator.models import FAILING, RunSpec, SuiteRun, TestResult, Verdict, WorkOrder
from orchestrator.runner import collect, run_suite

# Categories whose fix lives in source code: the original tests must pass over the patch.
# uuid_type, api_conflict, validation_error, test_isolation and mock_not_called are usually
# wrong tests; the rest may be either, so their test edits are only reported (db_schema among
# them: `create_all` usually runs in a test conftest, where the missing model import belongs).
SOURCE_FIX_CATEGORIES: frozenset[str] = frozenset(
    {"model_defaults", "mapper_conflict", "api_routing", "transaction_state"}
)
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

    tests_changed = [p for p in changed if is_test_file(p) or is_conftest(p)]
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
    texts = {p: repo.file_at(rev, p) for p in paths if p.endswith(".py") or is_config(p)}
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
    conftest_dirs = [PurePosixPath(p).parent for p in changed if is_conftest(p)]
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
