"""Fixtures the model agent's tests share."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import git


@pytest.fixture
def calc_repo(make_repo, tmp_path: Path) -> Path:
    """A repository with a wrong `add`, and a worktree of it on its own branch."""
    repo = make_repo(
        {
            "calc.py": "def add(a, b):\n    return a - b\n",
            "tests/test_calc.py": "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n",
        }
    )
    worktree = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", str(worktree), "-b", "fix")
    return worktree
