"""Triage: turn a suite run into failures and categories the planner can act on.

Categories come from `categories.categorize`, except that re-running (`IsolationResult`) wins:
a test that fails only after others is `test_isolation`. Each category's root cause and fix
strategy name what was actually seen (tables, columns, ids, patch targets, polluters), as its
spec's explainer finds it.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path

from orchestrator.categories import FailureGroup, categorize, spec, specialist_for
from orchestrator.categories.rules import short_exc
from orchestrator.models import (
    PRIORITIES,
    Category,
    Environment,
    Failure,
    IsolationFinding,
    IsolationResult,
    Priority,
    SlowTest,
    SuiteRun,
    TestResult,
    TriageReport,
)
from orchestrator.triage.environment import environment_facts
from orchestrator.triage.evidence import nose_style_failures
from orchestrator.triage.signature import repo_frames, short_message, signature, trim, where

ORDER_KINDS = frozenset({"polluter", "state_setter", "pair"})
LONGREPR_CHARS = 4000
AFFECTED_FILES = 50
LARGE_GROUP = 20
MAX_ITEMS = 5  # plan items one category splits into at most (the rest share the last)
CONTRACT = "test_framework_contract"
SLOW_S = 0.1  # a test faster than this is never worth listing as slow

# --- failures --------------------------------------------------------------------------------


def _test_file(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def _polluter(finding: IsolationFinding | None) -> str | None:
    """The one test that breaks the victim; state setters and pairs have none."""
    if finding and finding.kind == "polluter" and finding.culprits:
        return finding.culprits[0]
    return None


def _make_failure(
    result: TestResult,
    isolation: IsolationResult | None,
    finding: IsolationFinding | None,
    nose_style: bool = False,
) -> Failure:
    frames = repo_frames(result)
    inner = frames[-1] if frames else None
    category = categorize(result)
    alone = isolation.alone.get(result.nodeid) if isolation else None
    order_dependent = finding is not None or alone == "passes_alone"
    # The test file shows why (nose-style setup is never called); the message only the effect.
    evidence = CONTRACT if nose_style and not order_dependent else None
    longrepr = result.longrepr
    if longrepr and len(longrepr) > LONGREPR_CHARS:
        longrepr = "…" + longrepr[-(LONGREPR_CHARS - 1) :]  # the end holds the error
    return Failure(
        nodeid=result.nodeid,
        outcome="error" if result.outcome == "error" else "failed",
        category="test_isolation" if order_dependent else evidence or category,
        signature=signature(result),
        message=short_message(result),
        file=inner.path if inner else _test_file(result.nodeid),
        line=inner.line if inner else None,
        isolation=alone,
        polluter=_polluter(finding),
        duration_s=result.duration_s,
        message_category=category if order_dependent or evidence not in (None, category) else None,
        exc_type=result.exc_type,
        leak=finding.leak if finding else None,
        longrepr=longrepr,
    )


# --- categories ------------------------------------------------------------------------------


def priority(category: str, count: int, total: int) -> Priority:
    """The category's default priority, one level up for a large group.

    Large: at least 20 failures, or at least 5 that make a quarter of all failures.
    """
    rank = PRIORITIES.index(spec(category).priority)
    large = count >= LARGE_GROUP or (count >= 5 and count * 4 >= total)
    return PRIORITIES[max(rank - 1, 0) if large else rank]


def _affected_files(items: list[tuple[TestResult, Failure]]) -> list[str]:
    """Test files and repo source files in the tracebacks, most frequent first."""
    counts: Counter[str] = Counter()
    for result, failure in items:
        counts.update({_test_file(failure.nodeid)} | {f.path for f in repo_frames(result)})
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [path for path, _ in ranked[:AFFECTED_FILES]]


def _pattern(result: TestResult) -> str:
    exc = short_exc(result.exc_type)
    first = short_message(result).splitlines()[0]
    return first if exc in ("", "AssertionError") else f"{exc}: {first}"


def _items(
    cid: str, items: list[tuple[TestResult, Failure]], env: Environment | None
) -> list[tuple[str, str, list[tuple[TestResult, Failure]]]]:
    """The category's plan items: one per cause when its spec tells causes apart."""
    cause = spec(cid).cause
    if cause is None:
        return [("", "", items)]
    parts: dict[str, list[tuple[TestResult, Failure]]] = defaultdict(list)
    for result, failure in items:
        parts[cause(result, failure, env)].append((result, failure))
    ranked = sorted(parts.items(), key=lambda kv: -len(kv[1]))
    if len(ranked) > MAX_ITEMS:
        rest = [pair for _, group in ranked[MAX_ITEMS - 1 :] for pair in group]
        ranked = [*ranked[: MAX_ITEMS - 1], ("others", rest)]
    if len(ranked) == 1:
        return [("", ranked[0][0], items)]
    return [(_item_name(cid, part, i), part, group) for i, (part, group) in enumerate(ranked, 1)]


