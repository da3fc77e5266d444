"""The commands: each turns its arguments into the core's models, runs, and prints the result."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from orchestrator.errors import UsageError

RANDOM_SEED = "random"  # `--shuffle` without a value: pick a seed and print it


def _order(args: argparse.Namespace) -> tuple[int | None, list[str] | None]:
    """`--shuffle`: (a seed, None), (None, the node ids of an order file) or (None, None)."""
    value = getattr(args, "shuffle", None)
    if value is None:
        return None, None
    if value == RANDOM_SEED:
        import random

        seed = random.randrange(1, 2**31)
        print(
            f"orchestrate: shuffled with seed {seed} (replay with --shuffle {seed})",
            file=sys.stderr,
        )
        return seed, None
    if value.isdigit():
        return int(value), None
    path = Path(value).expanduser()
    if not path.is_file():
        raise UsageError(
            f"--shuffle {value}: neither a seed (a whole number) nor a file of node ids: "
            "pass a seed, or the path of a file with one node id a line"
        )
    ids = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not ids:
        raise UsageError(f"--shuffle {value}: the order file is empty: list one node id a line")
    return None, ids


def cmd_triage(args: argparse.Namespace) -> int:
    from orchestrator.triage import triage

    if args.junit:
        from orchestrator.suite.junit import read_junit

        run = read_junit(Path(args.junit))
        repo = Path(args.repo).resolve() if args.repo else Path(args.junit).resolve().parent
        report = triage(run, repo, f"junit {args.junit}")
    else:
        report = _triage_repo(args)
    if args.json:
        print(json.dumps(report.contract_json(), indent=2))
    else:
        from rich.console import Console

        from orchestrator.view.triage import render_table

        Console().print(render_table(report))
    return 1 if report.failures else 0  # pytest's: 1 when tests fail


def _triage_repo(args: argparse.Namespace):
    from orchestrator.events import Log
    from orchestrator.git import GitRepo
    from orchestrator.suite.config import in_worktree, sequential
    from orchestrator.suite.runner import run_suite
    from orchestrator.triage import triage
    from orchestrator.view.plain import PlainLog

    git = GitRepo(_repo_arg(args))
    repo = git.root
    seed, order = _order(args)
    spec = _checkout_spec(repo, args, record_leaks=not args.no_isolation)
    spec = spec.model_copy(update={"shuffle_seed": seed, "order": order})
    emit = PlainLog() if not args.json or args.verbose else _quiet
    # In a worktree of the checkout as it is (uncommitted changes included): a test that writes
    # files never changes the user's checkout.
    with git.scratch_worktree(git.snapshot_uncommitted("orchestrate triage")) as path:
        spec = in_worktree(spec, path)
        if not args.no_isolation:  # isolation replays the suite's order: one process keeps it
            spec = sequential(spec)
        run = run_suite(spec, emit, label="suite")
        isolation = None
        if not args.no_isolation and run.failing():
            from orchestrator.isolation import diagnose

            isolation = diagnose(
                spec.model_copy(update={"shuffle_seed": None}), run, reruns=args.reruns, emit=emit
            )
        report = triage(run, repo, spec.command_line(), isolation=isolation)
    if seed is not None:
        report.shuffle_seed = seed
        emit(
            Log(message=f"suite ran in shuffled order, seed {seed} (replay with --shuffle {seed})")
        )
    return report


def _checkout_spec(repo: Path, args: argparse.Namespace, *, record_leaks: bool):
    """A RunSpec for the user's own checkout: no bytecode files written into it."""
    from orchestrator.suite.config import run_spec
    from orchestrator.suite.sandbox import notice as sandbox_notice

    spec = run_spec(
        repo,
        test_cmd=args.test_cmd,
        ignores=args.ignore,
        deselect=args.deselect,
        timeout_s=args.timeout,
        record_leaks=record_leaks,
        sandbox=args.sandbox,
        network=args.network,
    )
    notice = sandbox_notice(args.sandbox)
    if notice:
        print(f"orchestrate: {notice}", file=sys.stderr)
    return spec.model_copy(
        update={
            "env": {**spec.env, "PYTHONDONTWRITEBYTECODE": "1"},
            "extra_args": [*spec.extra_args, *getattr(args, "pytest_args", [])],
        }
    )


