"""Test-double specialists (tests only): each behaves like one kind of agent the verifier must judge."""

from __future__ import annotations

from pathlib import Path

from orchestrator.models import Proposal, WorkOrder


class _Double:
    name = "double"

    def __init__(self, **kwargs) -> None:
        pass

    def propose(self, order: WorkOrder, worktree: Path, feedback: list[str]) -> Proposal:
        calls = worktree.parent.parent / f"calls-{type(self).__name__}.log"
        with calls.open("a") as fh:
            fh.write(order.category + "\n")
        self.edit(worktree)
        return Proposal(explanation=f"{type(self).__name__} edited the worktree")

    def edit(self, worktree: Path) -> None:
        raise AssertionError("a double must define edit()")

    @staticmethod
    def replace(worktree: Path, rel: str, old: str, new: str) -> None:
        path = worktree / rel
        text = path.read_text()
        assert old in text, f"{old!r} not in {rel}"
        path.write_text(text.replace(old, new))


class FixCorrectly(_Double):
    def edit(self, worktree: Path) -> None:
        self.replace(worktree, "calc/ops.py", "return a - b  # add", "return a + b  # add")


class FixAndBreak(_Double):
    def edit(self, worktree: Path) -> None:
        self.replace(worktree, "calc/ops.py", "return a - b  # add", "return a + b  # add")
        self.replace(worktree, "calc/ops.py", "return a * b", "return a * b + 1")


class DeleteTest(_Double):
    def edit(self, worktree: Path) -> None:
        self.replace(
            worktree, "tests/test_ops.py", "def test_add():\n    assert add(2, 3) == 5\n", ""
        )


class AddSkip(_Double):
    def edit(self, worktree: Path) -> None:
        self.replace(
            worktree, "tests/test_ops.py", "def test_add():", "@pytest.mark.skip\ndef test_add():"
        )
        self.replace(worktree, "tests/test_ops.py", "from calc", "import pytest\nfrom calc")


class WeakenAssert(_Double):
    def edit(self, worktree: Path) -> None:
        self.replace(
            worktree, "tests/test_ops.py", "assert add(2, 3) == 5", "assert add(2, 3) <= 5"
        )


class Crash(_Double):
    def edit(self, worktree: Path) -> None:
        raise RuntimeError("the agent fell over")


class EditSharedA(_Double):
    """Fixes `add` and also touches a shared helper the planner could not predict."""

    def edit(self, worktree: Path) -> None:
        self.replace(worktree, "calc/ops.py", "return a - b  # add", "return a + b  # add")
        self.replace(worktree, "calc/version.py", 'VERSION = "1.0"', 'VERSION = "1.1-a"')


class EditSharedB(_Double):
    def edit(self, worktree: Path) -> None:
        FixLower().edit(worktree)
        self.replace(worktree, "calc/version.py", 'VERSION = "1.0"', 'VERSION = "1.1-b"')


class FixLower(_Double):
    def edit(self, worktree: Path) -> None:
        self.replace(
            worktree,
            "calc/text.py",
            'raise RuntimeError("Event loop is closed")',
            "return s.lower()",
        )


class InterruptOnce(_Double):
    """Fixes `add`, but the first time it is called it stands for a Ctrl-C mid-run."""

    def edit(self, worktree: Path) -> None:
        flag = worktree.parent.parent / "interrupted-once"
        if not flag.exists():
            flag.write_text("yes")
            raise KeyboardInterrupt
        FixCorrectly().edit(worktree)


class CommentOnly(_Double):
    """Changes nothing that matters: a victim passing after this is someone else's doing."""

    def edit(self, worktree: Path) -> None:
        path = worktree / "tests/test_b_redis.py"
        path.write_text("# checked by the orchestrator\n" + path.read_text())


class TermOnce(_Double):
    """Fixes `add`; the first time it is called, the process gets a SIGTERM (a `kill`) mid-run."""

    def edit(self, worktree: Path) -> None:
        import os
        import signal
        import time

        flag = worktree.parent.parent / "terminated-once"
        if not flag.exists():
            flag.write_text("yes")
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.5)  # the main thread stops the run meanwhile
        FixCorrectly().edit(worktree)