def _item_name(cid: str, part: str, rank: int) -> str:
    """`dependency_upgrade-numpy`; causes without a short name (signatures) are numbered."""
    slug = re.sub(r"[^a-z0-9]+", "-", part.lower()).strip("-")
    return f"{cid}-{slug}" if slug and len(slug) <= 30 and " " not in part else f"{cid}-{rank}"


def _title(title: str, item: str, part: str, g: FailureGroup) -> str:
    """A plan item's title names its cause; a numbered one (a signature) by its real message."""
    if not item:
        return f"{title}: {part}" if part and " " not in part else title
    cause = _pattern(g.items[0][0]) if item.rsplit("-", 1)[-1].isdigit() else part
    return f"{title}: {trim(cause, 80)}"


def _category(cid: str, g: FailureGroup, total: int, item: str = "", part: str = "") -> Category:
    info = spec(cid)
    seen, fix = info.explain(g)
    signatures = Counter(f.signature for _, f in g.items)
    return Category(
        id=cid,
        item=item,
        cause=part,
        title=_title(info.title, item, part, g),
        count=len(g.items),
        tests=[f.nodeid for _, f in g.items],
        affected_files=_affected_files(g.items),
        root_cause=f"{seen}: {info.root_cause}" if seen else info.root_cause,
        fix_strategy=f"{fix}; {info.fix_strategy}" if fix else info.fix_strategy,
        agent=specialist_for(cid),
        priority=priority(cid, len(g.items), total),
        pattern=_pattern(g.items[0][0]),
        signatures=[s for s, _ in signatures.most_common()],
    )


def slow_tests(run: SuiteRun, n: int = 10) -> list[SlowTest]:
    """The n slowest tests of the run (any outcome) that took a noticeable time, slowest first."""
    timed = sorted((r for r in run.results if r.duration_s >= SLOW_S), key=lambda r: -r.duration_s)
    return [SlowTest(nodeid=r.nodeid, duration_s=round(r.duration_s, 3)) for r in timed[:n]]


def _flaky(isolation: IsolationResult | None) -> set[str]:
    if isolation is None:
        return set()
    return set(isolation.flaky) | {f.victim for f in isolation.findings if f.kind == "flaky"}


def triage(
    run: SuiteRun,
    repo: Path,
    test_command: str,
    isolation: IsolationResult | None = None,
    slow_count: int = 10,
    previous_packages: dict[str, str] | None = None,
) -> TriageReport:
    """Failures with categories and signatures, grouped into categories ordered by priority.

    `previous_packages` are the versions the last handoff recorded (the last known-good state).
    """
    flaky = _flaky(isolation)
    findings = {
        f.victim: f for f in (isolation.findings if isolation else []) if f.kind in ORDER_KINDS
    }
    env = environment_facts(run.environment, repo, previous_packages)
    nose = nose_style_failures(repo, run.results, env)
    groups: dict[str, list[tuple[TestResult, Failure]]] = defaultdict(list)
    failures = []
    for result in run.results:
        if not result.failing or result.nodeid in flaky:
            continue
        failure = _make_failure(
            result, isolation, findings.get(result.nodeid), result.nodeid in nose
        )
        failures.append(failure)
        groups[failure.category].append((result, failure))
    categories = [
        _category(cid, FailureGroup(group, findings, where, env), len(failures), item, part)
        for cid, items in groups.items()
        for item, part, group in _items(cid, items, env)
    ]
    categories.sort(key=lambda c: (PRIORITIES.index(c.priority), -c.count, c.key))
    return TriageReport(
        repo=str(repo),
        test_command=test_command,
        baseline=run.counts(),
        failures=failures,
        categories=categories,
        slow_tests=slow_tests(run, slow_count),
        flaky=sorted(flaky),
        isolation=list(isolation.findings) if isolation else [],
        shuffle_seed=run.shuffle_seed,
        environment=env,
    )
