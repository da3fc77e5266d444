"""Markdown handoffs: what one session leaves for the next, readable by people and by us.

A handoff we write is markdown for people plus, at the end, a fenced JSON block carrying the
exact `HandoffState`, so resuming never depends on re-reading prose. Handoffs people wrote are
read by `orchestrator.handoff.prose`.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from orchestrator.handoff.state import STATE_MARKER, HandoffState
from orchestrator.models import Category, Counts, Usage, command_line, fixed_by_model
from orchestrator.secrets import scrub

SESSION_FILE = re.compile(r"^\d{4}-\d{2}-\d{2}-session-(\d+)\.md$")
# Characters escaped inside the JSON block so it can never close its fence or fake a marker.
_JSON_ESCAPES = {"`": "\\u0060", "<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}


# --- commands ----------------------------------------------------------------------------------


def suite_command(state: HandoffState) -> str:
    """The full-suite command with its ignores and deselects, as one shell line."""
    return command_line(shlex.split(state.test_command), state.ignores, state.deselect)


def targeted_command(state: HandoffState, category: Category) -> str:
    """Run exactly one category's failing tests."""
    return " ".join([state.test_command, *(shlex.quote(t) for t in category.tests)])


def resume_command(state: HandoffState, path: Path | str | None) -> str:
    """How to continue: an interrupted session goes on (the command the CLI printed)."""
    if state.interrupted and state.resume:
        return state.resume
    where = shlex.quote(str(path)) if path is not None else "<this file>"
    return f"orchestrate run {shlex.quote(state.repo)} --from-handoff {where}"


def _continued(command: str) -> str:
    """Break a long command before each option so it reads like the examples people write."""
    if len(command) <= 100:
        return command
    return re.sub(r" (?=--?[\w-])", " \\\n  ", command)


# --- rendering ---------------------------------------------------------------------------------


def _cell(text: object) -> str:
    """A table cell: one line, pipes escaped."""
    return str(text).replace("\n", " ").replace("|", "\\|")


