"""What one category's failures actually say: the root cause and fix seen in their messages.

Each category's spec names an explainer that scans the group's messages (and a sample of tracebacks)
for the concrete names behind the cause: tables and columns, ids and URLs, patch targets,
containers, polluters and what they leak. The findings prefix the category's generic text.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from orchestrator.categories.rules import message_text
from orchestrator.models import Environment, Failure, IsolationFinding, TestResult

LONGREPR_SAMPLE = 200  # tracebacks scanned per category for ids, URLs, patch targets


@dataclass
class FailureGroup:
    """The failures of one category and the texts the explainers scan.

    `locate` names where a failure happened: the innermost source frame as `path:func` (a test
    function when no source frame was involved), "" when no frame is in the repo.
    """

    items: list[tuple[TestResult, Failure]]
    findings: dict[str, IsolationFinding]
    locate: Callable[[TestResult], str]
    environment: Environment | None = None  # the target's installed packages and what changed

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
        return Counter(where for r, _ in self.items if (where := self.locate(r)))

    @cached_property
    def test_files(self) -> Counter[str]:
        return Counter(f.nodeid.split("::", 1)[0] for _, f in self.items)


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


def _join(*parts: str | int | Counter[str]) -> str:
    """The texts joined; a part is a text or, as in `count and f"..."`, the falsy count left out."""
    return "; ".join(p for p in parts if isinstance(p, str) and p)


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


def model_defaults(g: FailureGroup) -> tuple[str, str]:
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


def uuid_type(g: FailureGroup) -> tuple[str, str]:
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


def api_conflict(g: FailureGroup) -> tuple[str, str]:
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


def api_routing(g: FailureGroup) -> tuple[str, str]:
    codes = _count(g.texts, _RE["status"], _first_group)
    urls = _count(g.sources, _RE["url"], lambda m: f"{m.group(1).upper()} {m.group(2)}")
    seen = _join(codes and f"HTTP {_top(codes)}", urls and f"from {_top(urls)}")
    fix = f"mount the routers serving {_top(urls)} with the right prefix" if urls else ""
    return seen, fix


def _loc_field(m: re.Match) -> str:
    parts = [p.strip(" '\"") for p in m.group(1).split(",")]
    return parts[-1] if parts else ""


def validation_error(g: FailureGroup) -> tuple[str, str]:
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


def docker_lifecycle(g: FailureGroup) -> tuple[str, str]:
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


def async_event_loop(g: FailureGroup) -> tuple[str, str]:
    kinds = Counter(k for t in g.texts for k, rx in _ASYNC_KINDS.items() if rx.search(t))
    where = _top(g.where, 3) or _top(g.test_files, 3)
    seen = _join(kinds and _top(kinds), where and f"in {where}")
    fix = ""
    if "asyncio.run() inside a running loop" in kinds:
        fix = f"replace asyncio.run() with await in {where}"
    return seen, fix


def mock_not_called(g: FailureGroup) -> tuple[str, str]:
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


def db_schema(g: FailureGroup) -> tuple[str, str]:
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


def mapper_conflict(g: FailureGroup) -> tuple[str, str]:
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


def transaction_state(g: FailureGroup) -> tuple[str, str]:
    where = _top(g.where, 3)
    seen = f"transaction closed under {where}" if where else ""
    fix = (
        f"give {where} a session fixture with a savepoint (or a no-commit session)" if where else ""
    )
    return seen, fix


def timeout(g: FailureGroup) -> tuple[str, str]:
    where = _top(g.where, 3) or _top(g.test_files, 3)
    return f"{len(g.items)} tests hung; last seen in {where}", f"bound the waits in {where}"


def generic(g: FailureGroup) -> tuple[str, str]:
    sigs = Counter(f.signature for _, f in g.items)
    return f"most common: {_top(sigs, 3)}", ""


# The fix each kind of leak suggests, most telling kind first.
_LEAK_HINTS: dict[str, str] = {
    "env": "use monkeypatch.setenv there",
    "cwd": "use monkeypatch.chdir there",
    "attr": "use monkeypatch.setattr there (a MonkeyPatch() or patcher made by hand needs its undo()/stop())",
    "files": "write to tmp_path there",
    "modules": "import at module level or undo the import side effects",
}


def _leak_phrase(finding: IsolationFinding, polluter: str) -> tuple[str, str]:
    """("tests/a.py::t leaves SHOP_MODE='readonly' in os.environ", "use monkeypatch.setenv...")."""
    leak = finding.leak
    if not leak:
        return f"{polluter} leaves state behind", f"restore it in a teardown of {polluter}"
    kinds = {item.kind for items in finding.leaks.values() for item in items}
    hint = next((h for kind, h in _LEAK_HINTS.items() if kind in kinds), None)
    return f"{polluter} leaves {leak.replace(' left in ', ' in ')}", hint or (
        "restore it in a fixture teardown"
    )


def _isolation_line(finding: IsolationFinding) -> tuple[str, str, str]:
    """(the culprits, what the finding says, the fix it suggests or "")."""
    culprits = " + ".join(finding.culprits) or "another test"
    if finding.kind == "polluter":
        return (culprits, *_leak_phrase(finding, culprits))
    if finding.kind == "pair":
        return culprits, f"fails only after {culprits} run together", ""
    leak = f" ({finding.leak})" if finding.leak else ""
    return culprits, f"depends on state set by {culprits}{leak}", ""


def test_isolation(g: FailureGroup) -> tuple[str, str]:
    lines: Counter[tuple[str, str, str]] = Counter()
    unresolved = 0
    for _, failure in g.items:
        finding = g.findings.get(failure.nodeid)
        if finding is None:
            unresolved += 1
        else:
            lines[_isolation_line(finding)] += 1
    seen = [
        what + (f" ({n} victims)" if n > 1 else "") + (f"; {hint}" if hint else "")
        for (_, what, hint), n in lines.most_common(5)
    ]
    if unresolved:
        seen.append(f"{unresolved} tests pass alone but fail in the suite; polluter not found")
    fixes = dict.fromkeys(f"{culprits}: {hint}" for culprits, _, hint in lines if hint)
    return "; ".join(seen), "; ".join(fixes)
