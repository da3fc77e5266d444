"""Judge one patch: its tests pass, nothing that passed breaks, and it did not cheat.

An agent's word counts for nothing here. The patch is what its branch holds against the base
commit; the verdict comes from real pytest runs in the worktree (the order's tests plus every
test that could see the change, in one run), from the collection (no test may disappear), and
from a static look at the diff (no skips, no deselection, no weakened asserts). Fixes that
belong in source code are also graded against the original test files, as SWE-bench does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from orchestrator import categories
from orchestrator.errors import TargetError
from orchestrator.events import Emit, Stop, ignore
from orchestrator.git import GitRepo
from orchestrator.models import FAILING, RunSpec, SuiteRun, TestResult, Verdict, WorkOrder
from orchestrator.suite.config import in_worktree
from orchestrator.suite.runner import run_suite
from orchestrator.verify.affected import Reach, reach
from orchestrator.verify.cheats import (
    TEST_FIX_RULES,
    is_config,
    is_conftest,
    is_pytest_config,
    is_startup_hook,
    is_test_file,
    static_violations,
)

_PASSING = {"passed", "xpassed"}
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
    stop: Stop | None = None,
) -> Verdict:
    """The verdict on the worktree's committed branch against `base`; the worktree comes back
    as it was (a test's commit or files never stay)."""
    with repo.preserved(worktree):
        return _verify(repo, worktree, base, order, baseline, spec, mode, emit, stop)


def _verify(
    repo: GitRepo,
    worktree: Path,
    base: str,
    order: WorkOrder,
    baseline: SuiteRun,
    spec: RunSpec,
    mode: Literal["targeted", "full"],
    emit: Emit,
    stop: Stop | None,
) -> Verdict:
    head = repo.rev("HEAD", cwd=worktree)
    changed = repo.changed_files(base, head)
    if not changed:
        return _rejected(order, "empty patch: nothing changed against the base commit")
    spec = in_worktree(spec, worktree).model_copy(update={"select": None, "collect_only": False})
    lives = categories.spec(order.category).fix_lives
    before, after = _sources(repo, base, changed), _sources(repo, head, changed)
    exempt = TEST_FIX_RULES if lives == "tests" else frozenset()
    violations = static_violations(before, after, exempt)
    reconfigured = len(static_violations(before, after)) > len(violations)

    # One run: every file the patch can reach is collected (no test may disappear from it; the
    # final run checks the rest), only the selection runs.
    collected = baseline.collected
    known = set(collected)
    reached = Reach(known, None) if mode == "full" else reach(worktree, changed, collected, before)
    wanted = reached.tests | set(order.tests) | {c for f in order.findings for c in f.culprits}
    asked = [n for n in collected if n in wanted]
    asked += [t for t in order.tests if t not in known]  # a file that did not collect
    asked += [p for p in changed if is_test_file(p)]  # a changed test file: every test it holds now
    asked = list(dict.fromkeys(asked))
    files = None
    if reached.files is not None:
        files = sorted(reached.files | {n.split("::")[0] for n in asked})
    label = f"verify {order.category}"
    selection = spec.model_copy(
        update={"select": asked, "collect_all": True, "collect_paths": files}
    )
    try:
        run = run_suite(selection, emit, label, stop)
    except TargetError as exc:  # the patch broke the suite itself (a conftest, an import)
        return _rejected(order, f"suite broken: {exc}")
    within = set(files) if files is not None else None
    violations += _shrunk(
        [n for n in collected if within is None or n.split("::")[0] in within], run.collected
    )
    modules = _module_targets(order.tests, run.collected)
    results = run.by_id()
    fixed = [t for t in order.tests if _passes(t, results, modules)]
    still_failing = [t for t in order.tests if t not in fixed]
    was = baseline.by_id()
    regressions = [n for n in results if _regressed(was.get(n), results.get(n))]
    violations += _hidden([n for n in asked if n in known], was, results)

    tests_changed = [p for p in changed if is_test_file(p) or is_conftest(p)]
    originals: dict[str, TestResult | None] = {}
    restore = _restored(changed, lives, reconfigured)
    if restore and not (violations or still_failing or regressions):
        originals = _original_tests(
            repo, worktree, base, order, baseline, spec, restore, emit, stop
        )
        why = (
            f"the base test files (a {order.category} fix belongs in source code)"
            if lives == "source"
            else f"the base {', '.join(restore)} (a {order.category} fix must hold without them)"
        )
        violations += [
            f"original tests fail: {t} fails with {why}"
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


def _restored(changed: list[str], lives: str, reconfigured: bool) -> list[str]:
    """The changed files put back as they were for the honest run, by where the fix lives:
    in source, tests and pytest's configuration all go back; either way, the ini files and
    start-up hooks; in the tests, the test files when the patch also reconfigured pytest (a
    pollution hook or fixture is then graded against the original tests)."""
    if lives == "source":
        return [p for p in changed if is_test_file(p) or is_pytest_config(p)]
    if lives == "either":
        return [p for p in changed if is_startup_hook(p) or (is_config(p) and p.endswith("ini"))]
    return [p for p in changed if is_test_file(p)] if reconfigured else []


def _module_targets(tests: list[str], collected: list[str]) -> dict[str, list[str]]:
    """A collection error's target is its file: the tests it collects now stand for it."""
    files = {t for t in tests if "::" not in t}
    found: dict[str, list[str]] = {t: [] for t in files}
    for nodeid in collected:
        path = nodeid.split("::", 1)[0]
        if path in found and nodeid != path:
            found[path].append(nodeid)
    return found


def _passes(test: str, results: dict[str, TestResult], modules: dict[str, list[str]]) -> bool:
    if test in modules:  # it collects now, and every test it holds passes
        tests = modules[test]
        return bool(tests) and all(results.get(n) and results[n].outcome in _PASSING for n in tests)
    return test in results and results[test].outcome in _PASSING


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
    stop: Stop | None,
) -> dict[str, TestResult | None]:
    """The order's tests run with `tests_changed` as they are at the base, over the patch."""
    targets = [t for t in order.tests if t in set(baseline.collected)]
    with repo.files_from(worktree, base, tests_changed):
        label = f"verify {order.category} (original tests)"
        run = run_suite(spec.model_copy(update={"select": targets}), emit, label, stop)
    results = run.by_id()
    return {t: results.get(t) for t in targets}


# --- what to run ---------------------------------------------------------------------------------


def _sources(repo: GitRepo, rev: str, paths: list[str]) -> dict[str, str]:
    """The inspectable files among `paths` as they are at `rev` (absent ones left out)."""
    texts = {p: repo.file_at(rev, p) for p in paths if p.endswith((".py", ".pth")) or is_config(p)}
    return {p: t for p, t in texts.items() if t is not None}


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