def _code(text: str) -> str:
    """An inline code span that survives backticks in the text."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _fence(body: str, lang: str = "") -> str:
    longest = max((len(run) for run in re.findall(r"`{3,}", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{body}\n{fence}"


def _rate(c: Counts) -> str:
    return f"{c.pass_rate * 100:.1f}%"


def _usage_text(u: Usage, fixed: int = 0) -> str:
    tokens = u.input_tokens + u.output_tokens + u.cache_read_tokens + u.cache_write_tokens
    model = f" ({u.model})" if u.model else ""
    per_test = f", ${u.cost_usd / fixed:.4f} per fixed test" if fixed else ""
    return f"{tokens:,} tokens, ${u.cost_usd:.4f}{model}{per_test}"


def _where(state: HandoffState) -> list[str]:
    lines = [
        "## Where things stand",
        "",
        f"- **Repository**: {_code(state.repo)}",
        f"- **Base commit**: {_code(state.base_commit) if state.base_commit else 'unknown'}",
        f"- **Integration branch**: "
        f"{_code(state.integration_branch) if state.integration_branch else 'none'}",
    ]
    if state.agent_branches:
        lines.append("- **Agent branches**: " + ", ".join(_code(b) for b in state.agent_branches))
    if state.interrupted:
        lines.append(f"- **Interrupted**: {state.interrupted_reason or 'yes'}")
    if state.sandbox:
        lines.append(f"- **Sandbox**: {state.sandbox}")
    return lines


def _status(state: HandoffState) -> list[str]:
    b, a = state.before, state.after
    rows = [
        ("Total", b.total, a.total),
        ("Passed", b.passed, a.passed),
        ("Failed", b.failed, a.failed),
        ("Errors", b.errors, a.errors),
        ("Skipped", b.skipped, a.skipped),
        ("Pass rate", _rate(b), _rate(a)),
        ("Runtime", f"{b.duration_s:.1f} s", f"{a.duration_s:.1f} s"),
    ]
    if not state.after_measured:  # stopped before the final run: nothing to show as "after"
        rows = [(name, x, "not run") for name, x, _ in rows]
    lines = ["## Test status", "", "| | Before | After |", "|---|---:|---:|"]
    lines += [f"| {name} | {_cell(x)} | {_cell(y)} |" for name, x, y in rows]
    lines.append("")
    if not state.after_measured:
        lines.append(
            f"- Failures this session: {b.failed + b.errors} at the start; the run stopped "
            "before the final suite run, so the failures below are those still known"
        )
    else:
        lines.append(f"- Failures this session: {b.failed + b.errors} → {a.failed + a.errors}")
    if state.previous is not None:
        p = state.previous
        lines.append(
            f"- Failures since the previous handoff: {p.failed + p.errors} → {a.failed + a.errors}"
            f" (pass rate {_rate(p)} → {_rate(a)})"
        )
    return lines


def _agents(state: HandoffState) -> list[str]:
    lines = ["## What each agent did", ""]
    if not state.agents:
        return [*lines, "No agents ran."]
    lines += [
        "| Agent | Category | Fixed | Status | Branch | Files changed | Usage |",
        "|---|---|---:|---|---|---|---|",
    ]
    for r in state.agents:
        status = r.status + (f": {r.reason}" if r.reason else "")
        files = ", ".join(r.files_changed) or "none"
        usage = (
            _usage_text(r.usage, len(r.fixed) if r.status == "accepted" else 0)
            if r.usage
            else "no model"
        )
        fixed_cell = f"{len(r.fixed)}/{r.target}" if r.target else str(len(r.fixed))
        cells = [r.agent, r.category, fixed_cell, status, r.branch, files, usage]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    if state.usage:
        lines += ["", f"Total usage: {_usage_text(state.usage, fixed_by_model(state.agents))}"]
    return lines


def _remaining(state: HandoffState) -> list[str]:
    lines = ["## Remaining failures by category", ""]
    if not state.remaining:
        if state.interrupted and state.before.total == 0:
            return [*lines, "Not known: the run stopped before the suite had run."]
        return [*lines, "None."]
    for i, c in enumerate(state.remaining, 1):
        noun = "failure" if c.count == 1 else "failures"
        lines += [f"### {i}. {c.title} ({c.count} {noun}) - {c.priority.upper()}", ""]
        lines.append(f"- **Category**: {_code(c.id)}")
        if c.pattern:
            lines.append(f"- **Pattern**: {_code(c.pattern)}")
        lines.append(f"- **Root Cause**: {c.root_cause or 'unknown'}")
        lines.append(f"- **Fix Strategy**: {c.fix_strategy or 'unknown'}")
        if c.agent:
            lines.append(f"- **Agent**: {_code(c.agent)}")
        if c.affected_files:
            lines.append("- **Affected Files**:")
            lines += [f"  - {_code(f)}" for f in c.affected_files]
        if c.tests:
            lines.append("- **Tests**:")
            lines += [f"  - {_code(t)}" for t in c.tests]
        lines.append("")
    return lines[:-1]


def _environment(state: HandoffState) -> list[str]:
    """The dependency versions the failures involve, and what moved since it last passed."""
    env = state.environment
    if env is None or not (env.changes or env.python):
        return []
    lines = ["## Environment", ""]
    if env.python:
        lines.append(f"- Python {env.python}, {len(env.packages)} packages installed")
    for change in env.changes:
        installed = env.version(change.name)
        now = f" (installed: {installed})" if installed and installed != change.new else ""
        lines.append(f"- Changed: {_code(change.describe())}{now}")
    return lines


def _isolation(state: HandoffState) -> list[str]:
    lines: list[str] = []
    if state.isolation:
        lines += ["## Isolation findings", ""]
        for f in state.isolation:
            culprits = ", ".join(_code(c) for c in f.culprits) or "unknown"
            leak = f"; leaks {_code(f.leak)}" if f.leak else ""
            note = f" ({f.note})" if f.note else ""
            lines.append(f"- {_code(f.victim)} ← {culprits} [{f.kind}]{leak}{note}")
        lines.append("")
    if state.flaky:
        lines += ["## Flaky tests", "", *(f"- {_code(t)}" for t in state.flaky), ""]
    if state.slow_tests:
        lines += ["## Slow tests", "", "| Test | Duration |", "|---|---:|"]
        lines += [f"| {_cell(_code(s.nodeid))} | {s.duration_s:.1f} s |" for s in state.slow_tests]
        lines.append("")
    return lines[:-1] if lines else lines


def _repairs(state: HandoffState) -> list[str]:
    """Containers the watchdog had to restore: a test breaks them and does not put them back."""
    if not state.repairs:
        return []
    lines = [
        "## Containers the watchdog restored",
        "",
        "A test left these containers broken and the orchestrator's docker watchdog restored them "
        "mid-run. Tests that passed only after a repair are not counted as fixed; the test that "
        "breaks the container is still there to fix (look among the tests named).",
        "",
    ]
    for r in state.repairs:
        during = f" during {', '.join(_code(d) for d in r.during)}" if r.during else ""
        detail = f" ({r.detail})" if r.detail else ""
        lines.append(f"- {_code(r.container)} was {r.was}{during}: {r.action}{detail}")
        if r.suspects:
            more = len(r.suspects) - 5
            named = ", ".join(_code(s) for s in r.suspects[:5]) + (
                f" and {more} more" if more > 0 else ""
            )
            lines.append(f"  - left so by one of: {named}")
    return lines


def _commands(state: HandoffState, path: Path | str | None) -> list[str]:
    lines = ["## Commands", "", "Full suite:", "", _fence(_continued(suite_command(state)), "bash")]
    if state.remaining:
        targeted = [
            f"# {c.title}\n{targeted_command(state, c)}" for c in state.remaining if c.tests
        ]
        lines += [
            "",
            "One command per remaining category:",
            "",
            _fence("\n".join(targeted), "bash"),
        ]
    lines += ["", "Resume from this handoff:", "", _fence(resume_command(state, path), "bash")]
    return lines


def _plan(state: HandoffState) -> list[str]:
    lines = ["## Next plan", ""]
    if not state.next_plan:
        return [*lines, "Nothing planned."]
    for i, p in enumerate(state.next_plan, 1):
        lines.append(
            f"{i}. {_code(p.agent)} on {_code(p.category)}: target {p.target} "
            f"{'test' if p.target == 1 else 'tests'} ({p.priority})"
        )
    return lines


def _state_block(state: HandoffState) -> str:
    text = json.dumps(state.model_dump(mode="json"), indent=2, ensure_ascii=True)
    for char, escape in _JSON_ESCAPES.items():
        text = text.replace(char, escape)
    return f"{STATE_MARKER}\n{_fence(text, 'json')}"


def render_handoff(state: HandoffState, path: Path | str | None = None) -> str:
    """The handoff markdown; `path` is where it will live (for the resume command)."""
    title = f"# Handoff: session {state.session} ({state.date.isoformat()})"
    if state.interrupted:
        title += " - INTERRUPTED"
    sections = [
        [title],
        _where(state),
        _status(state),
        _agents(state),
        _remaining(state),
        _environment(state),
        _isolation(state),
        _repairs(state),
        _commands(state, path),
        _plan(state),
        ["## Notes", "", state.notes] if state.notes else [],
        ["## Machine-readable state", "", _state_block(state)],
    ]
    return "\n\n".join("\n".join(s) for s in sections if s) + "\n"


# --- writing and reading -------------------------------------------------------------------------


def next_session_number(directory: Path) -> int:
    numbers = [int(m.group(1)) for p in directory.iterdir() if (m := SESSION_FILE.match(p.name))]
    return max(numbers, default=0) + 1


def write_handoff(state: HandoffState, directory: Path) -> Path:
    """Write `<date>-session-<n>.md`, n one past the highest session already in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    n = next_session_number(directory)
    while True:
        path = directory / f"{state.date.isoformat()}-session-{n}.md"
        try:
            with path.open("x", encoding="utf-8") as fh:
                fh.write(scrub(render_handoff(state, path)))  # no secret value, in any shape
            return path
        except FileExistsError:
            n += 1
