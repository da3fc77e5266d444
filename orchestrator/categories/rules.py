"""How a failing test is recognised: a `Rule` matches its phase, exception type or message.

Each category's rule sits in its `CategorySpec` (specs.py); `categorize` tries them in the specs'
order, so narrow rules come before broad ones.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from orchestrator.models import TestResult

FLAGS = re.IGNORECASE | re.MULTILINE
MAX_TEXT = 4000  # enough for any message's meaningful part; keeps regex work bounded

IMPORT_ERRORS = frozenset(
    {"ImportError", "ModuleNotFoundError", "SyntaxError", "IndentationError", "TabError"}
)


@dataclass(frozen=True)
class Rule:
    """One category's recognisers: matching ANY regex, exception type or predicate is a match.

    Keep predicates cheap and pure: they see the whole `TestResult`.

    Regexes are searched (case-insensitive, multi-line) in "ExcType: message".
    """

    patterns: tuple[str, ...] = ()
    exc_types: frozenset[str] = frozenset()  # short names, e.g. "ValidationError"
    predicate: Callable[[TestResult], bool] | None = None
    regex: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        joined = "|".join(f"(?:{p})" for p in self.patterns)
        object.__setattr__(self, "regex", re.compile(joined, FLAGS) if joined else None)

    def matches_text(self, exc: str, text: str) -> bool:
        return exc in self.exc_types or bool(self.regex and self.regex.search(text))


def short_exc(exc_type: str | None) -> str:
    """'sqlalchemy.exc.IntegrityError' -> 'IntegrityError'."""
    return (exc_type or "").rsplit(".", 1)[-1]


def is_collection_error(result: TestResult) -> bool:
    """Collect phase, or an import/syntax error reported for a file rather than a test."""
    if result.when == "collect":
        return True
    return short_exc(result.exc_type) in IMPORT_ERRORS and "::" not in result.nodeid


def raised_in_package(package: str) -> Callable[[TestResult], bool]:
    """The innermost frame is in that installed package (`site-packages/docker/...`)."""
    marker = re.compile(rf"[/\\](?:site|dist)-packages[/\\]{re.escape(package)}[/\\]")
    return lambda r: bool(r.frames) and bool(marker.search(r.frames[-1].path))


def http_status(code: str) -> str:
    """An HTTP status as pytest shows it: `assert 409 == 201` or `<Response [409]>`."""
    return rf"\bassert {code} ==|<Response \[{code}\]>|\b{code} (?:Client Error|Conflict)\b"


def message_text(result: TestResult) -> str:
    """The text rules look at: "ExcType: message", or pytest's `E ` lines when no message."""
    message = result.message
    if not message and result.longrepr:
        message = "\n".join(
            line[1:].strip() for line in result.longrepr.splitlines() if line.startswith("E ")
        )
    message = (message or "").split("[SQL:", 1)[0]  # SQLAlchemy's statement and parameters
    exc = short_exc(result.exc_type)
    text = f"{exc}: {message}" if exc and not message.startswith(f"{exc}:") else message
    return text[:MAX_TEXT]
