"""The arguments of every command, and which command function each one runs."""

from __future__ import annotations

import argparse

from orchestrator import __version__
from orchestrator.cli.commands import (
    RANDOM_SEED,
    cmd_bisect,
    cmd_clean,
    cmd_demo,
    cmd_handoff_show,
    cmd_resume,
    cmd_run,
    cmd_transcript,
    cmd_triage,
)


def _suite_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--test-cmd",
        help="the suite command (default: [tool.orchestrator] test-cmd, uv, .venv, this Python)",
    )
    p.add_argument(
        "--ignore", action="append", default=[], metavar="PATH", help="ignore a path (repeatable)"
    )
    p.add_argument(
        "--deselect",
        action="append",
        default=[],
        metavar="NODEID",
        help="deselect a test (repeatable)",
    )
    p.add_argument(
        "--timeout", type=float, metavar="SECONDS", help="per-test timeout (default 120)"
    )
    p.add_argument(
        "--shuffle",
        nargs="?",
        const=RANDOM_SEED,
        metavar="SEED|FILE",
        help="run the suite in a seeded random order (a seed is picked and printed when none is "
        "given), or in the order of a file of node ids",
    )
    p.add_argument("--no-isolation", action="store_true", help="skip order-dependence diagnostics")
    p.add_argument(
        "--reruns",
        type=int,
        default=0,
        metavar="K",
        help="re-run failures K times to find flaky tests",
    )
    p.add_argument("--json", action="store_true", help="JSON output per the contract")
    p.add_argument(
        "--sandbox",
        choices=["auto", "required", "off"],
        default="auto",
        help="confine every test run (bubblewrap/sandbox-exec): auto uses it when available, "
        "required refuses without it, off runs unconfined (default auto)",
    )
    p.add_argument(
        "--network",
        choices=["loopback", "none", "host"],
        help="the sandbox's network: its own loopback, none, or the host's (default loopback; "
        "host when the suite declares containers)",
    )


def _run_options(p: argparse.ArgumentParser) -> None:
    _suite_options(p)
    p.add_argument(
        "--no-tui", action="store_true", help="plain log lines instead of the terminal UI"
    )
    p.add_argument("--agents", metavar="A,B", help="only these specialists (or categories)")
    p.add_argument(
        "-n",
        "--parallel",
        type=int,
        metavar="N",
        help="agents at once (default: from the CPU count)",
    )
    p.add_argument(
        "--base",
        metavar="REV",
        help="start from this revision (default: HEAD, or a handoff's unmerged integration branch)",
    )
    p.add_argument(
        "--max-attempts", type=int, default=3, metavar="K", help="attempts per agent (default 3)"
    )
    p.add_argument(
        "--verify", choices=["targeted", "full"], default="targeted", help="regression set"
    )
    p.add_argument("--no-integrate", action="store_true", help="leave only the agent branches")
    p.add_argument(
        "--include-uncommitted",
        action="store_true",
        help="snapshot uncommitted changes into the base",
    )
    p.add_argument(
        "--model",
        help="Claude model for the LLM specialist (default: ORCHESTRATOR_MODEL or a current Sonnet)",
    )
    p.add_argument(
        "--budget-usd", type=float, metavar="USD", help="dollar limit per model agent, all attempts"
    )
    p.add_argument(
        "--session-budget-usd", type=float, metavar="USD", help="dollar limit for every model call"
    )
    p.add_argument("--max-turns", type=int, metavar="N", help="model turns per attempt (30)")
    p.add_argument("--escalate-model", metavar="MODEL", help="the model of an agent's last attempt")
    p.add_argument(
        "--model-for",
        action="append",
        default=[],
        metavar="CATEGORY=MODEL",
        help="the model for one category (repeatable; also [tool.orchestrator] models)",
    )
    p.add_argument(
        "--handoff-dir", metavar="DIR", help="where to write the handoff (default REPO/handoffs)"
    )


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orchestrate",
        description="Turn a red pytest suite green.",
        epilog="Arguments after `--` go to every pytest run (e.g. `-- -k db -p no:cacheprovider`). "
        "Exit codes, as pytest's: 0 all passed or done, 1 tests fail, 2 bad input, "
        "5 no tests collected, 130 stopped.",
    )
    parser.add_argument("--version", action="version", version=f"orchestrate {__version__}")
    sub = parser.add_subparsers(metavar="COMMAND")

    p = sub.add_parser("triage", help="run the suite and group its failures into categories")
    p.add_argument("repo", nargs="?", help="the git repository (default: .)")
    p.add_argument(
        "--junit", metavar="FILE", help="read an existing JUnit XML report instead of running"
    )
    p.add_argument("-v", "--verbose", action="store_true", help="progress lines even with --json")
    _suite_options(p)
    p.set_defaults(func=cmd_triage)

    p = sub.add_parser(
        "run", help="triage, fix with specialist agents, verify, integrate, hand off"
    )
    p.add_argument("repo", nargs="?", help="the git repository (default: .)")
    p.add_argument("--resume", metavar="SESSION", help="continue an interrupted run")
    p.add_argument(
        "--from-handoff", metavar="FILE", help="start from a handoff (ours or a person's)"
    )
    _run_options(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("resume", help="start a run from a handoff file")
    p.add_argument("file", help="the handoff markdown")
    p.add_argument("repo", nargs="?", help="the git repository (default: .)")
    _run_options(p)
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser("bisect", help="find the earlier test that makes NODEID fail")
    p.add_argument("repo", nargs="?", help="the git repository (default: .)")
    p.add_argument("nodeid", help="the victim's pytest node id")
    _suite_options(p)
    p.set_defaults(func=cmd_bisect)

    p = sub.add_parser("handoff", help="handoff files")
    hsub = p.add_subparsers(metavar="ACTION")
    h = hsub.add_parser("show", help="what a handoff was understood to say, before anything runs")
    h.add_argument("file")
    h.add_argument("--json", action="store_true")
    h.set_defaults(func=cmd_handoff_show)

    p = sub.add_parser("transcript", help="show what a model agent sent and received")
    p.add_argument("session", help="the session id (see the handoff or `run --json`)")
    p.add_argument("category", nargs="?", help="one category (default: list the transcripts)")
    p.add_argument("--repo", help="the git repository (default: .)")
    p.add_argument("--attempt", type=int, help="one attempt (default: all)")
    p.add_argument("--json", action="store_true", help="the saved JSON as is")
    p.set_defaults(func=cmd_transcript)

    p = sub.add_parser("clean", help="remove worktrees and locks left by interrupted runs")
    p.add_argument("repo", nargs="?", help="the git repository (default: .)")
    p.add_argument(
        "--branches",
        action="store_true",
        help="also delete the branches of sessions recorded here (never other orchestrate/* ones)",
    )
    p.add_argument("--dry-run", action="store_true", help="list what would go, remove nothing")
    p.set_defaults(func=cmd_clean)

    p = sub.add_parser("demo", help="build a small broken repository and run on it (offline)")
    p.add_argument("--dir", help="build the demo here instead of a temporary directory")
    _run_options(p)
    p.set_defaults(func=cmd_demo, resume=None, from_handoff=None)
    return parser
