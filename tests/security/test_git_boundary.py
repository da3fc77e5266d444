"""What tests and agents may not do to git: commit onto our branches, leave branches or files,
smuggle by-products into a patch; and the awkward repositories: non-UTF-8 names, a branch that
blocks our ref names, triage next to a checkout it must not change."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from orchestrator.errors import OrchestrateError
from orchestrator.git import MAX_FILE_BYTES, GitRepo
from orchestrator.models import RunSpec
from orchestrator.secrets import scrub
from orchestrator.suite import sandbox
from orchestrator.suite.runner import run_suite
from tests.helpers import cli, commit_all, git, write_files

ROGUE_TEST = """
import pathlib, subprocess


def test_rogue():
    pathlib.Path("byproduct.bin").write_bytes(b"x" * 100)
    pathlib.Path("app.py").unlink()
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin"}
    subprocess.run(["git", "commit", "-qam", "rogue"], env=env)
    subprocess.run(["git", "checkout", "-qb", "rogue"], env=env)
"""


def _repo(tmp_path: Path) -> GitRepo:
    root = tmp_path / "repo"
    root.mkdir()
    write_files(root, {"app.py": "X = 1\n", "tests/test_rogue.py": ROGUE_TEST})
    commit_all(root)
    return GitRepo(root)


def _spec(wt: Path, sandbox_mode: str) -> RunSpec:
    return RunSpec(
        repo=str(wt),
        command=[sys.executable, "-m", "pytest"],
        env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        sandbox=sandbox_mode,
    )


@pytest.mark.parametrize("mode", ["off", "auto"])
def test_a_test_run_leaves_the_worktree_as_it_was(tmp_path: Path, mode: str) -> None:
    if mode == "auto" and sandbox.available() is None:
        pytest.skip("no sandbox on this machine")
    repo = _repo(tmp_path)
    with repo.worktree("orchestrate/lane", repo.head) as wt:
        (wt / "fix.py").write_text("agent's new file\n")  # the agent's edits, uncommitted
        (wt / "app.py").write_text("X = 2\n")
        head = repo.rev("HEAD", cwd=wt)
        with repo.preserved(wt):
            run_suite(_spec(wt, mode))
        assert repo.rev("HEAD", cwd=wt) == head
        assert git(wt, "symbolic-ref", "--short", "HEAD") == "orchestrate/lane"
        assert (wt / "app.py").read_text() == "X = 2\n"
        assert (wt / "fix.py").read_text() == "agent's new file\n"
        assert not (wt / "byproduct.bin").exists()
        assert repo.rev("orchestrate/lane") == head
    if mode == "auto":  # inside the sandbox git could not even write
        assert "rogue" not in repo.branches("rogue")


def test_only_the_agents_files_are_committed_and_size_is_limited(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    with repo.worktree("orchestrate/patch", repo.head) as wt:
        (wt / "app.py").write_text("X = 2\n")
        (wt / "huge.bin").write_bytes(b"\0" * (MAX_FILE_BYTES + 1))
        (wt / "byproduct.log").write_text("a test wrote this\n")
        token = "ghp_" + "s3cr3t" * 4
        os.environ["ORCH_TEST_TOKEN"] = token
        try:
            commit = repo.commit_all(wt, f"fix: saw {token[::-1]}", ["app.py", "huge.bin"])
        finally:
            del os.environ["ORCH_TEST_TOKEN"]
        assert commit is not None
        assert repo.changed_files(repo.head, commit) == ["app.py"]
        message = git(wt, "log", "-1", "--format=%B")
        assert "huge.bin" in message and token[::-1] not in message and "[redacted]" in message


def test_a_user_branch_named_like_our_directory_gets_one_line(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    git(repo.root, "branch", "orchestrate")
    with pytest.raises(OrchestrateError) as caught, repo.worktree("orchestrate/lane", repo.head):
        pass
    assert "git branch -m orchestrate orchestrate-old" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_non_utf8_test_file_name_runs(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "tests").mkdir(parents=True)
    Path(os.fsdecode(bytes(root / "tests") + b"/test_caf\xe9.py")).write_text(
        "def test_a():\n    assert 1 == 2\n\ndef test_b():\n    pass\n"
    )
    commit_all(root)
    spec = _spec(root, "auto")
    run = run_suite(spec)
    ids = sorted(r.nodeid for r in run.results)
    assert ids == ["tests/test_caf\\xe9.py::test_a", "tests/test_caf\\xe9.py::test_b"]
    again = run_suite(spec.model_copy(update={"select": [ids[0]]}))
    assert [r.nodeid for r in again.results] == [ids[0]]
    run.model_dump_json()  # storable


def test_triage_never_writes_into_the_checkout(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    write_files(
        root,
        {
            "pyproject.toml": f'[tool.orchestrator]\ntest-cmd = "{sys.executable} -m pytest"\n'
            'env = { PYTEST_DISABLE_PLUGIN_AUTOLOAD = "1" }\n',
            "tests/test_w.py": "import pathlib\n\ndef test_w():\n    pathlib.Path('written.txt').write_text('x')\n    assert False\n",
        },
    )
    commit_all(root)
    (root / "uncommitted.txt").write_text("mine\n")
    code, _, err = cli("triage", str(root), "--json", "--no-isolation")
    assert code == 1, err  # a red suite: pytest's exit code
    assert not (root / "written.txt").exists()
    assert (root / "uncommitted.txt").read_text() == "mine\n"
    assert git(root, "worktree", "list").count("\n") == 0


def test_secrets_are_scrubbed_in_every_shape() -> None:
    import base64

    value = "sk-ant-api03-abcdefghijklmnop"
    env = {"ANTHROPIC_API_KEY": value, "DATABASE_URL": "postgres://u:pw12345678@h/db"}
    from orchestrator.secrets import secret_values

    secrets = secret_values(env)
    text = " ".join(
        [value, value[::-1], base64.b64encode(value.encode()).decode(), env["DATABASE_URL"]]
    )
    cleaned = scrub(text, secrets)
    assert value not in cleaned and value[::-1] not in cleaned and "pw12345678" not in cleaned
    assert cleaned.count("[redacted]") == 4
