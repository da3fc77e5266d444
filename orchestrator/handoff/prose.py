"""Read a handoff a person wrote: commands, ignores, counts, categories, context.

Nothing found here is ever executed. Only pytest invocations are taken from the text; anything
chained to them with shell operators is cut off (with a warning), and `--ignore` paths that leave
the repository are dropped.

Rules, chosen against the handoffs people actually write (see tests/resources/handoffs):

- The full-suite command: see commands.py.
- Counts are the ones the handoff reports as current: a line or heading saying "current" wins,
  else the first mention. Lines about targets, projections, goals and fixes are not counts.
- A failure count given as a range ("12-15 failures") is taken at its lower bound: the author
  claims at least that many, and the lower bounds stay within the reported total.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.categories import classify_prose
from orchestrator.errors import UsageError
from orchestrator.handoff.commands import (
    BACKTICKED,
    Findings,
    find_commands,
    full_suite,
    inside,
    safe_paths,
    without,
)
from orchestrator.handoff.markdown import Line, decode, plain, scan
from orchestrator.handoff.state import STATE_MARKER, HandoffView, PreviousCounts, ViewCategory

MAX_BYTES = 2_000_000  # a person's handoff
MAX_OURS_BYTES = 64_000_000  # ours carries agent diffs in its state block

NODE_ID = re.compile(r"[\w./-]+\.py::[\w:\[\]\-.,/=]+")
# `tests/test_x.py::{test_a, test_b}` (also after a class: `...::TestY::{a,b}`), brace-expanded
BRACED = re.compile(r"([\w./-]+\.py(?:::[\w\[\]\-.]+)*)::\{([^{}\n]+)\}")
PATHLIKE = re.compile(r"^[\w./-]+\.\w+(?:::\S+)?$|^[\w.-]+/[\w./-]*$")
# Lines about where the suite should get to, not where it is.
NOT_CURRENT = re.compile(
    r"target|project|expect|goal|reduc|eliminat|fixed|estimat|improves|after fix|would|\bwill\b"
    r"|from current",
    re.I,
)
NOT_CURRENT_HEADING = re.compile(r"success metric|project|expect|target|goal|after fix", re.I)
FAILURE_SECTION = re.compile(r"fail|categor|remaining|broken|issue|error", re.I)
NUMBERED_HEADING = re.compile(r"^\s*(\d+)[.)]\s+(.*)$")
COUNT_IN_TITLE = re.compile(
    r"\(?\s*(\d+)\s*(?:[-–]\s*(\d+))?\+?\s+(?:test\s+)?(?:failures?|failing|tests?|errors?)\s*\)?",
    re.I,
)
FIELD_LABEL = re.compile(
    r"^(pattern|root cause|affected(?: files)?|fix(?: strategy)?|error|files?)\s*:\s*(.*)$", re.I
)

# --- loading -----------------------------------------------------------------------------------


def load_text(path: Path) -> str:
    """The handoff's text, or a one-line UsageError saying what is wrong with the file."""
    if not path.is_file():
        raise UsageError(f"handoff {path} not found: pass the path of an existing markdown file")
    size = path.stat().st_size
    if size == 0:
        raise UsageError(f"handoff {path} is empty: pass a handoff file that has content")
    if size > MAX_OURS_BYTES:
        raise UsageError(f"handoff {path} is too large ({size} bytes): pass a markdown handoff")
    data = path.read_bytes()
    if b"\x00" in data:
        raise UsageError(f"handoff {path} is binary (NUL bytes): pass a markdown text file")
    if size > MAX_BYTES and STATE_MARKER.encode() not in data:
        raise UsageError(
            f"handoff {path} is too large ({size} bytes, limit {MAX_BYTES}): "
            "pass a markdown handoff, not a log"
        )
    return decode(data)


# --- counts ------------------------------------------------------------------------------------

