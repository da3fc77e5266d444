"""Read a handoff back: ours exactly from its state block, anyone else's from its prose."""

from __future__ import annotations

import json
import re
from pathlib import Path

from pydantic import ValidationError

from orchestrator.handoff import prose
from orchestrator.handoff.state import (
    STATE_MARKER,
    HandoffState,
    HandoffView,
    PreviousCounts,
    ViewCategory,
)
from orchestrator.handoff.write import suite_command, targeted_command


def parse_state(text: str) -> HandoffState | None:
    """The state block of one of our handoffs; None when there is none."""
    at = text.rfind(STATE_MARKER)
    if at < 0:
        return None
    match = re.search(r"(`{3,})json\n(.*?)\n\1", text[at:], re.S)
    if match is None:
        raise ValueError("no ```json block after the state marker")
    return HandoffState.model_validate(json.loads(match.group(2)))


def view_of_state(state: HandoffState, path: Path | str | None) -> HandoffView:
    """Our own state, seen through the contract's `handoff show` object."""
    full = suite_command(state)
    targeted = [targeted_command(state, c) for c in state.remaining if c.tests]
    a = state.after
    return HandoffView(
        source="orchestrate",
        test_command=full,
        ignores=list(state.ignores),
        deselect=list(state.deselect),
        previous=PreviousCounts(**a.model_dump()),
        categories=[
            ViewCategory(
                title=c.title,
                category=c.id,
                count=c.count,
                tests=list(c.tests),
                affected_files=list(c.affected_files),
            )
            for c in state.remaining
        ],
        commands=[full, *targeted],
        state=state,
        working_directory=state.repo,
        branch=state.integration_branch,
        slow_tests=[s.nodeid for s in state.slow_tests] + list(state.deselect),
        pass_rate=a.pass_rate if a.total else None,
    )


def read_handoff(path: Path) -> HandoffView:
    """Read a handoff: ours exactly from its state block, anyone else's by its prose."""
    text = prose.load_text(path)
    try:
        state = parse_state(text)
    except (ValueError, ValidationError) as exc:
        view = prose.parse_handoff(text)
        first = str(exc).splitlines()[0]
        view.warnings.insert(0, f"the orchestrate state block is damaged ({first}); read as prose")
        return view
    if state is None:
        return prose.parse_handoff(text)
    return view_of_state(state, path)


def staleness(
    view: HandoffView, *, repo_head: str, commits_since: int | None, failing_now: set[str]
) -> list[str]:
    """Why the handoff may no longer describe the repo: new commits, fixed or new failures."""
    lines: list[str] = []
    base = view.state.base_commit if view.state else ""
    if base and repo_head and not (repo_head.startswith(base) or base.startswith(repo_head)):
        since = f"{commits_since} commits since" if commits_since is not None else "history differs"
        lines.append(f"HEAD is {repo_head[:10]}, the handoff was written at {base[:10]} ({since})")
    listed = {t for c in view.categories for t in c.tests}
    fixed = sorted(listed - failing_now)
    if fixed:
        lines.append(
            f"fixed since: {len(fixed)} tests the handoff lists as failing pass now: "
            + _some(fixed)
        )
    if listed or view.source == "orchestrate":
        new = sorted(failing_now - listed)
        if new:
            lines.append(
                f"new failures: {len(new)} tests fail now that the handoff does not list: "
                + _some(new)
            )
    return lines


def _some(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
