"""Order-dependence that shows only in another order: `--shuffle [SEED|FILE]` for `run` and
`bisect`, and `bisect` pointing to it when the victim passes in file order.

The polluter's file sorts after the victim's, so in file order the victim passes; a shuffled
order (a seed that puts the polluter first) or an order file replays the failure.
"""

from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path

from orchestrator.cli import main
from tests.helpers import git

VICTIM = "tests/test_a_shop.py::test_mode_is_writable"
POLLUTER = "tests/test_z_setup.py::test_readonly_mode"
FILES = {
    "tests/test_a_shop.py": """
        import os


        def test_mode_is_writable():
            assert os.environ.get("SHOP_MODE", "writable") == "writable"
        """,
    "tests/test_z_setup.py": """
        import os


        def test_readonly_mode():
            os.environ["SHOP_MODE"] = "readonly"


        def test_other():
            pass
        """,
}
COLLECTED = [VICTIM, POLLUTER, "tests/test_z_setup.py::test_other"]


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def failing_seed() -> int:
    """A seed whose shuffle (the stream plugin's) runs the polluter before the victim."""
    for seed in range(1, 100):
        order = list(COLLECTED)
        random.Random(seed).shuffle(order)
        if order.index(POLLUTER) < order.index(VICTIM):
            return seed
    raise AssertionError("no seed puts the polluter first")


def test_bisect_in_file_order_points_to_a_shuffled_order(make_repo, capsys) -> None:
    repo = make_repo(FILES)

    code, out, _ = cli(capsys, "bisect", str(repo), VICTIM, "--json", "--timeout", "20")

    assert code == 0
    finding = json.loads(out)
    assert finding["kind"] == "unresolved" and finding["culprits"] == []
    assert "passes alone and in this order (file order)" in finding["note"]
    assert "--shuffle SEED" in finding["note"] and "--shuffle FILE" in finding["note"]
    assert "flaky" not in finding["note"]


def test_bisect_replays_a_seed_or_an_order_file(make_repo, capsys, tmp_path: Path) -> None:
    repo = make_repo(FILES)
    seed = failing_seed()

    code, out, _ = cli(capsys, "bisect", str(repo), VICTIM, "--shuffle", str(seed), "--json")
    assert code == 0
    finding = json.loads(out)
    assert (finding["kind"], finding["culprits"]) == ("polluter", [POLLUTER])
    assert finding["leak"] == "SHOP_MODE='readonly' left in os.environ"

    order = tmp_path / "order.txt"
    order.write_text(f"{POLLUTER}\n{VICTIM}\n", encoding="utf-8")
    code, out, _ = cli(capsys, "bisect", str(repo), VICTIM, "--shuffle", str(order), "--json")
    assert code == 0
    assert json.loads(out)["culprits"] == [POLLUTER]


def test_shuffle_of_a_missing_order_file_is_one_line(make_repo, capsys, tmp_path) -> None:
    repo = make_repo(FILES)
    code, out, err = cli(capsys, "bisect", str(repo), VICTIM, "--shuffle", str(tmp_path / "x"))
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and "neither a seed (a whole number) nor a file" in err


def test_run_shuffled_finds_and_fixes_what_file_order_hides(make_repo, capsys, tmp_path) -> None:
    """`run --shuffle` (no seed) picks one, says it, and the order-dependent failure is triaged
    and fixed; the same seed replays the same order."""
    repo = make_repo(FILES)
    seed = failing_seed()
    handoffs = ["--handoff-dir", str(tmp_path / "handoffs")]
    code, out, err = cli(
        capsys, "run", str(repo), "--no-tui", "--json", "--shuffle", str(seed), *handoffs
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["before"]["failed"] == 1
    (agent,) = report["agents"]
    assert (agent["category"], agent["status"]) == ("test_isolation", "accepted"), agent
    assert report["after"]["failed"] == 0 and report["integration_branch"]

    code, out, err = cli(capsys, "run", str(repo), "--no-tui", "--json", "--shuffle", *handoffs)
    assert code == 0, err
    picked = re.search(r"shuffled with seed (\d+) \(replay with --shuffle (\d+)\)", err)
    assert picked and picked.group(1) == picked.group(2)


def test_run_with_nothing_merged_makes_no_integration_branch(make_repo, capsys, tmp_path) -> None:
    """A run whose only failure waits for a model (no key) merges nothing: no branch is left."""
    repo = make_repo({"tests/test_calc.py": "def test_add():\n    assert 1 + 1 == 3\n"})
    code, out, err = cli(
        capsys, "run", str(repo), "--no-tui", "--json", "--handoff-dir", str(tmp_path / "h")
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["integration_branch"] is None and report["agents"] == []
    assert git(repo, "branch", "--list", "orchestrate/*") == ""
    handoff = Path(report["handoff"]).read_text(encoding="utf-8")
    assert "- **Integration branch**: none" in handoff


def test_run_accepts_the_readmes_relative_test_command(
    make_repo, capsys, tmp_path, monkeypatch
) -> None:
    """`--test-cmd ".venv/bin/python -m pytest"` runs in the agents' worktrees too, where no
    .venv is: it is the repo's."""
    repo = make_repo(
        {
            ".gitignore": ".venv\n",
            "calc.py": "def add(a, b):\n    return a - b\n",
            "tests/test_calc.py": "from calc import add\n\n\ndef test_add():\n    assert add(2, 2) == 4\n",
        },
        pyproject='[tool.pytest.ini_options]\npythonpath = ["."]\n',
    )
    (repo / ".venv").symlink_to(sys.prefix)
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    command = ".venv/bin/python -m pytest"
    code, out, err = cli(
        capsys, "run", str(repo), "--no-tui", "--json", "--test-cmd", command,
        "--handoff-dir", str(tmp_path / "h"),
    )  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    assert report["before"]["failed"] == 1  # it ran, in the user's checkout and in worktrees
    assert "test command not found" not in err
