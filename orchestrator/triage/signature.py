"""Signatures: one string per cause, so failures with one cause fall into one group.

A signature is the exception, its message with the volatile parts (addresses, numbers, temp paths,
UUIDs, quoted values) generalised, and the innermost source frame in the repo.
"""

from __future__ import annotations

import re
from functools import lru_cache

from orchestrator.categories.rules import short_exc
from orchestrator.models import Frame, TestResult

MESSAGE_CHARS = 300

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


@lru_cache(maxsize=16384)
def is_repo_path(path: str) -> bool:
    """Frames inside the repo are recorded relative (stdlib, site-packages absolute), but a
    virtualenv inside the repo is relative too and still not the repo's code."""
    return not _ABSOLUTE.match(path) and not _THIRD_PARTY.search(path)


def repo_frames(result: TestResult) -> list[Frame]:
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


def where(result: TestResult) -> str:
    """The innermost source frame, or the test function when no source frame was involved."""
    frames = repo_frames(result)
    if not frames:
        return ""
    return _location(result) or f"{frames[-1].path}:{frames[-1].func}"


@lru_cache(maxsize=8192)
def normalise(line: str) -> str:
    """Generalise the parts of a message line that differ between instances of one cause."""
    for pattern, replacement in _NORMALISERS:
        line = pattern.sub(replacement, line)
    return line.strip()[:200]


def trim(text: str, limit: int) -> str:
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
    return head, trim("\n".join(lines[:3]), MESSAGE_CHARS)


def signature(result: TestResult) -> str:
    """One string per cause: exception, generalised message line, innermost source frame."""
    head = _parsed(_message(result))[0] or result.outcome
    exc = short_exc(result.exc_type)
    sig = f"{exc}: {head}" if exc else head
    location = _location(result)
    return f"{sig} @ {location}" if location else sig


def short_message(result: TestResult) -> str:
    return _parsed(_message(result))[1] or result.outcome
