"""gitops on real repositories: worktrees come and go, the user's checkout never changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import UsageError
from orchestrator.git import GitRepo
from tests.helpers import MakeRepo, git

FILES = {"app.py": "VALUE = 1\n", "tests/test_app.py": "def test_value():\n    assert True\n"}


@pytest.fixture
def repo(make_repo: MakeRepo) -> GitRepo:
    return GitRepo(make_repo(FILES))


def test_opening_bad_paths_raises_one_line_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"does not exist$"):
        GitRepo(tmp_path / "missing")
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(UsageError, match=r"is not a git repository: run `git init`"):
        GitRepo(plain)
    git(plain, "init", "-q")
    with pytest.raises(UsageError, match=r"has no commits yet"):
        GitRepo(plain)


def test_properties_and_state_dir_from_a_worktree(repo: GitRepo) -> None:
    assert repo.current_branch == "main"
    assert repo.head == git(repo.root, "rev-parse", "HEAD")
    assert repo.git_dir == (repo.root / ".git").resolve()
    with repo.worktree("orchestrate/a", repo.head) as wt:
        inner = GitRepo(wt)
        assert inner.root == wt.resolve()
        assert inner.git_dir == repo.git_dir  # the common dir, not the worktree's own
        assert inner.state_dir == repo.git_dir / "orchestrate"
        assert inner.current_branch == "orchestrate/a"
    git(repo.root, "checkout", "-q", "--detach")
    assert repo.current_branch is None


def test_worktree_is_removed_and_branch_kept(repo: GitRepo) -> None:
    with repo.worktree("orchestrate/model_defaults/1", repo.head) as wt:
        assert wt == repo.git_dir / "orchestrate" / "worktrees" / "orchestrate-model_defaults-1"
        assert (wt / "app.py").read_text() == "VALUE = 1\n"
        assert git(wt, "branch", "--show-current") == "orchestrate/model_defaults/1"
    assert not wt.exists()
    assert "orchestrate/model_defaults/1" not in git(repo.root, "worktree", "list")
    assert repo.branches("orchestrate/") == ["orchestrate/model_defaults/1"]


def test_worktree_is_removed_on_keyboard_interrupt(repo: GitRepo) -> None:
    with pytest.raises(KeyboardInterrupt), repo.worktree("orchestrate/ki", repo.head) as wt:
        (wt / "new.py").write_text("x = 1\n")
        raise KeyboardInterrupt
    assert not wt.exists()
    assert len(git(repo.root, "worktree", "list").splitlines()) == 1


def test_commit_merge_and_reads_leave_the_user_checkout_identical(repo: GitRepo) -> None:
    (repo.root / "app.py").write_text("VALUE = 'user edit'\n")  # the user's own uncommitted work
    (repo.root / "notes.txt").write_text("mine\n")
    git(repo.root, "add", "notes.txt")
    before = repo.fingerprint()
    base = repo.head
    repo.create_branch("orchestrate/integration", base)
    with repo.worktree("orchestrate/agent", base) as wt:
        (wt / "app.py").write_text("VALUE = 2\n")
        (wt / "added.py").write_text("NEW = True\n")
        (wt / "__pycache__").mkdir()
        (wt / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"junk")
        sha = repo.commit_all(wt, "fix value")
        assert sha is not None
        assert repo.commit_all(wt, "nothing") is None
    assert repo.changed_files(base, sha) == ["added.py", "app.py"]
    assert "+VALUE = 2" in repo.diff(base, sha)
    assert repo.file_at(sha, "added.py") == "NEW = True\n"
    assert repo.file_at(base, "added.py") is None
    assert (
        git(repo.root, "log", "-1", "--format=%an <%ae>", sha)
        == "orchestrate <orchestrate@localhost>"
    )
    with repo.worktree("orchestrate/integrate", "orchestrate/integration") as wt:
        assert repo.merge(wt, "orchestrate/agent", "merge agent")
        assert (wt / "added.py").exists()
    assert repo.fingerprint() == before
    assert (repo.root / "app.py").read_text() == "VALUE = 'user edit'\n"


def test_snapshot_uncommitted_captures_work_without_touching_index_or_tree(repo: GitRepo) -> None:
    (repo.root / "app.py").write_text("VALUE = 3\n")
    (repo.root / "untracked.py").write_text("U = 1\n")
    (repo.root / ".gitignore").write_text("ignored.log\n")
    (repo.root / "ignored.log").write_text("noise\n")
    before = repo.fingerprint()
    sha = repo.snapshot_uncommitted("snapshot")
    assert repo.fingerprint() == before
    assert repo.head != sha
    assert git(repo.root, "rev-parse", f"{sha}^") == repo.head
    assert repo.file_at(sha, "app.py") == "VALUE = 3\n"
    assert repo.file_at(sha, "untracked.py") is None  # untracked files never go in (a .venv)
    assert repo.file_at(sha, "ignored.log") is None
    assert sorted(repo.dirty_files()) == [".gitignore", "app.py", "untracked.py"]
    with pytest.raises(UsageError, match=r"uncommitted changes \(3 files\): commit or stash"):
        repo.require_clean()


def test_merge_conflict_returns_false_and_leaves_no_merge_in_progress(repo: GitRepo) -> None:
    base = repo.head
    for name, value in (("orchestrate/one", "10"), ("orchestrate/two", "20")):
        with repo.worktree(name, base) as wt:
            (wt / "app.py").write_text(f"VALUE = {value}\n")
            repo.commit_all(wt, name)
    repo.create_branch("orchestrate/integration", base)
    with repo.worktree("orchestrate/integrate", "orchestrate/integration") as wt:
        assert repo.merge(wt, "orchestrate/one", "one")
        assert not repo.merge(wt, "orchestrate/two", "two")
        admin = Path(git(wt, "rev-parse", "--absolute-git-dir"))
        assert not (admin / "MERGE_HEAD").exists()
        assert git(wt, "status", "--porcelain") == ""
        assert (wt / "app.py").read_text() == "VALUE = 10\n"


def test_files_from_restores_the_worktree(repo: GitRepo) -> None:
    base = repo.head
    with repo.worktree("orchestrate/t", base) as wt:
        (wt / "tests" / "test_app.py").write_text("def test_value():\n    assert 1\n")
        (wt / "tests" / "test_new.py").write_text("def test_new():\n    pass\n")
        repo.commit_all(wt, "edit tests")
        with repo.files_from(wt, base, ["tests/test_app.py", "tests/test_new.py"]):
            assert (wt / "tests" / "test_app.py").read_text().endswith("assert True\n")
            assert not (wt / "tests" / "test_new.py").exists()
        assert (wt / "tests" / "test_new.py").exists()
        assert git(wt, "status", "--porcelain") == ""


def test_clean_removes_leftovers_and_branches(repo: GitRepo) -> None:
    leftover = repo.git_dir / "orchestrate" / "worktrees" / "leftover"
    git(repo.root, "worktree", "add", "-q", "-b", "orchestrate/left", str(leftover), "HEAD")
    admin = Path(git(leftover, "rev-parse", "--absolute-git-dir"))
    (admin / "index.lock").write_text("")
    stray = repo.git_dir / "orchestrate" / "worktrees" / "stray"
    stray.mkdir()
    repo.create_branch("keep/me", "HEAD")
    removed = repo.clean(branches=True)
    assert f"lock {admin / 'index.lock'}" in removed
    assert f"worktree {leftover}" in removed and f"worktree {stray}" in removed
    assert "branch orchestrate/left" in removed
    assert not leftover.exists() and not stray.exists()
    assert len(git(repo.root, "worktree", "list").splitlines()) == 1
    assert repo.branches("") == ["keep/me", "main"]
    assert repo.clean() == []


def test_inherited_git_variables_are_ignored(repo: GitRepo, tmp_path: Path, monkeypatch) -> None:
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q")
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_INDEX_FILE", str(tmp_path / "bogus-index"))
    monkeypatch.setenv("GIT_WORK_TREE", str(other))
    reopened = GitRepo(repo.root)
    assert reopened.git_dir == repo.git_dir
    with reopened.worktree("orchestrate/env", reopened.head) as wt:
        (wt / "app.py").write_text("VALUE = 5\n")
        assert reopened.commit_all(wt, "env") is not None
    assert not (tmp_path / "bogus-index").exists()
