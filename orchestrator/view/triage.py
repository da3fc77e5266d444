"""The readable triage for a terminal (rich): counts, a table of categories, each one's story."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from orchestrator.models import TriageReport
from orchestrator.triage.signature import trim as _trim
from orchestrator.view.progress import fmt_breakdown

_PRIORITY_STYLE = {"critical": "bold red", "high": "yellow", "medium": "cyan", "low": "dim"}
TESTS_SHOWN = 3  # per category; the rest are counted


def _tests(tests: list[str]) -> list[str | tuple[str, str]]:
    """The category's tests, one a line, collapsed beyond a few with a count."""
    parts: list[str | tuple[str, str]] = ["\n", ("  tests:", "dim")]
    parts += [f"\n    {t}" for t in tests[:TESTS_SHOWN]]
    if len(tests) > TESTS_SHOWN:
        parts.append((f"\n    … and {len(tests) - TESTS_SHOWN} more", "dim"))
    return parts


def render_table(report: TriageReport) -> RenderableType:
    """The readable triage: counts, a compact table of categories, then each category's story."""
    flaky = f"; {len(report.flaky)} flaky" if report.flaky else ""
    counts = Text(fmt_breakdown(report.baseline) + flaky)
    table = Table(title="Failure categories")
    table.add_column("category", no_wrap=True)
    table.add_column("tests", justify="right")
    table.add_column("priority")
    table.add_column("agent")
    for c in report.categories:
        table.add_row(
            c.key, str(c.count), Text(c.priority, style=_PRIORITY_STYLE[c.priority]), c.agent or "-"
        )
    details = [
        Text.assemble(
            (f"\n{c.key}", "bold"),
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
            *_tests(c.tests),
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