_NUM = r"(\d[\d,]*)"
_LONE = r"(?<![\d/,.\-–])"
COUNT_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (name, re.compile(rx, re.I))
    for name, rx in [
        ("passed/total", _LONE + _NUM + r"\s*/\s*" + _NUM + r"\s+(?:tests?\s+)?pass(?:ed|ing)\b"),
        ("passed/total", r"\bpass(?:ed|ing)\s*\(\s*" + _NUM + r"\s*/\s*" + _NUM + r"\s*\)"),
        ("total", r"\btotal(?:\s+tests)?\s*:\s*~?" + _NUM),
        ("total", _LONE + _NUM + r"\s+(?:tests\s+)?total\b"),
        ("total", r"\bcollected\s+" + _NUM + r"\s+items?"),
        ("passed", r"\bpass(?:ed|ing)\s*:\s*" + _NUM),
        ("passed", _LONE + _NUM + r"\s+(?:tests?\s+)?(?:passed|passing)\b"),
        ("failed", r"\bfail(?:ed|ures?|ing)\s*:\s*" + _NUM),
        ("failed", _LONE + _NUM + r"\s+(?:tests?\s+)?(?:failed|failures?|failing)\b"),
        ("skipped", r"\bskipped\s*:\s*" + _NUM),
        ("skipped", _LONE + _NUM + r"\s+(?:tests?\s+)?skipped\b"),
        ("errors", r"\berrors?\s*:\s*" + _NUM),
        ("errors", _LONE + _NUM + r"\s+errors?\b"),
        ("rate", r"\bpass(?:ing)?\s+rate\s*:\s*~?(\d+(?:\.\d+)?)%"),
        ("rate", r"(\d+(?:\.\d+)?)%\s+pass(?:\s+rate|ing)\b"),
        ("rate", r"\d\s*/\s*\d+\s+(?:tests?\s+)?pass(?:ed|ing)\s*\(\s*(\d+(?:\.\d+)?)%\s*\)"),
    ]
]
CLAUSE = re.compile(r"\s[-–—]\s|;|[.!?](?:\s|$)")  # a line's statements, judged one by one
SUMMARY = re.compile(r"^=+ (.*\d.*) in ([\d.]+)s(?: \([\d:]+\))? =+$")
RUNTIME = re.compile(r"\b(?:runtime|run time|duration|took|completed in|finished in)\b", re.I)
DURATION = re.compile(
    r"(\d+(?:\.\d+)?)\s*\+?\s*(hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s)\b", re.I
)
UNIT_SECONDS = {"h": 3600, "m": 60, "s": 1}


def duration_seconds(text: str) -> float | None:
    """The first duration in `text`: "4 minutes 25 seconds" -> 265, "~4 minutes" -> 240."""
    total, end = None, None
    for m in DURATION.finditer(text):
        if end is not None and text[end : m.start()].strip(" ,and") != "":
            break
        total = (total or 0.0) + float(m.group(1)) * UNIT_SECONDS[m.group(2)[0].lower()]
        end = m.end()
    return total


@dataclass
class Observation:
    name: str
    value: float
    current: bool


def _observe(line: Line) -> list[Observation]:
    text = plain(line.text.lstrip("#"))
    heading_text = " ".join(h for _, h in line.headings)
    current = "current" in text.lower() or "current" in heading_text.lower()
    summary = SUMMARY.match(line.text.strip())
    if summary:
        return _summary(summary, current)
    if line.code or NOT_CURRENT_HEADING.search(heading_text):
        return []
    seen: list[Observation] = []
    clauses = [c for c in CLAUSE.split(text) if not NOT_CURRENT.search(c)]
    for name, pattern in COUNT_PATTERNS:
        for m in (m for clause in clauses for m in pattern.finditer(clause)):
            if name == "passed/total":
                seen.append(Observation("passed", _int(m.group(1)), current))
                seen.append(Observation("total", _int(m.group(2)), current))
            elif name == "rate":
                seen.append(Observation("rate", float(m.group(1)) / 100, current))
            else:
                seen.append(Observation(name, _int(m.group(1)), current))
    text = " ".join(clauses)
    if RUNTIME.search(text) and (secs := duration_seconds(text)) is not None:
        seen.append(Observation("duration_s", secs, current))
    return seen


