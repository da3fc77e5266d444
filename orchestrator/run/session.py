"""`orchestrate run`: execute (or resume) the graph, and always leave a handoff behind.

Continuing has one rule, whichever way it is asked for (`--resume SESSION`, `--from-handoff FILE`,
`resume FILE`): an interrupted session of ours goes on from its checkpoints; otherwise a new
session starts from the handoff's integration branch when that exists and is not merged (its
merged work is kept, and new failures are counted against it), or refuses when HEAD has moved
too, naming the two commands to choose between.
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

from orchestrator.errors import Cancelled, OrchestrateError, UsageError
from orchestrator.events import Controls, Emit, Log, RunStarted, ignore
from orchestrator.git import GitRepo, run_git
from orchestrator.handoff import HandoffView
from orchestrator.models import RunReport
from orchestrator.run import report, stages
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
    if resume:
        _clear_leftovers(ctx)
    else:
        stages.uncommitted(ctx)  # a refusal leaves no session state behind
    ctx.store.directory.mkdir(parents=True, exist_ok=True)  # the session is recorded as ours
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
                f"run {options.session} stopped; resume with `{report.resume_command(ctx)}`"
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


def _clear_leftovers(ctx: RunContext) -> None:
    """A killed run of this session left worktrees and scratch branches: remove them first."""
    repo, session = ctx.repo, ctx.options.session
    try:
        removed = repo.clean(sessions=[session])
        for branch in repo.branches(f"orchestrate/{session}/scratch-"):
            repo.drop_branch(branch)
            removed.append(f"branch {branch}")
    except OrchestrateError as exc:
        raise OrchestrateError(
            f"{exc}; `orchestrate clean {repo.root} --branches` removes what earlier runs left"
        ) from None
    if removed:
        ctx.emit(Log(message=f"resume: removed what the interrupted run left: {len(removed)}"))


def saved_options(repo_path: str, session: str) -> RunOptions:
    """The options a session was started with, read back from its checkpoints."""
    options, _ = saved_session(repo_path, session)
    return options


def saved_session(repo_path: str, session: str) -> tuple[RunOptions, str | None]:
    """A recorded session's options, and its handoff's path when it finished (else None)."""
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
    return options, values.get("handoff")


def is_recorded(repo_path: str, session: str) -> bool:
    try:
        saved_session(repo_path, session)
    except UsageError:
        return False
    return True


def start_point(repo_path: str, view: HandoffView, chosen: str | None) -> str | None:
    """Where a new session continuing `view` starts: None for HEAD, or a revision.

    The handoff's integration branch when it exists and is not merged into HEAD; when HEAD has
    moved on beside it, a refusal naming both choices (`--base BRANCH`, `--base HEAD`).
    """
    if chosen:
        return None if chosen == "HEAD" else chosen
    state = view.state
    if state is None or not state.integration_branch:
        return None
    root, branch = Path(repo_path), state.integration_branch
    if run_git(root, "rev-parse", "-q", "--verify", f"refs/heads/{branch}", check=False).returncode:
        return None  # deleted: nothing to continue from
    if _is_ancestor(root, branch, "HEAD"):
        return None  # merged: HEAD has its work
    if _is_ancestor(root, "HEAD", branch):
        return branch
    raise UsageError(
        f"HEAD has moved since the handoff and its integration branch {branch} is not merged: "
        f"pass `--base {branch}` to continue from that branch, or `--base HEAD` to start over "
        "from HEAD"
    )


def _is_ancestor(root: Path, older: str, newer: str) -> bool:
    proc = run_git(root, "merge-base", "--is-ancestor", older, newer, check=False)
    return proc.returncode == 0
