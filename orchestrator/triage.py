"""Triage: turn a suite run into failures, signatures and categories the planner can act on.

A signature names one cause: the exception, its message with the volatile parts (addresses,
numbers, temp paths, UUIDs, quoted values) generalised, and the innermost source frame in the
repo. Categories come from `rules.categorize`, except that re-running (`IsolationResult`) wins:
a test that fails only after others is `test_isolation`. Each category's root cause and fix
strategy name what was actually seen (tables, columns, ids, patch targets, polluters), as
`explain` finds it.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from functools import lru_cache
from pathlib import Path

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from agents.base import agent_for
from orchestrator.explain import FailureGroup, explain
from orchestrator.models import (
    Category,
    Failure,
    Frame,
    IsolationFinding,
    IsolationResult,
    SlowTest,
    SuiteRun,
    TestResult,
    TriageReport,
)
from orchestrator.rules import CATEGORY_INFO, categorize, short_exc

PRIORITIES = ("critical", "high", "medium", "low")
ORDER_KINDS = frozenset({"polluter", "state_setter", "pair"})
MESSAGE_CHARS = 300
LONGREPR_CHARS = 4000
AFFECTED_FILES = 50
LARGE_GROUP = 20
SLOW_S = 0.1  # a test faster than this is never worth listing as slow

_TEST_FILE = re.compile(r"(?:^|/)(?:test_[^/]*|[^/]*_test)\.py$")
_ABSOLUTE = re.compile(r"^(?:/|[A-Za-z]:[\\/]|<)")
_THIRD_PARTY = re.compile(r"(?:^|/)(?:site-packages|dist-packages|\.?venv|\.tox|\.nox)/")

# Applied in order: UUIDs and paths before quotes and numbers eat their parts.
_NORMALISERS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"\b[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\b", re.I),
        "<uuid>",
    ),
    (re.compile(r"\b0x[0-9a-f]+\b", re.I), "0x?"),
    (
        re.compile(
            r"(?:/private)?/(?:tmp|var/folders)/\S*|\S*pytest-of-\S*|[A-Za-z]:\\\S*\\Temp\\\S*"
        ),
        "<tmp>",
    ),
    (re.compile(r"(?<!\w)'[^'\n]*'"), "'?'"),
    (re.compile(r'(?<!\w)"[^"\n]*"'), '"?"'),
    (re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b", re.I), "<hex>"),
    # HTTP statuses (100-599) tell causes apart; every other number is noise.
    (re.compile(r"\b(?![1-5]\d\d\b)\d+(?:\.\d+)?\b"), "<n>"),
]


# --- signatures ------------------------------------------------------------------------------


@lru_cache(maxsize=16384)
def is_repo_path(path: str) -> bool:
    """Frames inside the repo are recorded relative (stdlib, site-packages absolute), but a
    virtualenv inside the repo is relative too and still not the repo's code."""
    return not _ABSOLUTE.match(path) and not _THIRD_PARTY.search(path)


def _repo_frames(result: TestResult) -> list[Frame]:
    return [f for f in result.frames if is_repo_path(f.path)]


def _location(result: TestResult) -> str:
    """The innermost repo frame outside test files, as `path:func`.

    Test functions differ for every test, so a frame in a test file would split one cause into
    as many signatures as tests; conftest and source frames are where causes live.
    """
    for frame in reversed(result.frames):
        if is_repo_path(frame.path) and not _TEST_FILE.search(frame.path):
            return f"{frame.path}:{frame.func}" if frame.func else frame.path
    return ""


def _where(result: TestResult) -> str:
    """The innermost source frame, or the test function when no source frame was involved."""
    frames = _repo_frames(result)
    if not frames:
        return ""
    return _location(result) or f"{frames[-1].path}:{frames[-1].func}"


@lru_cache(maxsize=8192)
def normalise(line: str) -> str:
    """Generalise the parts of a message line that differ between instances of one cause."""
    for pattern, replacement in _NORMALISERS:
        line = pattern.sub(replacement, line)
    return line.strip()[:200]