def _summary(m: re.Match[str], current: bool) -> list[Observation]:
    """A pytest summary line: `=== 53 failed, 1269 passed in 240.1s ===`."""
    found = {"failed": 0, "passed": 0, "skipped": 0, "errors": 0}
    for n, word in re.findall(r"(\d+) (\w+)", m.group(1)):
        key = {"error": "errors", "xpassed": "passed", "xfailed": "skipped"}.get(word, word)
        if key in found:
            found[key] += int(n)
    obs = [Observation(k, v, current) for k, v in found.items()]
    obs.append(Observation("total", sum(found.values()), current))
    obs.append(Observation("duration_s", float(m.group(2)), current))
    return obs


def _int(text: str) -> int:
    return int(text.replace(",", ""))


def _counts(lines: list[Line]) -> tuple[PreviousCounts, float | None]:
    observations = [o for line in lines for o in _observe(line)]
    chosen: dict[str, float] = {}
    for o in sorted(observations, key=lambda o: not o.current):  # stable: current first
        chosen.setdefault(o.name, o.value)
    ints = {
        k: int(v)
        for k, v in chosen.items()
        if k in {"total", "passed", "failed", "errors", "skipped"}
    }
    counts = PreviousCounts(**ints, duration_s=chosen.get("duration_s"))
    rate = chosen.get("rate")
    if rate is None and counts.total and counts.passed is not None:
        rate = counts.passed / counts.total
    return counts, (round(rate, 4) if rate is not None else None)


# --- categories ---------------------------------------------------------------------------------


@dataclass
class Section:
    level: int
    title: str
    lines: list[Line] = field(default_factory=list)


def _category_sections(lines: list[Line]) -> list[Section]:
    """Numbered headings that name failures: `### 1. Model Defaults (23 failures)`."""
    sections: list[Section] = []
    for line in lines:
        if line.code or not line.headings:
            if sections and line.headings and _owns(sections[-1], line):
                sections[-1].lines.append(line)
            continue
        level, title = line.headings[-1]
        if line.is_heading and NUMBERED_HEADING.match(title):
            parents = " ".join(h for lvl, h in line.headings[:-1] if lvl < level)
            if COUNT_IN_TITLE.search(title) or FAILURE_SECTION.search(parents):
                sections.append(Section(level, title))
                continue
        if sections and _owns(sections[-1], line):
            sections[-1].lines.append(line)
    return sections


def _owns(section: Section, line: Line) -> bool:
    return any(lvl == section.level and h == section.title for lvl, h in line.headings)


def _fields(section: Section) -> dict[str, str]:
    """`**Pattern**: ...` style fields, each with the list items that follow it."""
    fields: dict[str, str] = {}
    current: str | None = None
    for line in section.lines:
        if line.code:
            continue
        text = plain(line.text)
        m = FIELD_LABEL.match(text)
        if m:
            current = m.group(1).lower().split()[0]  # pattern, root, affected, fix, error, file
            fields[current] = (fields.get(current, "") + " " + line.text.split(":", 1)[1]).strip()
        elif current and text and re.match(r"^\s*[-*+]\s", line.text):
            fields[current] += "\n" + line.text.strip()
        elif re.match(r"^\*\*[^*]+\*\*\s*:", line.text.strip()):
            current = None
    return fields


