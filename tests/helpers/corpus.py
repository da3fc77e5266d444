"""The real-text corpus: failure texts people posted in public issue threads, labelled.

`tests/resources/corpus/failures.jsonl` holds one text a line with its category and its source
(the thread's address). Each becomes the `TestResult` our stream plugin would have recorded for
it: the exception type and message from its last `Type: message` line, the frames its traceback
shows, the phase it failed in; texts whose test passes alone carry that re-run verdict.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from orchestrator.models import IsolationResult, SuiteRun, TestResult

CORPUS = Path(__file__).resolve().parent.parent / "resources" / "corpus" / "failures.jsonl"
_EXC_LINE = re.compile(
    r"^[ \t]*(?:E[ \t]+)?((?:[A-Za-z_]\w*\.)*[A-Z]\w*(?:Error|Exception|Warning|Exit|Failed|Violation)"
    r"|Failed)(?:\([^)\n]*\))?: ?(.*)$",
    re.M,
)


@dataclass(frozen=True)
class Labelled:
    id: int
    category: str
    source: str
    result: TestResult
    passes_alone: bool


def load(path: Path = CORPUS) -> list[Labelled]:
    return [_labelled(json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines()]


def _labelled(row: dict) -> Labelled:
    text: str = row["text"]
    when = row.get("when", "call")
    module = f"tests/test_corpus_{row['id']}.py"
    found = list(_EXC_LINE.finditer(text))
    exc_type, message = (found[-1].group(1), found[-1].group(2)) if found else (None, text)
    if found:  # the message goes on over the lines after its first (pytest's: the E lines)
        rest = text[found[-1].end() :].splitlines()
        marked = [ln[1:].strip() for ln in rest if ln.startswith("E ")]
        message = "\n".join(
            [message, *(marked if found[-1].group(0).lstrip().startswith("E") else rest)]
        )
    result = TestResult(
        nodeid=module if when == "collect" else f"{module}::test_case",
        outcome="failed" if when == "call" else "error",
        when=when,
        exc_type=exc_type,
        message=message,
        frames=_frames(text),
        longrepr=text,
    )
    return Labelled(
        row["id"], row["category"], row["source"], result, row.get("isolation") == "passes_alone"
    )


def _frames(text: str) -> list:
    """The traceback's frames as the plugin reads them from report text (older trees have no
    such reader: then none)."""
    try:
        from orchestrator.suite.plugin.orchestrate_stream import _text_frames
    except ImportError:
        return []
    from orchestrator.models import Frame

    return [Frame(**f) for f in _text_frames(text, "/corpus")]


def triaged(items: list[Labelled], repo: Path) -> dict[int, str]:
    """Corpus id -> the category triage gives it (all texts triaged as one suite run)."""
    from orchestrator.triage import triage

    run = SuiteRun(command=["pytest"], cwd=str(repo), results=[i.result for i in items])
    alone = {i.result.nodeid: "passes_alone" for i in items if i.passes_alone}
    report = triage(run, repo, "pytest", isolation=IsolationResult(alone=alone))
    by_node = {f.nodeid: f.category for f in report.failures}
    return {i.id: by_node[i.result.nodeid] for i in items}


def accuracy(items: list[Labelled], got: dict[int, str]) -> dict[str, tuple[int, int]]:
    """Category -> (right, texts), plus "all"."""
    right: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for item in items:
        total[item.category] += 1
        right[item.category] += got[item.id] == item.category
    table = {c: (right[c], total[c]) for c in sorted(total)}
    table["all"] = (sum(right.values()), sum(total.values()))
    return table
