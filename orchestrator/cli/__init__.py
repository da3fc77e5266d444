"""The command line: arguments become models at the edge; errors become one line and an exit code.

Nothing heavy is imported at module scope (langgraph, anthropic, textual, libcst, rich): `--help`
must answer at once. The commands are in commands.py, their arguments in arguments.py.
"""

from __future__ import annotations

import sys

from orchestrator.cli.arguments import parser
from orchestrator.errors import OrchestrateError

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    cli = parser()
    args = cli.parse_args(argv)
    if not getattr(args, "func", None):
        cli.print_help()
        return 2
    try:
        return args.func(args) or 0
    except OrchestrateError as exc:
        print(f"orchestrate: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("orchestrate: interrupted", file=sys.stderr)
        return 130