def _quiet(_event) -> None:
    """JSON output keeps stdout clean; progress is not printed."""


def cmd_run(args: argparse.Namespace) -> int:
    options, previous, resume = _continuation(args, _repo_arg(args))
    report = _execute(args, options, previous, resume=resume)
    if args.json:
        print(json.dumps(report.contract_json(), indent=2))
    return 0


def _continuation(args: argparse.Namespace, repo: str):
    """(options, the handoff read, resume?): the one rule for every way of continuing a run."""
    from orchestrator.handoff import read_handoff
    from orchestrator.run.context import new_session
    from orchestrator.run.session import is_recorded, saved_session, start_point

    handoff = getattr(args, "from_handoff", None)
    if args.resume:
        options, finished = saved_session(repo, args.resume)
        if finished is None:  # interrupted: it goes on from its checkpoints
            return options, None, True
        _say(f"session {args.resume} finished: a new session continues from its handoff")
        handoff = finished
        options = options.model_copy(update={"session": new_session(), "from_handoff": None})
    else:
        options = _new_options(args, repo)
    if not handoff:
        base = getattr(args, "base", None)
        return options.model_copy(update={"base": None if base == "HEAD" else base}), None, False
    view = read_handoff(Path(handoff))
    state = view.state
    if (
        state is not None
        and state.interrupted
        and Path(state.repo).resolve() == Path(repo)
        and is_recorded(repo, state.session)
    ):
        _say(f"{handoff} is interrupted session {state.session}: it goes on from where it stopped")
        options, _ = saved_session(repo, state.session)
        return options, None, True
    options, previous = _from_handoff(options, view, Path(handoff))
    base = start_point(repo, view, getattr(args, "base", None))
    if base:
        _say(f"starting from {base}: the handoff's merged fixes are kept")
    return options.model_copy(update={"base": base}), previous, False


def _new_options(args: argparse.Namespace, repo: str):
    from orchestrator.run.context import RunOptions, new_session

    seed, order = _order(args)
    return RunOptions(
        repo=repo,
        session=new_session(),
        test_cmd=args.test_cmd,
        ignores=args.ignore,
        deselect=args.deselect,
        timeout_s=args.timeout,
        agents=args.agents.split(",") if args.agents else None,
        parallel=args.parallel or max(1, min(4, os.cpu_count() or 2)),
        max_attempts=args.max_attempts,
        verify=args.verify,
        integrate=not args.no_integrate,
        isolation=not args.no_isolation,
        reruns=args.reruns,
        include_uncommitted=args.include_uncommitted,
        model=args.model,
        budget_usd=args.budget_usd,
        session_budget_usd=args.session_budget_usd,
        max_turns=args.max_turns,
        escalate_model=args.escalate_model,
        models=_model_routes(args.model_for),
        handoff_dir=args.handoff_dir,
        shuffle_seed=seed,
        order=order,
        pytest_args=getattr(args, "pytest_args", []),
        sandbox=args.sandbox,
        network=args.network,
    )


def _say(line: str) -> None:
    print(f"orchestrate: {line}", file=sys.stderr)


def _execute(args, options, previous, *, resume: bool):
    from orchestrator.events import Controls
    from orchestrator.run.session import run

    controls = Controls()
    if _use_tui(args):
        import signal

        from orchestrator.view.tui import OrchestrateApp

        app = OrchestrateApp(
            work=lambda emit, ctl: run(options, emit, ctl, resume=resume, previous=previous),
            controls=controls,
        )
        for name in ("SIGINT", "SIGTERM", "SIGHUP"):  # the app sees the stop, winds the run down
            signal.signal(getattr(signal, name), lambda signum, _: _tui_stop(signum, controls))
        app.run()
        app.print_summary()
        if app.error is not None:
            raise app.error
        return app.result
    from orchestrator.view.plain import PlainLog

    return run(options, PlainLog(), controls, resume=resume, previous=previous)


