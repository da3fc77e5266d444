"""How a run ends, finished or interrupted: its handoff, its report, its last event."""

from __future__ import annotations

import datetime as dt
import shlex
from pathlib import Path

from orchestrator.categories import MODEL_AGENT, specialist_for
from orchestrator.events import Log, RunFinished
from orchestrator.handoff import HandoffState, HandoffView, PlannedAgent, write_handoff
from orchestrator.models import (
    AgentResult,
    Category,
    Counts,
    RunReport,
    SuiteRun,
    TriageReport,
    Usage,
)
from orchestrator.run.context import RunContext
from orchestrator.suite import sandbox
from orchestrator.triage import triage


def total_usage(results: list[AgentResult], *extra: Usage | None) -> Usage | None:
    """Every model call of the session: the agents' (errored lanes too) and the guess's."""
    usages = [r.usage for r in results if r.usage] + [u for u in extra if u]
    if not usages:
        return None
    return sum(usages, Usage())


def remaining_categories(report: TriageReport, after: SuiteRun, repo: Path) -> list[Category]:
    """Baseline categories narrowed to what still fails, plus new failures triaged on their own."""
    failing = {r.nodeid for r in after.failing()}
    remaining = []
    for category in report.categories:
        tests = [t for t in category.tests if t in failing]
        if tests:
            remaining.append(category.model_copy(update={"tests": tests, "count": len(tests)}))
    known = {t for c in report.categories for t in c.tests}
    new = [r for r in after.results if r.failing and r.nodeid not in known]
    if new:
        extra = triage(SuiteRun(command=after.command, cwd=after.cwd, results=new), repo, "")
        remaining += [c.model_copy(update={"title": c.title + " (new)"}) for c in extra.categories]
    return remaining


def resume_command(ctx: RunContext) -> str:
    """The one command that continues this session: the CLI and the handoff both print it."""
    return f"orchestrate run {shlex.quote(str(ctx.repo.root))} --resume {ctx.options.session}"


def handoff_state(
    ctx: RunContext,
    *,
    base: str,
    results: list[AgentResult],
    integration_branch: str | None,
    interrupted: str | None = None,
) -> HandoffState:
    """The HandoffState of a run, finished or not, from whatever its stages stored."""
    store = ctx.store
    before = store.get("baseline", SuiteRun)
    measured = store.get("after", SuiteRun)
    after = measured or before
    report = store.get("report", TriageReport)
    if report is None and before is not None:  # stopped before triage: the baseline's own
        report = triage(before, ctx.repo.root, "")
    previous = store.get("previous", HandoffView)
    remaining = remaining_categories(report, after, ctx.repo.root) if report and after else []
    counts = previous.previous.model_dump(exclude_none=True) if previous else None
    return HandoffState(
        session=ctx.options.session,
        date=dt.date.today(),
        repo=str(ctx.repo.root),
        base_commit=base,
        integration_branch=integration_branch,
        agent_branches=[r.branch for r in results if r.commit],
        test_command=shlex.join(ctx.spec.command),
        ignores=ctx.spec.ignores,
        deselect=ctx.spec.deselect,
        before=before.counts() if before else Counts(),
        after=after.counts() if after else Counts(),
        previous=Counts(**counts) if counts is not None else None,
        agents=[r.model_copy(update={"diff": ""}) for r in results],
        remaining=remaining,
        isolation=report.isolation if report else [],
        flaky=report.flaky if report else [],
        slow_tests=report.slow_tests if report else [],
        repairs=ctx.repairs,
        usage=total_usage(results, store.get("guess_usage", Usage)),
        next_plan=[
            PlannedAgent(
                agent=c.agent or MODEL_AGENT,
                category=c.id,
                target=c.count,
                priority=c.priority,
                tests=c.tests,
            )
            for c in remaining
        ],
        sandbox=sandbox.described(ctx.spec.sandbox, ctx.spec.network),
        interrupted=interrupted is not None,
        interrupted_reason=interrupted,
        resume=resume_command(ctx) if interrupted else None,
        after_measured=measured is not None,
        # the versions the next run compares with (module names are only triage's lookup)
        environment=report.environment.model_copy(update={"modules": {}})
        if report and report.environment
        else None,
    )


def write(ctx: RunContext, handoff: HandoffState) -> Path:
    """Write the handoff (and keep its state with the session's artifacts)."""
    directory = (
        Path(ctx.options.handoff_dir) if ctx.options.handoff_dir else ctx.repo.root / "handoffs"
    )
    path = write_handoff(handoff, directory)
    ctx.store.save("handoff", handoff)
    ctx.emit(Log(message=f"handoff written: {path}"))
    return path


def report_of(
    ctx: RunContext, base: str, agents: list[AgentResult], branch: str | None, handoff: str
) -> RunReport:
    state = ctx.store.load("handoff", HandoffState)
    return RunReport(
        session=ctx.options.session,
        integration_branch=branch,
        before=state.before,
        after=state.after,
        agents=agents,
        handoff=handoff,
        repo=str(ctx.repo.root),
        base_commit=base,
        usage=total_usage(agents, ctx.store.get("guess_usage", Usage)),
        remaining=state.remaining,
        left_for_model=[
            c.id for c in ctx.report.categories if (c.agent or specialist_for(c.id)) == MODEL_AGENT
        ]
        if ctx.model is None
        else [],
    )


def finish(ctx: RunContext, report: RunReport) -> None:
    ctx.emit(
        RunFinished(
            before=report.before,
            after=report.after,
            merged=[a.branch for a in report.agents if a.merged],
            remaining=report.remaining,
            handoff=report.handoff,
            integration_branch=report.integration_branch,
        )
    )
