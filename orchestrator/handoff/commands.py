"""Pytest commands in a handoff's text: taken as written, cut at any shell operator, never run.

The full-suite command is the one labelled as such (its `#` comment, heading or the line before
its code block says full / entire / whole / complete / suite) that names no test file or node id;
among several, the one with the most `--ignore`s wins, then the first: the ignores are what the
author runs the suite with day to day, and the counts they report were taken that way.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path

from orchestrator.handoff.markdown import Line

BACKTICKED = re.compile(r"`([^`]+)`")
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


def find_commands(lines: list[Line], found: Findings) -> None:
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


def full_suite(commands: list[Command]) -> Command | None:
    """The command the handoff runs the suite with (the rule is in the module docstring)."""
    suites = [c for c in commands if not c.names_tests()]
    labelled = [c for c in suites if FULL_LABEL.search(c.label)]
    pool = labelled or suites
    if not pool:
        return None
    return max(pool, key=lambda c: (len(c.option_values("--ignore")), -pool.index(c)))


def inside(path: str) -> bool:
    return not (
        path.startswith(("/", "~", "\\"))
        or re.match(r"^[A-Za-z]:", path)
        or ".." in Path(path).parts
    )


def safe_paths(paths: list[str], option: str, found: Findings) -> list[str]:
    kept = []
    for p in paths:
        if inside(p):
            kept.append(p)
        else:
            found.warnings.append(f"dropped `{option}={p}`: the path is outside the repository")
    return kept


def without(command: Command, ignores: list[str], deselect: list[str]) -> str:
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