def _category(section: Section, found: Findings) -> ViewCategory:
    numbered = NUMBERED_HEADING.match(section.title)  # always: sections are numbered headings
    title = numbered.group(2) if numbered else section.title
    count_match = COUNT_IN_TITLE.search(title)
    count = None
    if count_match:
        count = int(count_match.group(1))
        title = (title[: count_match.start()] + title[count_match.end() :]).strip()
        if count_match.group(2):
            found.warnings.append(
                f"category '{_clean_title(title)}' gives a range of {count_match.group(1)}-"
                f"{count_match.group(2)} failures; its count is the lower bound"
            )
    else:
        found.unread.append(f"category heading without a count: {section.title}")
    title = _clean_title(title)
    fields = _fields(section)
    pattern = fields.get("pattern", "") + " " + fields.get("error", "")
    body = "\n".join(line.text for line in section.lines)
    files = [
        f.split("::")[0]
        for f in BACKTICKED.findall(fields.get("affected", "") + fields.get("file", ""))
        if PATHLIKE.match(f.strip())
    ]
    return ViewCategory(
        title=title,
        category=classify_prose(pattern, title, fields.get("root", "")),
        count=count,
        tests=node_ids(body),
        affected_files=list(dict.fromkeys(files)),
    )


def node_ids(text: str) -> list[str]:
    """The pytest node ids a text names, `path::{a, b}` expanded to `path::a`, `path::b`."""
    found: list[str] = []

    def expand(match: re.Match[str]) -> str:
        found.extend(
            f"{match.group(1)}::{name.strip()}"
            for name in match.group(2).split(",")
            if re.fullmatch(r"[\w\[\]\-.:]+", name.strip())
        )
        return " "

    rest = BRACED.sub(expand, text)
    return list(dict.fromkeys([*found, *NODE_ID.findall(rest)]))


def _clean_title(title: str) -> str:
    """Drop a trailing " - HIGHEST PRIORITY" style note and emphasis."""
    return re.sub(r"\s+[-–—]\s+[^-–—]*$", "", plain(title)).strip() or plain(title)


# --- context -----------------------------------------------------------------------------------


def _context(lines: list[Line], pattern: str) -> str | None:
    rx = re.compile(pattern, re.I)
    for line in lines:
        if not line.code and (m := rx.search(plain(line.text))):
            return m.group(1).strip().rstrip(".,")
    return None


def _slow_tests(lines: list[Line]) -> list[str]:
    """Backticked paths in sections whose heading says slow."""
    found: list[str] = []
    for line in lines:
        if line.code or "slow" not in line.heading.lower():
            continue
        found += [p for p in BACKTICKED.findall(line.text) if PATHLIKE.match(p.strip())]
    return list(dict.fromkeys(found))


# --- the whole -----------------------------------------------------------------------------------


def parse_handoff(text: str) -> HandoffView:
    """What a person's handoff says, as the contract's `handoff show` object. Never runs anything."""
    lines = scan(text)
    found = Findings()
    find_commands(lines, found)
    full = full_suite(found.commands)
    test_command, ignores, deselect, command_dir = None, [], [], None
    if full is None:
        found.warnings.append("no full-suite pytest command found")
    else:
        test_command, command_dir = full.text, full.directory
        ignores = safe_paths(full.option_values("--ignore"), "--ignore", found)
        deselect = safe_paths(full.option_values("--deselect"), "--deselect", found)
        if len(ignores) + len(deselect) < len(full.option_values("--ignore")) + len(
            full.option_values("--deselect")
        ):
            test_command = without(full, ignores, deselect)
    if command_dir and not inside(command_dir):
        found.warnings.append(f"commands run after `cd {command_dir}`, outside the repo; ignored")
        command_dir = None
    previous, rate = _counts(lines)
    slow = _slow_tests(lines)
    if full is not None and "slow" in full.label.lower():
        slow += [p for p in ignores + deselect if p not in slow]
    return HandoffView(
        source="free-form",
        test_command=test_command,
        ignores=ignores,
        deselect=deselect,
        previous=previous,
        categories=[_category(s, found) for s in _category_sections(lines)],
        commands=list(dict.fromkeys(c.text for c in found.commands)),
        unread=found.unread,
        working_directory=_context(lines, r"working directory\s*:\s*(\S.*)"),
        branch=_context(lines, r"\b(?:git )?branch\s*:\s*(\S+)"),
        command_dir=command_dir,
        slow_tests=slow,
        pass_rate=rate,
        warnings=found.warnings,
    )