def _tui_stop(signum: int, controls) -> None:
    """A stop signal asks the app to wind the run down. A hang-up also means the terminal is gone:
    writes to it would fail and stall Textual's writer thread, and Textual would try to redraw
    into it on the SIGCONT that follows, so output goes to /dev/null and SIGCONT is left alone."""
    import signal

    if signum == signal.SIGHUP:
        signal.signal(signal.SIGCONT, signal.SIG_DFL)
        devnull = os.open(os.devnull, os.O_WRONLY)
        for fd in (1, 2):
            os.dup2(devnull, fd)
    controls.request_stop()


def _use_tui(args: argparse.Namespace) -> bool:
    return not args.no_tui and not args.json and sys.stdout.isatty() and sys.stdin.isatty()


def _from_handoff(options, view, path: Path):
    """Take the suite command, ignores, deselects and plan order from a handoff, and show them."""
    updates: dict = {}
    if view.state is not None:
        updates["test_cmd"] = options.test_cmd or view.state.test_command
    elif view.test_command and not options.test_cmd:
        updates["test_cmd"] = _runnable(view.test_command)
    updates["ignores"] = list(dict.fromkeys([*options.ignores, *view.ignores]))
    updates["deselect"] = list(dict.fromkeys([*options.deselect, *view.deselect]))
    updates["from_handoff"] = str(path)
    print(
        f"orchestrate: from {path}: test command `{updates.get('test_cmd') or 'default'}`, "
        f"{len(updates['ignores'])} ignores, {len(updates['deselect'])} deselected, "
        f"{len(view.categories)} categories",
        file=sys.stderr,
    )
    for line in view.warnings:
        print(f"orchestrate: note: {line}", file=sys.stderr)
    for line in view.unread:
        print(f"orchestrate: could not read: {line}", file=sys.stderr)
    return options.model_copy(update=updates), view


def _runnable(command: str) -> str:
    """A handoff's suite command minus its --ignore/--deselect options (they are taken apart)."""
    import shlex

    parts = [
        p
        for p in shlex.split(command.replace("\\\n", " "))
        if not p.startswith(("--ignore", "--deselect"))
    ]
    return shlex.join(parts)


def cmd_resume(args: argparse.Namespace) -> int:
    args.from_handoff, args.resume = args.file, None
    return cmd_run(args)


def cmd_bisect(args: argparse.Namespace) -> int:
    from orchestrator.git import GitRepo
    from orchestrator.isolation import bisect
    from orchestrator.view.plain import PlainLog

    repo = GitRepo(_repo_arg(args)).root
    seed, order = _order(args)
    spec = _checkout_spec(repo, args, record_leaks=True).model_copy(update={"order": order})
    finding = bisect(spec, args.nodeid, emit=PlainLog(), seed=seed)
    if args.json:
        print(json.dumps({**finding.model_dump(mode="json"), "leak": finding.leak}, indent=2))
        return 0
    print(f"victim:   {finding.victim}")
    print(f"verdict:  {finding.kind}")
    if finding.culprits:
        print(f"polluter: {', '.join(finding.culprits)}")
    print(f"leak:     {finding.leak or 'none recorded'}")
    print(f"runs:     {finding.runs}")
    if finding.note:
        print(f"note:     {finding.note}")
    return 0


def cmd_handoff_show(args: argparse.Namespace) -> int:
    from orchestrator.handoff import read_handoff

    view = read_handoff(Path(args.file))
    if args.json:
        print(json.dumps(view.contract_json(), indent=2))
        return 0
    print(f"source:        {view.source}")
    print(f"suite command: {view.test_command or '(none found)'}")
    print(f"ignores:       {len(view.ignores)}" + "".join(f"\n  {p}" for p in view.ignores))
    p = {k: "?" if v is None else v for k, v in view.previous.model_dump().items()}
    print(
        f"previous:      total {p['total']}, passed {p['passed']}, failed {p['failed']}, "
        f"errors {p['errors']}, skipped {p['skipped']}"
    )
    for c in view.categories:
        print(
            f"category:      {c.title} -> {c.category or '?'} ({c.count if c.count is not None else '?'} tests)"
        )
    for command in view.commands:
        print(f"command:       {command}")
    for line in view.warnings:
        print(f"note:          {line}")
    for line in view.unread:
        print(f"not understood: {line}")
    return 0


