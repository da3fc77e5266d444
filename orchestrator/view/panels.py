"""What each part of the TUI says, built from the run's progress: pure `Content`, no widgets."""

from __future__ import annotations

from pathlib import Path

from textual.content import Content

from orchestrator.models import Category
from orchestrator.view.progress import (
    AgentProgress,
    RunProgress,
    SuiteProgress,
    category_of,
    fmt_status,
    summary_lines,
)

Parts = list[str | tuple[str, str]]

# The phases a run goes through, as the status line shows them (preflight and plan are quick).
PHASES = ("baseline", "isolation", "triage", "agents", "integrate", "final")
STATUS_STYLE = {  # theme variables, so every theme colours them
    "queued": "$text-muted",
    "proposing": "$accent",
    "verifying": "$warning",
    "accepted": "$success",
    "merged": "bold $success",
    "rejected": "$error",
    "error": "$error",
    "no_patch": "$text-warning",
    "cancelled": "$text-error",
    "left": "$text-warning",
}
TESTS_SHOWN = 12  # in a detail; the rest are counted


def header(progress: RunProgress, now: float, stopping: bool) -> Content:
    run, finished, usage = progress.run, progress.finished, progress.usage
    parts: Parts = [("orchestrate", "bold")]
    if run is not None:
        end = finished.at if finished else now
        parts += [
            f"  {Path(run.repo).name}",
            f" · {run.session}",
            f" · {run.base_commit[:8]}",
            f" · {elapsed(end - run.at)}",
        ]
    model = (run.model if run else None) or (usage.model if usage else None)
    if model:
        parts.append(f" · {model}")
    if usage is not None:
        parts.append(f" ${usage.cost_usd:.2f}")
    if stopping:
        parts.append(("  stopping…", "bold $warning"))
    return Content.assemble(*parts)


def status(progress: RunProgress) -> Content:
    """The phases, the current one lit, those done dimmed; then the pass rate."""
    parts: Parts = []
    current = progress.phase.phase if progress.phase else None
    reached = PHASES.index(current) if current in PHASES else -1
    if progress.finished is not None:
        parts.append(("finished", "bold $success"))
    else:
        for i, phase in enumerate(PHASES):
            if i:
                parts.append((" › ", "$text-muted"))
            if phase == current:
                parts.append((phase, "bold reverse $accent"))
            else:
                parts.append((phase, "$text-muted" if i < reached else "$text-disabled"))
    if progress.before is not None:
        now = f"{progress.now.pass_rate:.1%}" if progress.now else "…"
        parts.append(f"   {progress.before.pass_rate:.1%} → {now}")
    return Content.assemble(*parts)


def suite_counts(suite: SuiteProgress) -> Content:
    of = f"/{suite.total}" if suite.total is not None else ""
    parts: Parts = [f"{suite.done}{of} tests  "]
    if suite.against is not None:
        a = suite.against
        parts += [
            (f"{a.fixed} fixed", "$success"),
            f", {a.already} already failing, ",
            (f"{a.new} new", "$error" if a.new else ""),
        ]
    else:
        parts += [
            (f"{suite.passed} passed", "$success"),
            "  ",
            (f"{suite.failed} failing", "$error" if suite.failed else ""),
        ]
    return Content.assemble(*parts)


def summary(progress: RunProgress, error: BaseException | None, working: bool) -> Content:
    done = progress.finished
    lines = [Content(line) for line in summary_lines(done)] if done is not None else []
    if error is not None:
        lines.append(Content.styled(f"Run failed: {error}", "bold $error"))
    elif done is None and not working:
        lines.append(Content("The run ended without a result."))
    return Content("\n").join(lines)


def short_branch(branch: str, session: str | None) -> str:
    """`…/model_defaults`: the session is in the header; the detail shows the whole name."""
    prefix = f"orchestrate/{session}/" if session else None
    return "…/" + branch[len(prefix) :] if prefix and branch.startswith(prefix) else branch


def detail(key: str, progress: RunProgress) -> Content:
    """Everything known of one plan item or agent: cause, fix, tests, failure, diff, verification."""
    category = category_of(progress, key)
    agent = progress.agents.get(key)
    left = next((x for x in progress.left if x.category.key == key), None)
    parts: Parts = [(key, "bold")]
    if agent is not None:
        parts += [f" ({agent.update.agent}): ", _styled_status(agent.update.status), "\n"]
        if agent.update.branch:
            parts.append(f"branch {agent.update.branch}\n")
        if agent.update.reason:
            parts.append(f"{agent.update.reason}\n")
    elif left is not None:
        parts += [": ", ("left", STATUS_STYLE["left"]), f" ({left.reason})\n"]
        parts += [("would take it: ", "bold"), f"{left.needs}\n"]
    else:
        parts.append(": planned, not started\n")
    if category is not None:
        parts += _category_parts(category)
    if text := progress.failure_text.get(key):
        parts += [("\nfailure\n", "bold"), f"{text}\n"]
    if agent is not None:
        parts += _agent_parts(agent)
    return Content.assemble(*parts)


def _styled_status(status: str) -> tuple[str, str]:
    return fmt_status(status), STATUS_STYLE.get(status, "")


def _category_parts(c: Category) -> Parts:
    parts: Parts = [f"{c.title} · {c.count} tests · {c.priority}\n"]
    if c.root_cause:
        parts += [("cause: ", "bold"), f"{c.root_cause}\n"]
    if c.fix_strategy:
        parts += [("fix: ", "bold"), f"{c.fix_strategy}\n"]
    parts.append((f"\ntests ({len(c.tests)})\n", "bold"))
    parts += [f"  {t}\n" for t in c.tests[:TESTS_SHOWN]]
    if len(c.tests) > TESTS_SHOWN:
        parts.append((f"  and {len(c.tests) - TESTS_SHOWN} more\n", "$text-muted"))
    return parts


def _agent_parts(agent: AgentProgress) -> Parts:
    update = agent.update
    parts: Parts = [("\nactivity\n", "bold")]
    activity = f"attempt {update.attempt or '-'}, {fmt_status(update.status)}"
    if update.target:
        activity += f", fixed {update.fixed}/{update.target}"
    if agent.usage is not None:
        u = agent.usage
        activity += f"; model {u.model or '?'}: {u.input_tokens + u.output_tokens:,} tokens, ${u.cost_usd:.2f}"
    parts.append(f"{activity}\n")
    if agent.steps:
        parts.append(("\nwhat the model is doing\n", "bold"))
        parts += [f"  {step}\n" for step in agent.steps]
    parts.append(("\ndiff\n", "bold"))
    for line in (agent.diff or "(no diff yet)").splitlines():
        parts.append((f"{line}\n", diff_style(line)))
    parts.append(("\nverification\n", "bold"))
    if agent.verify_output:
        parts.append(agent.verify_output)
    elif update.status in ("accepted", "merged"):
        parts.append("passed: every target test passes, nothing that passed breaks")
    else:
        parts.append("(not verified yet)")
    return parts


def diff_style(line: str) -> str:
    if line.startswith(("+++", "---")):
        return "bold"
    if line.startswith("+"):
        return "$success"
    if line.startswith("-"):
        return "$error"
    if line.startswith("@@"):
        return "$accent"
    return ""


def elapsed(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
