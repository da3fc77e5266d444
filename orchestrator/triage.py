"""Triage: turn a suite run into failures, signatures and categories the planner can act on.

A signature names one cause: the exception, its message with the volatile parts (addresses,
numbers, temp paths, UUIDs, quoted values) generalised, and the innermost source frame in the
repo. Categories come from `rules.categorize`, except that re-running (`IsolationResult`) wins:
a test that fails only after others is `test_isolation`. Each category's root cause and fix
strategy name what was actually seen (tables, columns, ids, patch targets, polluters).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from agents.base import agent_for
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
from orchestrator.rules import CATEGORY_INFO, categorize, message_text, short_exc

PRIORITIES = ("critical", "high", "medium", "low")
ORDER_KINDS = frozenset({"polluter", "state_setter", "pair"})
MESSAGE_CHARS = 300
LONGREPR_CHARS = 4000
LONGREPR_SAMPLE = 200  # tracebacks scanned per category for ids, URLs, patch targets
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


# --- what a category's failures say ----------------------------------------------------------


@dataclass
class _Group:
    """The failures of one category and the texts the explainers scan."""

    items: list[tuple[TestResult, Failure]]
    findings: dict[str, IsolationFinding]

    @cached_property
    def texts(self) -> list[str]:
        return [message_text(r) for r, _ in self.items]

    @cached_property
    def sources(self) -> list[str]:
        """Messages plus a sample of tracebacks (which show the test's source lines)."""
        reprs = [r.longrepr for r, _ in self.items[:LONGREPR_SAMPLE] if r.longrepr]
        return self.texts + reprs

    @cached_property
    def where(self) -> Counter[str]:
        """Innermost source frames, or test functions when no source frame was involved."""
        counts: Counter[str] = Counter()
        for result, _ in self.items:
            frames = _repo_frames(result)
            if frames:
                counts[_location(result) or f"{frames[-1].path}:{frames[-1].func}"] += 1
        return counts

    @cached_property
    def test_files(self) -> Counter[str]:
        return Counter(_test_file(f.nodeid) for _, f in self.items)


def _count(
    texts: Iterable[str], pattern: re.Pattern[str], fmt: Callable[[re.Match], str]
) -> Counter[str]:
    """How many texts mention each formatted match (one count per text)."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update({fmt(m) for m in pattern.finditer(text)} - {""})
    return counts


def _top(counts: Counter[str], n: int = 5) -> str:
    """'a (3), b, c (2)': the most common items, counts shown when more than one."""
    parts = [f"{k} ({c})" if c > 1 else k for k, c in counts.most_common(n)]
    more = len(counts) - n
    return ", ".join(parts) + (f" and {more} more" if more > 0 else "")


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def _g1(m: re.Match) -> str:
    return m.group(1)


_RE = {
    "not_null": re.compile(r"NOT NULL constraint failed: ([\w.]+)"),
    "null_value": re.compile(r'null value in column "(\w+)"(?: of relation "(\w+)")?'),
    "cannot_be_null": re.compile(r"Column '(\w+)' cannot be null"),
    "none_attr": re.compile(r"where None = (.*)\.(\w+)\s*$", re.M),
    "obj_class": re.compile(r"<(?:[\w.]*\.)?(\w+) object at|^(\w+)\("),
    "id_line": re.compile(r"^.*(?:uuid|\bid\b|_id\b|-id\b).*$", re.I | re.M),
    "literal": re.compile(r"""(?<!\w)["']([A-Za-z0-9][\w.:-]{0,39})["']"""),
    "uuid": re.compile(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$", re.I),
    "str_hex": re.compile(r"'str' object has no attribute '(?:hex|bytes|int)'"),
    "unique": re.compile(r"UNIQUE constraint failed: ([\w., ]+)"),
    "dup_key": re.compile(r'duplicate key value violates unique constraint "(\w+)"'),
    "key_exists": re.compile(r"Key \((.+?)\)=\((.+?)\) already exists"),
    "name_value": re.compile(r"""["']?\bname["']?\s*[:=]\s*f?["']([^"'\n]{1,40})["']"""),
    "status": re.compile(r"\bassert ([1-5]\d\d) ==|<Response \[([1-5]\d\d)\]>"),
    "url": re.compile(r"""\.(get|post|put|patch|delete)\(\s*f?["'](/[^"'\s]*)["']""", re.I),
    "model": re.compile(r"validation errors? for (\w+)"),
    "field": re.compile(r"^([A-Za-z_][\w.]*)\n\s+.+?\[type=(\w+)", re.M),
    "loc": re.compile(r"""["']loc["']:\s*\[([^\]]*)\]"""),
    "command": re.compile(r"Command '\[(.*?)\]' returned non-zero exit status"),
    "quoted": re.compile(r"'([^']*)'"),
    "container": re.compile(r"[Cc]ontainer ([\w./-]+) is (not running|paused|restarting)"),
    "refused": re.compile(
        r"connecting to ([\w.-]+:\d+)|port (\d+) failed: Connection refused|\(('[\w.-]+', \d+)\)"
    ),
    "expected_mock": re.compile(r"Expected '([^']+)' to (?:have been|be) (?:called|awaited)"),
    "patch": re.compile(r"""patch\(\s*["']([\w.]+)["']"""),
    "patch_object": re.compile(r"""patch\.object\(\s*([\w.]+)\s*,\s*["'](\w+)["']"""),
    "no_table": re.compile(
        r"no such table: ([\w.]+)|relation \"([\w.]+)\" does not exist|Table '([\w.]+)' doesn't exist"
    ),
    "no_column": re.compile(
        r"no such column: ([\w.]+)|column \"(\w+)\"(?: of relation \"(\w+)\")? does not exist|has no column named (\w+)"
    ),
    "multiple": re.compile(r'Multiple classes found for path "([\w.]+)"'),
    "table_defined": re.compile(r"Table '([\w.]+)' is already defined"),
    "locate": re.compile(r"expression '([\w.]+)' failed to locate a name"),
    "cannot_import": re.compile(r"cannot import name '(\w+)' from '([\w.]+)'"),
    "no_module": re.compile(r"No module named '([\w.]+)'"),
}

_ASYNC_KINDS = {
    "asyncio.run() inside a running loop": re.compile(
        r"cannot be called from a running event loop"
    ),
    "objects bound to a different loop": re.compile(r"different (?:event )?loop"),
    "closed event loop": re.compile(r"Event loop is closed"),
    "loop already running": re.compile(r"event loop is already running"),
    "no current event loop": re.compile(r"no (?:current|running) event loop"),
}


def _first_group(m: re.Match) -> str:
    return next((g for g in m.groups() if g), "")


def _none_attr(m: re.Match) -> str:
    owner = _RE["obj_class"].search(m.group(1))
    name = owner and (owner.group(1) or owner.group(2))
    return f"{name}.{m.group(2)}" if name else m.group(2)


def _id_literals(texts: Iterable[str]) -> Counter[str]:
    """Non-UUID string literals used as ids ("test-id", "evt-001") in messages and sources."""
    counts: Counter[str] = Counter()
    for text in texts:
        found = set()
        for line in _RE["id_line"].finditer(text):
            for m in _RE["literal"].finditer(line.group(0)):
                value = m.group(1)
                if (
                    ("-" in value or any(c.isdigit() for c in value))
                    and not _RE["uuid"].match(value)
                    and not value.endswith(".py")
                ):
                    found.add(f'"{value}"')
        counts.update(found)
    return counts


def _explain_model_defaults(g: _Group) -> tuple[str, str]:
    nulls = _count(g.texts, _RE["not_null"], _g1)
    nulls += _count(
        g.texts,
        _RE["null_value"],
        lambda m: f"{m.group(2)}.{m.group(1)}" if m.group(2) else m.group(1),
    )
    nulls += _count(g.texts, _RE["cannot_be_null"], _g1)
    nones = _count(g.texts, _RE["none_attr"], _none_attr)
    seen = _join(
        nulls and f"NOT NULL failed on {_top(nulls)}", nones and f"None read from {_top(nones)}"
    )
    fix = _join(
        nones and f"set defaults for {_top(nones)} in __init__ or a mixin",
        nulls and f"generate values (e.g. uuid4 ids) for {_top(nulls)} explicitly",
    )
    return seen, fix


def _explain_uuid_type(g: _Group) -> tuple[str, str]:
    ids = _id_literals(g.sources)
    str_hex = sum(1 for t in g.texts if _RE["str_hex"].search(t))
    seen = _join(
        ids and f"non-UUID ids {_top(ids)} used where uuid.UUID is expected",
        str_hex
        and f"str passed to a UUID column ({str_hex} tests: 'str' object has no attribute 'hex')",
    )
    where = _top(g.test_files, 3)
    fix = f"replace {_top(ids)} with real UUIDs (uuid.uuid4()) in {where}" if ids else ""
    return seen, fix or f"pass uuid.UUID objects, not strings, in {where}"


def _explain_api_conflict(g: _Group) -> tuple[str, str]:
    keys = _count(g.texts, _RE["unique"], _g1) + _count(g.texts, _RE["dup_key"], _g1)
    values = _count(g.texts, _RE["key_exists"], lambda m: f"{m.group(1)}={m.group(2)}")
    values += _count(g.sources, _RE["name_value"], lambda m: f'"{m.group(1)}"')
    conflicts = _count(g.texts, _RE["status"], _first_group)["409"]
    seen = _join(
        keys and f"unique constraint {_top(keys)} violated",
        conflicts and f"{conflicts} requests got 409 Conflict",
        values and f"repeated test values {_top(values)}",
    )
    fix = f"make {_top(values)} unique per test (e.g. a uuid4 suffix)" if values else ""
    return seen, fix


def _explain_api_routing(g: _Group) -> tuple[str, str]:
    codes = _count(g.texts, _RE["status"], _first_group)
    urls = _count(g.sources, _RE["url"], lambda m: f"{m.group(1).upper()} {m.group(2)}")
    seen = _join(codes and f"HTTP {_top(codes)}", urls and f"from {_top(urls)}")
    fix = f"mount the routers serving {_top(urls)} with the right prefix" if urls else ""
    return seen, fix


def _loc_field(m: re.Match) -> str:
    parts = [p.strip(" '\"") for p in m.group(1).split(",")]
    return parts[-1] if parts else ""


def _explain_validation_error(g: _Group) -> tuple[str, str]:
    models = _count(g.texts, _RE["model"], _g1)
    fields = _count(g.texts, _RE["field"], lambda m: f"{m.group(1)} ({m.group(2)})")
    fields += _count(g.sources, _RE["loc"], _loc_field)
    ids = _id_literals(g.sources) if any("uuid" in s.lower() for s in g.sources) else Counter()
    seen = _join(
        models and f"rejected by {_top(models)}",
        fields and f"invalid fields {_top(fields)}",
        ids and f"non-UUID ids {_top(ids)}",
    )
    fix = f"send real UUIDs (str(uuid.uuid4())) instead of {_top(ids)}" if ids else ""
    return seen, fix


def _command(m: re.Match) -> str:
    args = _RE["quoted"].findall(m.group(1))
    return " ".join([Path(args[0]).name, *args[1:3]]) if args else ""


def _explain_docker_lifecycle(g: _Group) -> tuple[str, str]:
    commands = _count(g.texts, _RE["command"], _command)
    states = _count(g.texts, _RE["container"], lambda m: f"{m.group(1)} {m.group(2)}")
    refused = _count(g.texts, _RE["refused"], _first_group)
    seen = _join(
        commands and f"failed: {_top(commands)}",
        states and f"container {_top(states)}",
        refused and f"connection refused to {_top(refused)}",
    )
    fix = f"restore container state in a finalizer for {_top(commands)}" if commands else ""
    return seen, fix


def _explain_async_event_loop(g: _Group) -> tuple[str, str]:
    kinds = Counter(k for t in g.texts for k, rx in _ASYNC_KINDS.items() if rx.search(t))
    where = _top(g.where, 3) or _top(g.test_files, 3)
    seen = _join(kinds and _top(kinds), where and f"in {where}")
    fix = ""
    if "asyncio.run() inside a running loop" in kinds:
        fix = f"replace asyncio.run() with await in {where}"
    return seen, fix


def _explain_mock_not_called(g: _Group) -> tuple[str, str]:
    mocks = _count(g.texts, _RE["expected_mock"], _g1)
    targets = _count(g.sources, _RE["patch"], _g1)
    targets += _count(g.sources, _RE["patch_object"], lambda m: f"{m.group(1)}.{m.group(2)}")
    seen = _join(
        mocks and f"never called: {_top(mocks)}", targets and f"patched as {_top(targets)}"
    )
    fix = ""
    if mocks or targets:
        fix = f"patch {_top(targets or mocks)} in the module that looks the name up, not where it is defined"
    return seen, fix


def _explain_db_schema(g: _Group) -> tuple[str, str]:
    tables = _count(g.texts, _RE["no_table"], _first_group)
    columns = _count(
        g.texts,
        _RE["no_column"],
        lambda m: f"{m.group(3)}.{m.group(2)}" if m.group(3) else _first_group(m),
    )
    seen = _join(
        tables and f"missing tables {_top(tables)}", columns and f"missing columns {_top(columns)}"
    )
    fix = _join(
        tables and f"import the models defining {_top(tables)} before create_all in test setup",
        columns and f"add {_top(columns)} (model or migration)",
    )
    return seen, fix


def _explain_mapper_conflict(g: _Group) -> tuple[str, str]:
    classes = _count(g.texts, _RE["multiple"], _g1) + _count(g.texts, _RE["locate"], _g1)
    tables = _count(g.texts, _RE["table_defined"], _g1)
    seen = _join(
        classes and f"classes registered twice or unresolved: {_top(classes)}",
        tables and f"tables defined twice: {_top(tables)}",
    )
    fix = (
        f"import the modules defining {_top(classes or tables)} through one path"
        if classes or tables
        else ""
    )
    return seen, fix


def _explain_transaction_state(g: _Group) -> tuple[str, str]:
    where = _top(g.where, 3)
    seen = f"transaction closed under {where}" if where else ""
    fix = (
        f"give {where} a session fixture with a savepoint (or a no-commit session)" if where else ""
    )
    return seen, fix


def _explain_timeout(g: _Group) -> tuple[str, str]:
    where = _top(g.where, 3) or _top(g.test_files, 3)
    return f"{len(g.items)} tests hung; last seen in {where}", f"bound the waits in {where}"


def _explain_collection_error(g: _Group) -> tuple[str, str]:
    names = _count(g.texts, _RE["cannot_import"], lambda m: f"{m.group(1)} from {m.group(2)}")
    modules = _count(g.texts, _RE["no_module"], _g1)
    files = _top(g.test_files, 5)
    seen = _join(
        names and f"cannot import {_top(names)}",
        modules and f"no module {_top(modules)}",
        f"in {files}",
    )
    return seen, f"fix the imports in {files}"


def _explain_unknown(g: _Group) -> tuple[str, str]:
    sigs = Counter(f.signature for _, f in g.items)
    return f"most common: {_top(sigs, 3)}", ""


_LEAK_HINTS: list[tuple[str, str]] = [
    ("os.environ", "use monkeypatch.setenv there"),
    ("cwd changed", "use monkeypatch.chdir there"),
    ("rebound", "use monkeypatch.setattr there"),
    (" added (", "use monkeypatch.setattr there"),
    ("files left", "write to tmp_path there"),
    ("modules newly imported", "import at module level or undo the import side effects"),
]


def _leak_phrase(polluter: str, leak: str | None) -> tuple[str, str]:
    """("tests/a.py::t leaves SHOP_MODE='readonly' in os.environ", "use monkeypatch.setenv...")."""
    if not leak:
        return f"{polluter} leaves state behind", f"restore it in a teardown of {polluter}"
    hint = next((h for key, h in _LEAK_HINTS if key in leak), "restore it in a fixture teardown")
    return f"{polluter} leaves {leak.replace(' left in ', ' in ')}", hint


def _isolation_line(finding: IsolationFinding) -> tuple[str, str]:
    """What one finding says, and the fix it suggests (empty when none is known)."""
    culprits = " + ".join(finding.culprits) or "another test"
    if finding.kind == "polluter":
        return _leak_phrase(culprits, finding.leak)
    if finding.kind == "pair":
        return f"fails only after {culprits} run together", ""
    leak = f" ({finding.leak})" if finding.leak else ""
    return f"depends on state set by {culprits}{leak}", ""


def _explain_test_isolation(g: _Group) -> tuple[str, str]:
    lines: Counter[tuple[str, str]] = Counter()
    unresolved = 0
    for _, failure in g.items:
        finding = g.findings.get(failure.nodeid)
        if finding is None:
            unresolved += 1
        else:
            lines[_isolation_line(finding)] += 1
    seen = [
        what + (f" ({n} victims)" if n > 1 else "") + (f"; {hint}" if hint else "")
        for (what, hint), n in lines.most_common(5)
    ]
    if unresolved:
        seen.append(f"{unresolved} tests pass alone but fail in the suite; polluter not found")
    fixes = dict.fromkeys(f"{what.split(' leaves ')[0]}: {hint}" for what, hint in lines if hint)
    return "; ".join(seen), "; ".join(fixes)


_EXPLAINERS: dict[str, Callable[[_Group], tuple[str, str]]] = {
    "model_defaults": _explain_model_defaults,
    "uuid_type": _explain_uuid_type,
    "api_conflict": _explain_api_conflict,
    "api_routing": _explain_api_routing,
    "validation_error": _explain_validation_error,
    "docker_lifecycle": _explain_docker_lifecycle,
    "async_event_loop": _explain_async_event_loop,
    "mock_not_called": _explain_mock_not_called,
    "db_schema": _explain_db_schema,
    "mapper_conflict": _explain_mapper_conflict,
    "transaction_state": _explain_transaction_state,
    "test_isolation": _explain_test_isolation,
    "timeout": _explain_timeout,
    "collection_error": _explain_collection_error,
    "unknown": _explain_unknown,
}


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


def _category(cid: str, g: _Group, total: int) -> Category:
    info = CATEGORY_INFO[cid]
    seen, fix = _EXPLAINERS[cid](g)
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
        _category(cid, _Group(items, findings), len(failures)) for cid, items in groups.items()
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
    """The readable triage: counts, one row per category, the slowest tests."""
    b = report.baseline
    counts = Text(
        f"{b.total} tests: {b.passed} passed, {b.failed} failed, {b.errors} errors, "
        f"{b.skipped} skipped in {b.duration_s:.1f}s"
        + (f"; {len(report.flaky)} flaky" if report.flaky else "")
    )
    table = Table(title="Failure categories", show_lines=True, expand=True)
    for name, kw in (
        ("category", {"no_wrap": True}),
        ("n", {"justify": "right"}),
        ("priority", {}),
        ("agent", {}),
        ("root cause / fix", {"ratio": 3}),
        ("files", {"ratio": 1}),
    ):
        table.add_column(name, **kw)
    for c in report.categories:
        table.add_row(
            c.id,
            str(c.count),
            Text(c.priority, style=_PRIORITY_STYLE[c.priority]),
            c.agent or "-",
            Text.assemble(
                _trim(c.root_cause, 240), "\n", ("fix: ", "dim"), _trim(c.fix_strategy, 200)
            ),
            Text("\n".join(c.affected_files[:3])),
        )
    parts: list[RenderableType] = [counts, table]
    if report.slow_tests:
        slow = Table(title="Slowest tests")
        slow.add_column("test")
        slow.add_column("seconds", justify="right")
        for s in report.slow_tests:
            slow.add_row(Text(s.nodeid), f"{s.duration_s:.2f}")
        parts.append(slow)
    return Group(*parts)
