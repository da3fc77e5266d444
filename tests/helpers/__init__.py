"""What the tests share: throwaway repositories, the CLI in-process, generated test modules.

Doubles of agents live in `doubles.py`, a scripted Messages API in `fake_anthropic.py`, a fake
`docker` executable in `fake_docker.py`.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path

from orchestrator.cli import main

ROOT = Path(__file__).resolve().parent.parent.parent
RESOURCES = ROOT / "tests" / "resources"
HANDOFFS = RESOURCES / "handoffs"

MakeRepo = Callable[..., Path]


IDENTITY = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str) -> str:
    """One git command in `repo` as the tests' own identity (module fixtures run before the
    autouse environment fixture)."""
    env = {**os.environ, **IDENTITY}
    out = subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env
    )
    return out.stdout.strip()


def write_files(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


def commit_all(repo: Path) -> None:
    """`git init` the directory and commit everything in it."""
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")


def cli(*argv: str) -> tuple[int, str, str]:
    """`orchestrate ARGV` in-process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def innocents(prefix: str, count: int = 4) -> str:
    """Source of `count` passing test functions named test_<prefix>_<i>."""
    return "".join(
        f"\n\ndef test_{prefix}_{i}():\n    assert {i} + 1 == {i + 1}\n" for i in range(count)
    )