def _trim(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _lines(text: str) -> list[str]:
    """The meaningful lines of a message: no blanks, no SQL echo, no background links."""
    lines = []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith(("[SQL:", "[parameters:", "(Background on this error")):
            break
        if line:
            lines.append(line)
    return lines


def _message(result: TestResult) -> str:
    """The exception's message, or pytest's `E ` lines when the message was not recorded."""
    if result.message:
        return result.message
    if result.longrepr:
        lines = [ln[1:].strip() for ln in result.longrepr.splitlines() if ln.startswith("E ")]
        return "\n".join(lines) or result.longrepr.strip().splitlines()[-1]
    return ""


@lru_cache(maxsize=16384)
def _parsed(message: str) -> tuple[str, str]:
    """(signature head, short message) of a message; cached because messages repeat."""
    lines = _lines(message)
    if not lines:
        return "", ""
    head = normalise(lines[0])
    if len(lines) > 1 and lines[1].startswith("+") and "where" in lines[1]:
        head += " | " + normalise(lines[1].lstrip("+ "))  # pytest's "where None = <X>.attr"
    return head, _trim("\n".join(lines[:3]), MESSAGE_CHARS)


def signature(result: TestResult) -> str:
    """One string per cause: exception, generalised message line, innermost source frame."""
    head = _parsed(_message(result))[0] or result.outcome
    exc = short_exc(result.exc_type)
    sig = f"{exc}: {head}" if exc else head
    location = _location(result)
    return f"{sig} @ {location}" if location else sig


# --- failures --------------------------------------------------------------------------------


def _short_message(result: TestResult) -> str:
    return _parsed(_message(result))[1] or result.outcome


def _test_file(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def _polluter(finding: IsolationFinding | None) -> str | None:
    """The one test that breaks the victim; state setters and pairs have none."""
    if finding and finding.kind == "polluter" and finding.culprits:
        return finding.culprits[0]
    return None


def _make_failure(
    result: TestResult, isolation: IsolationResult | None, finding: IsolationFinding | None
) -> Failure:
    frames = _repo_frames(result)
    inner = frames[-1] if frames else None
    category = categorize(result)
    alone = isolation.alone.get(result.nodeid) if isolation else None
    order_dependent = finding is not None or alone == "passes_alone"
    longrepr = result.longrepr
    if longrepr and len(longrepr) > LONGREPR_CHARS:
        longrepr = "…" + longrepr[-(LONGREPR_CHARS - 1) :]  # the end holds the error
    return Failure(
        nodeid=result.nodeid,
        outcome="error" if result.outcome == "error" else "failed",
        category="test_isolation" if order_dependent else category,
        signature=signature(result),
        message=_short_message(result),
        file=inner.path if inner else _test_file(result.nodeid),
        line=inner.line if inner else None,
        isolation=alone,
        polluter=_polluter(finding),
        duration_s=result.duration_s,
        message_category=category if order_dependent else None,
        exc_type=result.exc_type,
        leak=finding.leak if finding else None,
        longrepr=longrepr,
    )


# --- categories ------------------------------------------------------------------------------


def priority(category: str, count: int, total: int) -> str:
    """The category's default priority, one level up for a large group.

    Large: at least 20 failures, or at least 5 that make a quarter of all failures.
    """
    rank = PRIORITIES.index(CATEGORY_INFO[category].priority)
    large = count >= LARGE_GROUP or (count >= 5 and count * 4 >= total)
    return PRIORITIES[max(rank - 1, 0) if large else rank]


def _affected_files(items: list[tuple[TestResult, Failure]]) -> list[str]:
    """Test files and repo source files in the tracebacks, most frequent first."""
    counts: Counter[str] = Counter()
    for result, failure in items:
        counts.update({_test_file(failure.nodeid)} | {f.path for f in _repo_frames(result)})
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [path for path, _ in ranked[:AFFECTED_FILES]]


def _pattern(result: TestResult) -> str:
    exc = short_exc(result.exc_type)
    first = _short_message(result).splitlines()[0]
    return first if exc in ("", "AssertionError") else f"{exc}: {first}"


def _category(cid: str, g: FailureGroup, total: int) -> Category:
    info = CATEGORY_INFO[cid]
    seen, fix = explain(cid, g)
    signatures = Counter(f.signature for _, f in g.items)
    return Category(
        id=cid,
        title=info.title,
        count=len(g.items),
        tests=[f.nodeid for _, f in g.items],
        affected_files=_affected_files(g.items),
        root_cause=f"{seen}: {info.root_cause}" if seen else info.root_cause,
        fix_strategy=f"{fix}; {info.fix_strategy}" if fix else info.fix_strategy,
        agent=agent_for(cid),
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
) -> TriageReport:
    """Failures with categories and signatures, grouped into categories ordered by priority."""
    flaky = _flaky(isolation)
    findings = {
        f.victim: f for f in (isolation.findings if isolation else []) if f.kind in ORDER_KINDS
    }
    groups: dict[str, list[tuple[TestResult, Failure]]] = defaultdict(list)
    failures = []
    for result in run.results:
        if not result.failing or result.nodeid in flaky:
            continue
        failure = _make_failure(result, isolation, findings.get(result.nodeid))
        failures.append(failure)
        groups[failure.category].append((result, failure))
    categories = [
        _category(cid, FailureGroup(items, findings, _where), len(failures))
        for cid, items in groups.items()
    ]
    categories.sort(key=lambda c: (PRIORITIES.index(c.priority), -c.count, c.id))
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
    )


# --- rendering -------------------------------------------------------------------------------

_PRIORITY_STYLE = {"critical": "bold red", "high": "yellow", "medium": "cyan", "low": "dim"}


def render_table(report: TriageReport) -> RenderableType:
    """The readable triage: counts, a compact table of categories, then each category's story."""
    b = report.baseline
    counts = Text(
        f"{b.total} tests: {b.passed} passed, {b.failed} failed, {b.errors} errors, "
        f"{b.skipped} skipped in {b.duration_s:.1f}s"
        + (f"; {len(report.flaky)} flaky" if report.flaky else "")
    )
    table = Table(title="Failure categories")
    table.add_column("category", no_wrap=True)
    table.add_column("tests", justify="right")
    table.add_column("priority")
    table.add_column("agent")
    for c in report.categories:
        table.add_row(
            c.id, str(c.count), Text(c.priority, style=_PRIORITY_STYLE[c.priority]), c.agent or "-"
        )
    details = [
        Text.assemble(
            (f"\n{c.id}", "bold"),
            f" ({c.count}): {c.title}\n",
            ("  pattern: ", "dim"),
            _trim(c.pattern, 160),
            "\n",
            ("  cause:   ", "dim"),
            _trim(c.root_cause, 400),
            "\n",
            ("  fix:     ", "dim"),
            _trim(c.fix_strategy, 300),
            "\n",
            ("  files:   ", "dim"),
            ", ".join(c.affected_files[:5]),
        )
        for c in report.categories
    ]
    parts: list[RenderableType] = [counts, table, *details]
    if report.slow_tests:
        slow = Table(title="Slowest tests")
        slow.add_column("test")
        slow.add_column("seconds", justify="right")
        for s in report.slow_tests:
            slow.add_row(Text(s.nodeid), f"{s.duration_s:.2f}")
        parts.append(slow)
    return Group(*parts)
