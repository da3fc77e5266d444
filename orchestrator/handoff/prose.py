"""Read a handoff a person wrote: commands, ignores, counts, categories, context.

Nothing found here is ever executed. Only pytest invocations are taken from the text; anything
chained to them with shell operators is cut off (with a warning), and `--ignore` paths that leave
the repository are dropped.

Rules, chosen against the handoffs people actually write (see tests/resources/handoffs):

- The full-suite command is the one labelled as such (its `#` comment, heading or the line before
  its code block says full / entire / whole / complete / suite) that names no test file or node
  id; among several, the one with the most `--ignore`s wins, then the first. The ignores are what
  the author runs the suite with day to day (the slow or hanging files), and the counts they
  report were taken that way; an unfiltered "entire suite" run is their final check, not the
  resume point. Without a label, the same preference applies to every command naming no file.
- Counts are the ones the handoff reports as current: a line or heading saying "current" wins,
  else the first mention. Lines about targets, projections, goals and fixes are not counts.
- A failure count given as a range ("12-15 failures") is taken at its lower bound: the author
  claims at least that many, and the lower bounds stay within the reported total.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path

from orchestrator.categories import classify_prose
from orchestrator.errors import UsageError
from orchestrator.handoff.state import STATE_MARKER, HandoffView, PreviousCounts, ViewCategory

MAX_BYTES = 2_000_000  # a person's handoff
MAX_OURS_BYTES = 64_000_000  # ours carries agent diffs in its state block

SHELL_LANGS = {"", "bash", "sh", "shell", "zsh", "console", "shell-session", "text", "txt"}
PYTEST = re.compile(
    r"(?:(?<=\s)|^)"
    r"(?:(?:uv|poetry|pipenv|pdm|hatch)\s+run\s+(?:-\S+\s+)*|(?:\S*/)?python3?(?:\.\d+)?\s+-m\s+)?"
    r"pytest(?=\s|$)"
)
SAFE_PREFIX = re.compile(
    r"^\s*(?:cd\s+\S+|(?:source|\.)\s+\S+|export\s+\w+=\S*|conda\s+activate\s+\S+|workon\s+\S+)\s*$"
)
ENV_ASSIGNMENTS = re.compile(r"^\s*(?:\w+=\S*\s+)*$")
NODE_ID = re.compile(r"[\w./-]+\.py::[\w:\[\]\-.,/=]+")
BACKTICKED = re.compile(r"`([^`]+)`")
PATHLIKE = re.compile(r"^[\w./-]+\.\w+(?:::\S+)?$|^[\w.-]+/[\w./-]*$")
FULL_LABEL = re.compile(r"\b(?:full|entire|whole|complete|suite)\b", re.I)
VALUE_OPTIONS = {
    "--ignore",
    "--deselect",
    "-k",
    "-m",
    "-p",
    "-c",
    "-o",
    "--rootdir",
    "--tb",
    "--cov",
    "--ignore-glob",
    "--maxfail",
    "-n",
    "--durations",
    "--timeout",
}

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


def decode(data: bytes) -> str:
    """UTF-8 (BOM tolerated), with UTF-8 that was mis-decoded as cp1252/mac_roman repaired."""
    text = data.decode("utf-8-sig", errors="replace")
    return re.sub(r"[^\x00-\x7f]+", _repair_run, text)


def _repair_run(match: re.Match[str]) -> str:
    run = match.group(0)
    for encode in (_encode_cp1252, _encode_mac_roman):
        try:
            fixed = encode(run).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
        if fixed != run:
            return fixed
    return run


def _encode_cp1252(text: str) -> bytes:
    # cp1252 leaves five bytes undefined; mis-decoders pass them through as C1 controls.
    return b"".join(bytes([ord(c)]) if 0x80 <= ord(c) <= 0x9F else c.encode("cp1252") for c in text)


def _encode_mac_roman(text: str) -> bytes:
    return text.encode("mac_roman")


# --- the document as lines with context ----------------------------------------------------------


@dataclass
class Line:
    text: str
    headings: tuple[tuple[int, str], ...]  # the enclosing headings, outermost first
    code: bool = False
    lang: str = ""
    block: int = -1  # which code block
    before_block: str = ""  # the last prose line before this line's code block

    @property
    def heading(self) -> str:
        return self.headings[-1][1] if self.headings else ""


def scan(text: str) -> list[Line]:
    """Split markdown into lines, each knowing its headings and whether it is code."""
    lines: list[Line] = []
    headings: list[tuple[int, str]] = []
    fence: str | None = None
    lang = ""
    block = -1
    last_prose = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        opener = re.match(r"^(`{3,}|~{3,})\s*([\w+-]*)", stripped)
        if fence is None and opener:
            fence, lang, block = opener.group(1), opener.group(2).lower(), block + 1
            continue
        if fence is not None:
            if stripped.startswith(fence) and set(stripped) <= set(fence[0]):
                fence = None
                continue
            lines.append(Line(raw, tuple(headings), True, lang, block, last_prose))
            continue
        heading = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", stripped)
        if heading:
            level = len(heading.group(1))
            headings = [h for h in headings if h[0] < level] + [(level, heading.group(2))]
        lines.append(Line(raw, tuple(headings)))
        if stripped:
            last_prose = stripped
    return lines


def plain(text: str) -> str:
    """Prose without emphasis, list markers and code ticks, for matching."""
    text = re.sub(r"^\s*(?:[-*+]|\d+[.)])\s+", "", text)
    return re.sub(r"\*\*|__|`", "", text).strip()


# --- commands ----------------------------------------------------------------------------------


@dataclass
class Command:
    text: str
    label: str
    directory: str | None = None
    tokens: list[str] = field(default_factory=list)

    def option_values(self, name: str) -> list[str]:
        values = []
        for i, tok in enumerate(self.tokens):
            if tok.startswith(name + "="):
                values.append(tok.split("=", 1)[1])
            elif tok == name and i + 1 < len(self.tokens):
                values.append(self.tokens[i + 1])
        return values

    def targets(self) -> list[str]:
        """Positional arguments after `pytest`: the paths and node ids it runs."""
        start = self.tokens.index("pytest") + 1 if "pytest" in self.tokens else len(self.tokens)
        args, skip = [], False
        for tok in self.tokens[start:]:
            if skip:
                skip = False
            elif tok in VALUE_OPTIONS:
                skip = True
            elif not tok.startswith("-"):
                args.append(tok)
        return args

    def names_tests(self) -> bool:
        return any(".py" in t or "::" in t for t in self.targets())


@dataclass
class Findings:
    commands: list[Command] = field(default_factory=list)
    unread: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _cut(command: str) -> int:
    """Where the command stops: the first unquoted shell operator, expansion or comment."""
    quote: str | None = None
    i = 0
    while i < len(command):
        ch = command[i]
        if quote == "'":
            quote = None if ch == "'" else quote
        elif ch == "\\":
            i += 2
            continue
        elif ch == "`" or command.startswith("$(", i):
            return i
        elif quote == '"':
            quote = None if ch == '"' else quote
        elif ch in "'\"":
            quote = ch
        elif ch in ";|&<>" or (ch == "#" and (i == 0 or command[i - 1].isspace())):
            return i
        i += 1
    return len(command)


def _logical_lines(lines: list[Line]) -> list[str]:
    """Code lines with `\\` continuations joined into one."""
    out: list[str] = []
    pending = ""
    for line in lines:
        text = line.text.strip()
        if text.endswith("\\"):
            pending += text[:-1].rstrip() + " "
            continue
        out.append(pending + text)
        pending = ""
    if pending:
        out.append(pending.rstrip())
    return out


def _take(line: str, label: str, directory: str | None, found: Findings) -> str | None:
    """Take the pytest command in `line`, if any; returns a `cd` directory the line sets."""
    line = re.sub(r"^\$\s+", "", line.strip())
    match = PYTEST.search(line)
    if match is None:
        cd = re.match(r"^cd\s+([^\s;&|]+)", line)
        return cd.group(1) if cd and _cut(line) >= cd.end() else None
    segments = re.split(r"&&|;", line[: match.start()])
    if not ENV_ASSIGNMENTS.match(segments[-1]):
        found.unread.append(f"pytest mentioned but not run as a command: {line}")
        return None
    new_dir = None
    for seg in segments[:-1]:
        cd = re.match(r"^\s*cd\s+(\S+)\s*$", seg)
        new_dir = cd.group(1) if cd else new_dir
        if not SAFE_PREFIX.match(seg):
            found.warnings.append(f"dropped `{seg.strip()}` before a pytest command: never run")
    rest = line[match.start() - len(segments[-1]) :]
    cut = _cut(rest)
    head, tail = rest[:cut].strip(), rest[cut:].strip()
    try:
        tokens = shlex.split(head)
    except ValueError:
        found.unread.append(f"unbalanced quoting in a pytest command: {line}")
        found.warnings.append(f"pytest command not taken (quoting or shell syntax): {line}")
        return new_dir
    if tail and not tail.startswith("#"):
        found.warnings.append(
            f"dropped `{tail}` after pytest command `{head}`: only the pytest command is taken"
        )
    found.commands.append(Command(head, label, new_dir or directory, tokens))
    return new_dir


def _commands(lines: list[Line], found: Findings) -> None:
    """Every pytest command, in document order: code blocks and prose alike."""
    for (code, _), group in groupby(lines, key=lambda line: (line.code, line.block)):
        block = list(group)
        if not code:
            for line in block:
                _prose_commands(line, found)
        elif block[0].lang in SHELL_LANGS:
            _block_commands(block, found)


def _block_commands(block: list[Line], found: Findings) -> None:
    context = f"{block[0].heading} | {block[0].before_block}"
    comment, directory = "", None
    for text in _logical_lines(block):
        if text.startswith("#"):
            comment = text.lstrip("# ")
            continue
        directory = _take(text, f"{comment} | {context}", directory, found) or directory


def _prose_commands(line: Line, found: Findings) -> None:
    """Inline `pytest ...` spans, and prose lines that are themselves a pytest command."""
    spans = [s for s in BACKTICKED.findall(line.text) if PYTEST.match(s.strip())]
    bare = re.sub(r"^\s*(?:[-*+]|\d+[.)])\s+", "", line.text).strip()
    if not spans and PYTEST.match(bare):
        spans = [bare]
    for span in spans:
        _take(span, f"{line.text} | {line.heading}", None, found)


def _full_suite(commands: list[Command]) -> Command | None:
    """The command the handoff runs the suite with (the rule is in the module docstring)."""
    suites = [c for c in commands if not c.names_tests()]
    labelled = [c for c in suites if FULL_LABEL.search(c.label)]
    pool = labelled or suites
    if not pool:
        return None
    return max(pool, key=lambda c: (len(c.option_values("--ignore")), -pool.index(c)))


def _inside(path: str) -> bool:
    return not (
        path.startswith(("/", "~", "\\"))
        or re.match(r"^[A-Za-z]:", path)
        or ".." in Path(path).parts
    )


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
        if line.text.lstrip().startswith("#") and NUMBERED_HEADING.match(title):
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
    title = NUMBERED_HEADING.match(section.title).group(2)
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
        tests=list(dict.fromkeys(NODE_ID.findall(body))),
        affected_files=list(dict.fromkeys(files)),
    )


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
    _commands(lines, found)
    full = _full_suite(found.commands)
    test_command, ignores, deselect, command_dir = None, [], [], None
    if full is None:
        found.warnings.append("no full-suite pytest command found")
    else:
        test_command, command_dir = full.text, full.directory
        ignores = _safe_paths(full.option_values("--ignore"), "--ignore", found)
        deselect = _safe_paths(full.option_values("--deselect"), "--deselect", found)
        if len(ignores) + len(deselect) < len(full.option_values("--ignore")) + len(
            full.option_values("--deselect")
        ):
            test_command = _without(full, ignores, deselect)
    if command_dir and not _inside(command_dir):
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


def _safe_paths(paths: list[str], option: str, found: Findings) -> list[str]:
    kept = []
    for p in paths:
        if _inside(p):
            kept.append(p)
        else:
            found.warnings.append(f"dropped `{option}={p}`: the path is outside the repository")
    return kept


def _without(command: Command, ignores: list[str], deselect: list[str]) -> str:
    """The command rebuilt without the options whose paths were dropped."""
    keep = {"--ignore": set(ignores), "--deselect": set(deselect)}
    out: list[str] = []
    tokens = iter(command.tokens)
    for tok in tokens:
        name, eq, value = tok.partition("=")
        if name in keep and eq and value not in keep[name]:
            continue
        if tok in keep:
            value = next(tokens, "")
            if value in keep[tok]:
                out += [tok, value]
            continue
        out.append(tok)
    return shlex.join(out)
