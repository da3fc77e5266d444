"""Failure categories: what each one is (specs.py), how a failure is recognised (rules.py) and
explained (explain.py). Every stage reads categories from here and nowhere else.
"""

from __future__ import annotations

import re
from functools import lru_cache

from orchestrator.categories.explain import FailureGroup
from orchestrator.categories.rules import message_text, short_exc
from orchestrator.categories.specs import CATEGORIES, CategorySpec
from orchestrator.models import TestResult

__all__ = [
    "MODEL_AGENT",
    "specialist_for",
    "CATEGORIES",
    "CATEGORY_IDS",
    "CategorySpec",
    "FailureGroup",
    "by_id",
    "categorize",
    "classify_prose",
    "spec",
]

MODEL_AGENT = "llm"  # the specialist of every category without an offline one

CATEGORY_IDS: tuple[str, ...] = tuple(c.id for c in CATEGORIES)
by_id: dict[str, CategorySpec] = {c.id: c for c in CATEGORIES}


def spec(category: str) -> CategorySpec:
    """The spec of a category id; an id no spec defines is read as `unknown`."""
    return by_id.get(category) or by_id["unknown"]


def specialist_for(category: str) -> str:
    """The specialist that takes a category: its offline one, else the model."""
    return spec(category).specialist or MODEL_AGENT


@lru_cache(maxsize=16384)
def _first_text_match(exc: str, text: str) -> int:
    """Index of the first spec whose rule matches by exception type or message (cached)."""
    return next(
        (
            i
            for i, c in enumerate(CATEGORIES)
            if c.rule is not None and c.rule.matches_text(exc, text)
        ),
        len(CATEGORIES),
    )


def categorize(result: TestResult) -> str:
    """The category of a failing test: the first rule matching its outcome, phase or message."""
    first = _first_text_match(short_exc(result.exc_type), message_text(result))
    for c in CATEGORIES[:first]:
        if c.rule is not None and c.rule.predicate is not None and c.rule.predicate(result):
            return c.id
    return CATEGORIES[first].id if first < len(CATEGORIES) else "unknown"


_KEYWORDS = [(c.id, re.compile(c.keywords, re.I)) for c in CATEGORIES if c.keywords]


def classify_prose(*texts: str) -> str | None:
    """The category a person's words name (a pattern, a title, a root cause); None if unclear.

    The texts are tried in turn; within one, the first spec whose keywords match wins.
    """
    for text in texts:
        for cid, pattern in _KEYWORDS:
            if text and pattern.search(text):
                return cid
    return None