def cmd_clean(args: argparse.Namespace) -> int:
    """Our worktrees; with --branches, the branches of sessions recorded in our state only."""
    from orchestrator.git import GitRepo

    repo = GitRepo(_repo_arg(args))
    removed = repo.clean(dry_run=args.dry_run)
    if args.branches:
        sessions_dir = repo.state_dir / "sessions"
        sessions = sorted(p.name for p in sessions_dir.iterdir()) if sessions_dir.is_dir() else []
        removed += repo.clean(branches=True, sessions=sessions, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for line in dict.fromkeys(removed):
        print(f"{verb} {line}")
    if not removed:
        print("nothing to clean")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from orchestrator.demo import build_demo

    repo = build_demo(Path(args.dir) if args.dir else None)
    print(f"orchestrate: demo repository built at {repo}", file=sys.stderr)
    args.repo = str(repo)
    return cmd_run(args)


def _model_routes(pairs: list[str]) -> dict[str, str]:
    routes = {}
    for pair in pairs:
        category, _, model = pair.partition("=")
        if not category or not model:
            raise UsageError(
                f"--model-for {pair!r}: write CATEGORY=MODEL, e.g. unknown=claude-opus-5"
            )
        routes[category.strip()] = model.strip()
    return routes


def cmd_transcript(args: argparse.Namespace) -> int:
    """The saved conversations of a session's model agents (secrets were scrubbed when saved)."""
    from orchestrator.git import GitRepo

    directory = GitRepo(_repo_arg(args)).state_dir / "sessions" / args.session / "transcripts"
    if not directory.is_dir():
        raise UsageError(
            f"no transcripts for session {args.session!r} in {directory.parent}: "
            "check the session id (a model agent must have run in it)"
        )
    paths = sorted(directory.glob("*.json"), key=lambda p: p.stat().st_mtime)
    chosen = [
        p
        for p in paths
        if (args.category is None or p.name.rsplit("-attempt-", 1)[0] == args.category)
        and (args.attempt is None or p.stem.endswith(f"-attempt-{args.attempt}"))
    ]
    if not chosen:
        known = ", ".join(p.stem for p in paths) or "none"
        raise UsageError(f"no transcript matches (saved: {known})")
    for path in chosen:
        data = json.loads(path.read_text(encoding="utf-8"))
        if args.json:
            print(json.dumps(data, indent=2))
        elif args.category is None:
            usage = data.get("usage") or {}
            print(
                f"{path.stem}: {data.get('model')}, {len(data.get('messages', []))} messages, "
                f"{usage.get('requests', 0)} requests, ${usage.get('cost_usd', 0):.4f}; "
                f"{data.get('stopped')}"
            )
        else:
            print(_render_transcript(path.stem, data))
    return 0


def _render_transcript(name: str, data: dict) -> str:
    usage = data.get("usage") or {}
    lines = [
        f"== {name}: {data.get('model')}, {usage.get('requests', 0)} requests, "
        f"${usage.get('cost_usd', 0):.4f}, stopped: {data.get('stopped')}"
    ]
    for message in data.get("messages", []):
        content = message["content"]
        blocks = content if isinstance(content, list) else [{"type": "text", "text": content}]
        for block in blocks:
            kind = block.get("type")
            if kind == "text":
                body = block.get("text", "")
            elif kind == "tool_use":
                body = f"{block.get('name')} {json.dumps(block.get('input'))[:500]}"
            elif kind == "tool_result":
                text = block.get("content")
                body = (text if isinstance(text, str) else json.dumps(text))[:2000]
                body = ("(error) " if block.get("is_error") else "") + body
            else:
                body = kind or "?"
            lines.append(f"-- {message['role']} {kind}: {body}")
    return "\n".join(lines)


def check_arguments(args: argparse.Namespace) -> None:
    """What argparse cannot check: a --test-cmd the shell-like split can read."""
    import shlex

    if getattr(args, "test_cmd", None):
        try:
            shlex.split(args.test_cmd)
        except ValueError as exc:
            raise UsageError(
                f"--test-cmd {args.test_cmd!r}: {str(exc).lower()}: close the quote"
            ) from None


def _repo_arg(args: argparse.Namespace) -> str:
    path = Path(args.repo or ".").expanduser()
    if not path.exists():
        raise UsageError(f"{path} does not exist: pass the path of a git repository")
    return str(path.resolve())
