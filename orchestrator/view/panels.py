"""What each part of the TUI says, built from the run's progress: pure `Content`, no widgets."""

from __future__ import annotations

from pathlib import Path

from textual.content import Content

from orchestrator.view.progress import (
    AgentProgress,
    RunProgress,
    SuiteProgress,
    fmt_counts,
    fmt_list,
    fmt_phase,
    fmt_remaining,
    fmt_status,
)

Parts = list[str | tuple[str, str]]


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
    parts: Parts = []
    if progress.finished is not None:
        parts.append(("finished", "bold $success"))
    elif progress.phase is not None:
        parts.append(fmt_phase(progress.phase))
    if progress.before is not None:
        now = f"{progress.now.pass_rate:.1%}" if progress.now else "…"
        parts.append(f"   pass rate {progress.before.pass_rate:.1%} → {now}")
    return Content.assemble(*parts)


def suite_counts(suite: SuiteProgress) -> Content:
    of = f"/{suite.total}" if suite.total is not None else ""
    return Content.assemble(
        f"{suite.done}{of} tests  ",
        (f"{suite.passed} passed", "$success"),
        "  ",
        (f"{suite.failed} failing", "$error" if suite.failed else ""),
    )


def summary(progress: RunProgress, error: BaseException | None, working: bool) -> Content:
    lines: list[Content] = []
    done = progress.finished
    if done is not None:
        lines += [
            Content(f"Pass rate: {fmt_counts(done.before)} → {fmt_counts(done.after)}"),
            Content(f"Merged: {fmt_list(done.merged)}"),
        ]
        if done.integration_branch:
            lines.append(Content(f"Integration branch: {done.integration_branch}"))
        lines += [
            Content(f"Left: {fmt_remaining(done.remaining)}"),
            Content(f"Handoff: {done.handoff}"),
        ]
    if error is not None:
        lines.append(Content.styled(f"Run failed: {error}", "bold $error"))
    elif done is None and not working:
        lines.append(Content("The run ended without a result."))
    if not working:
        lines.append(Content.styled("Press q to leave.", "$text-muted"))
    return Content("\n").join(lines)


def detail(category: str, agent: AgentProgress) -> Content:
    parts: Parts = [
        (category, "bold"),
        f" ({agent.update.agent}): {fmt_status(agent.update.status)}\n",
    ]
    if agent.update.reason:
        parts.append(f"{agent.update.reason}\n")
    parts.append(("\ndiff\n", "bold"))
    for line in (agent.diff or "(no diff yet)").splitlines():
        parts.append((f"{line}\n", diff_style(line)))
    parts.append(("\nverification\n", "bold"))
    parts.append(agent.verify_output or "(not verified yet)")
    return Content.assemble(*parts)


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
