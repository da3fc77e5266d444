"""`orchestrate run`: execute (or resume) the graph, and always leave a handoff behind."""

from __future__ import annotations

import threading
from contextlib import closing

from orchestrator import pipeline, runner
from orchestrator.errors import Cancelled
from orchestrator.events import Controls, Emit, RunStarted, ignore
from orchestrator.models import AgentResult, Category, RunReport, SuiteRun
from orchestrator.pipeline import RunContext, RunOptions


def run(
    options: RunOptions,
    emit: Emit = ignore,
    controls: Controls | None = None,
    *,
    resume: bool = False,
    previous: dict | None = None,
) -> RunReport:
    """Run the whole remediation; on a stop or an error, write an interrupted handoff and re-raise."""
    from orchestrator.graph import build_graph, checkpointer_for

    controls = controls or Controls()
    ctx = RunContext(options=options, emit=emit, controls=controls)
    repo = ctx.repo
    runner.allow_runs()
    emit(
        RunStarted(
            repo=str(repo.root), session=options.session, base_commit=repo.head, model=ctx.model
        )
    )
    config = {"configurable": {"thread_id": options.session}, "max_concurrency": options.parallel}
    watcher = _StopWatcher(controls)
    saver = checkpointer_for(repo.state_dir)
    with closing(saver.conn), watcher, ctx.watchdog:
        graph = build_graph(saver)
        start = (
            None if resume else {"options": options.model_dump(mode="json"), "previous": previous}
        )
        try:
            state = graph.invoke(start, config, context=ctx, durability="sync")
        except (KeyboardInterrupt, Cancelled):
            controls.request_stop()
            runner.cancel_all()
            values = graph.get_state(config).values
            if values.get("base"):
                handoff = pipeline.handoff_state(
                    ctx, dict(values), interrupted="stopped by the user"
                )
                pipeline.write_handoff(ctx, handoff)
            raise Cancelled(
                f"run {options.session} stopped; resume with `orchestrate run {repo.root} --resume {options.session}`"
            ) from None
    report = report_of(ctx, state)
    pipeline.finish(ctx, report)
    return report


def saved_options(repo_path: str, session: str) -> RunOptions:
    """The options a session was started with, read back from its checkpoints."""
    from orchestrator.errors import UsageError
    from orchestrator.gitops import GitRepo
    from orchestrator.graph import build_graph, checkpointer_for

    repo = GitRepo(repo_path)
    saver = checkpointer_for(repo.state_dir)
    with closing(saver.conn):
        values = build_graph(saver).get_state({"configurable": {"thread_id": session}}).values
    if not values.get("options"):
        raise UsageError(
            f"no run {session!r} is recorded in {repo.root}: check the session name (see handoffs/)"
        )
    return RunOptions.model_validate(values["options"])


def report_of(ctx: RunContext, state: dict) -> RunReport:
    before = SuiteRun.model_validate(state["baseline"])
    after = SuiteRun.model_validate(state["after"])
    agents = [AgentResult.model_validate(r) for r in state.get("integrated", [])]
    report = pipeline.TriageReport.model_validate(state["report"])
    return RunReport(
        session=ctx.options.session,
        integration_branch=state.get("integration_branch"),
        before=before.counts(),
        after=after.counts(),
        agents=agents,
        handoff=state["handoff"],
        repo=str(ctx.repo.root),
        base_commit=state["base"],
        usage=pipeline.total_usage(agents),
        remaining=[Category.model_validate(c) for c in state["remaining"]],
        left_for_model=[c.id for c in report.categories if (c.agent or "llm") == "llm"]
        if ctx.model is None
        else [],
    )


class _StopWatcher:
    """Turns a viewer's stop request into killed pytest processes, so a stop is quick."""

    def __init__(self, controls: Controls) -> None:
        self.controls = controls
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._done.wait(0.2):
            if self.controls.stop_requested:
                runner.cancel_all()
                return

    def __enter__(self) -> _StopWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
