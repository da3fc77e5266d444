"""The command line: arguments become models at the edge; errors become one line and an exit code.

Exit codes are pytest's: 0 all passed (or the command did its job), 1 tests fail, 2 bad input or
a target that cannot run, 5 no tests collected, 130 stopped by the user. SIGTERM and SIGHUP stop
like Ctrl-C (gracefully, resumable); a second stop signal leaves at once, quietly.

Nothing heavy is imported at module scope (langgraph, anthropic, textual, libcst, rich): `--help`
must answer at once. The commands are in commands.py, their arguments in arguments.py.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from orchestrator.cli.arguments import parser
from orchestrator.cli.commands import check_arguments
from orchestrator.errors import OrchestrateError

__all__ = ["main"]

STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:  # what follows `--` goes to every pytest run, as written
        at = argv.index("--")
        argv, extra = argv[:at], argv[at + 1 :]
    cli = parser()
    args = cli.parse_args(argv)
    if not getattr(args, "func", None):
        cli.print_help()
        return 2
    args.pytest_args = extra
    try:
        with _stop_signals():
            check_arguments(args)
            code = args.func(args) or 0
            sys.stdout.flush()  # a closed pipe shows here, not at exit
            return code
    except OrchestrateError as exc:
        print(f"orchestrate: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("orchestrate: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `orchestrate ... | head`: the reader left; so do we, quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


@contextmanager
def _stop_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP raise KeyboardInterrupt like SIGINT; the second of any leaves at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    for s in STOP_SIGNALS:
        signal.signal(s, _first_stop)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGINT) is not _second_stop:
            for s, handler in saved.items():
                signal.signal(s, handler)
        # after a stop the quiet handler stays: a second Ctrl-C while the interpreter waits for
        # the run's threads to wind down leaves at once instead of printing their tracebacks


def _first_stop(signum: int, _frame: object) -> None:
    for s in STOP_SIGNALS:
        signal.signal(s, _second_stop)
    raise KeyboardInterrupt


def _second_stop(signum: int, _frame: object) -> None:
    """Stopping again while the run winds down: leave now, without a traceback."""
    sys.stderr.write("\norchestrate: stopped at once; `orchestrate clean` removes what is left\n")
    sys.stderr.flush()
    os._exit(130)
