"""`orchestrate run`: execute (or resume) the graph, and always leave a handoff behind."""

from __future__ import annotations

from contextlib import closing

from orchestrator.errors import Cancelled, UsageError
from orchestrator.events import Controls, Emit, RunStarted, ignore
from orchestrator.git import GitRepo
from orchestrator.handoff import HandoffView
from orchestrator.models import RunReport
from orchestrator.run import report
from orchestrator.run.context import RunContext, RunOptions


def run(
    options: RunOptions,
    emit: Emit = ignore,
    controls: Controls | None = None,
    *,
    resume: bool = False,
    previous: HandoffView | None = None,
) -> RunReport:
    """Run the whole remediation; on a stop or an error, write an interrupted handoff and re-raise."""
    from orchestrator.run.graph import build_graph, checkpointer_for

    ctx = RunContext(options=options, emit=emit, controls=controls or Controls())
    repo = ctx.repo
    if previous is not None:
        ctx.store.save("previous", previous)
    emit(
        RunStarted(
            repo=str(repo.root), session=options.session, base_commit=repo.head, model=ctx.model
        )
    )
    config = {"configurable": {"thread_id": options.session}, "max_concurrency": options.parallel}
    saver = checkpointer_for(repo.state_dir)
    with closing(saver.conn), ctx.watchdog:
        graph = build_graph(saver)
        start = None if resume else {"options": options}
        try:
            state = graph.invoke(start, config, context=ctx, durability="sync")
        except (KeyboardInterrupt, Cancelled):
            ctx.controls.request_stop()
            values = graph.get_state(config).values
            if values.get("base"):
                handoff = report.handoff_state(
                    ctx,
                    base=values["base"],
                    results=values.get("integrated") or values.get("results") or [],
                    integration_branch=values.get("integration_branch"),
                    interrupted="stopped by the user",
                )
                report.write(ctx, handoff)
            raise Cancelled(
                f"run {options.session} stopped; resume with `orchestrate run {repo.root} --resume {options.session}`"
            ) from None
    result = report.report_of(
        ctx,
        state["base"],
        state.get("integrated", []),
        state.get("integration_branch"),
        state["handoff"],
    )
    report.finish(ctx, result)
    return result


def saved_options(repo_path: str, session: str) -> RunOptions:
    """The options a session was started with, read back from its checkpoints."""
    from orchestrator.run.graph import build_graph, checkpointer_for

    repo = GitRepo(repo_path)
    saver = checkpointer_for(repo.state_dir)
    with closing(saver.conn):
        values = build_graph(saver).get_state({"configurable": {"thread_id": session}}).values
    if not values.get("options"):
        raise UsageError(
            f"no run {session!r} is recorded in {repo.root}: check the session name (see handoffs/)"
        )
    options: RunOptions = values["options"]
    return options
