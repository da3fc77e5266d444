"""Every git operation, through one thin layer that never touches the user's checkout.

Git runs as a subprocess with the inherited `GIT_*` variables scrubbed (a hook or an IDE may
export `GIT_DIR`/`GIT_INDEX_FILE`, which would point our commands at the wrong repository or
index) and with optional locks off, so even a read never rewrites the user's index. Mutations
happen in worktrees under `<git-common-dir>/orchestrate/` inside context managers that clean
up in `finally`. GitPython's `Git.execute` can only add variables, never remove them, so the
layer calls git directly.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from orchestrator.errors import OrchestrateError, UsageError
from orchestrator.secrets import scrub

IDENTITY = {
    "GIT_AUTHOR_NAME": "orchestrate",
    "GIT_AUTHOR_EMAIL": "orchestrate@localhost",
    "GIT_COMMITTER_NAME": "orchestrate",
    "GIT_COMMITTER_EMAIL": "orchestrate@localhost",
}
# Variables that configure how git reaches the world, not which repository it works on.
_KEEP = {
    "GIT_EXEC_PATH",
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_SSL_CAINFO",
    "GIT_SSL_NO_VERIFY",
    "GIT_ASKPASS",
    "GIT_ALLOW_PROTOCOL",
    "GIT_HTTP_PROXY_AUTHORIZATION",
    "GIT_CONFIG_COUNT",
    "GIT_CONFIG_NOSYSTEM",
    "GIT_CONFIG_GLOBAL",
    "GIT_CONFIG_SYSTEM",
}
# What a test run leaves behind in a worktree; never part of a patch.
# git races when two `worktree add`/`remove` run at once in one repository ("failed to read
# .git/worktrees/<name>/commondir"), so parallel agents take turns for those two commands.
_WORKTREE_LOCK = threading.Lock()
_JUNK = (":(exclude,glob)**/__pycache__/**", ":(exclude,glob)**/.pytest_cache/**")
_NO_SIGN = ("-c", "commit.gpgsign=false")
MAX_FILE_BYTES = 1 << 20  # a file of a patch; larger ones are left out of the commit


def git_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment without inherited repository-selecting `GIT_*` variables."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("GIT_")
        or k in _KEEP
        or k.startswith(("GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_"))
    }
    env["GIT_OPTIONAL_LOCKS"] = "0"
    env["GIT_TERMINAL_PROMPT"] = "0"
    env.update(extra or {})
    return env


def run_git(
    cwd: Path, *args: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run one git command in `cwd`; a failure with `check` is a one-line OrchestrateError."""
    proc = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=git_env(env),
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        stdin=subprocess.DEVNULL,
    )
    if check and proc.returncode != 0:
        detail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
        raise OrchestrateError(
            f"git {args[0]} failed in {cwd}: {detail[-1] if detail else proc.returncode}"
        )
    return proc


def _out(cwd: Path, *args: str) -> str:
    return run_git(cwd, *args).stdout.strip()


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except (FileNotFoundError, IsADirectoryError):
        return None


def _sanitise(branch: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", branch).strip("-.") or "worktree"


class GitRepo:
    """A repository the user owns: reads freely, writes only to branches and our worktrees."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path).expanduser()
        if not path.exists():
            raise UsageError(f"{path} does not exist")
        if not path.is_dir():
            raise UsageError(f"{path} is not a directory: point at a repository")
        top = run_git(path, "rev-parse", "--show-toplevel", check=False)
        if top.returncode != 0 or not top.stdout.strip():
            raise UsageError(
                f"{path} is not a git repository: run `git init` or point at a repository"
            )
        self.root = Path(top.stdout.strip()).resolve()
        if run_git(self.root, "rev-parse", "--verify", "-q", "HEAD", check=False).returncode:
            raise UsageError(f"{self.root} has no commits yet: commit once, then run again")
        common = _out(self.root, "rev-parse", "--git-common-dir")
        self.git_dir = (self.root / common).resolve()

    def git(self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
        """Stdout of one git command (in the repository, or in one of our worktrees)."""
        return run_git(cwd or self.root, *args, env=env).stdout.strip()

    # --- reading the user's state -----------------------------------------------------------

    @property
    def state_dir(self) -> Path:
        path = self.git_dir / "orchestrate"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    @property
    def current_branch(self) -> str | None:
        proc = run_git(self.root, "symbolic-ref", "-q", "--short", "HEAD", check=False)
        return proc.stdout.strip() or None

    def rev(self, rev: str, cwd: Path | None = None) -> str:
        """The commit sha `rev` names (e.g. "HEAD" of a worktree)."""
        return self.git("rev-parse", "--verify", f"{rev}^{{commit}}", cwd=cwd)

    def dirty_files(self, untracked: bool = True) -> list[str]:
        """Tracked files with changes (staged or not) and untracked files git does not ignore."""
        mode = "-uall" if untracked else "-uno"
        out = run_git(self.root, "status", "--porcelain=v1", "-z", mode).stdout
        entries = out.split("\0")
        files, i = [], 0
        while i < len(entries):
            entry = entries[i]
            i += 1
            if len(entry) < 4:
                continue
            files.append(entry[3:])
            if entry[0] in "RC":
                i += 1  # the rename's original path follows
        return sorted(set(files))

    def require_clean(self) -> None:
        files = self.dirty_files()
        if files:
            raise UsageError(
                f"working tree has uncommitted changes ({len(files)} files): commit or stash them, "
                "or pass --include-uncommitted"
            )

    def snapshot_uncommitted(self, message: str) -> str:
        """A commit of the working tree on top of HEAD, built in a temporary index; no ref moves.

        The index starts from HEAD's tree, not a copy of the user's index: a copied index carries
        stat data that can hide a same-size edit made within the same second (racy git).
        """
        with tempfile.TemporaryDirectory(prefix="snapshot-", dir=self.state_dir) as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index"), **IDENTITY}
            self.git("read-tree", "HEAD", env=env)
            self.git("add", "-u", "--", ".", *_JUNK, env=env)  # tracked files: never a .venv
            tree = self.git("write-tree", env=env)
        return self.git(*_NO_SIGN, "commit-tree", tree, "-p", "HEAD", "-m", message, env=IDENTITY)

    def fingerprint(self) -> dict:
        """Everything of the user's checkout we promise not to change, for before/after checks."""
        index = Path(self.git("rev-parse", "--path-format=absolute", "--git-path", "index"))
        symref = run_git(self.root, "symbolic-ref", "-q", "HEAD", check=False).stdout.strip()
        listed = self.git("ls-files", "-z", "--cached", "--others", "--exclude-standard")
        files = sorted(set(filter(None, listed.split("\0"))))
        return {
            "head": self.head,
            "symbolic_ref": symref or None,
            "index_sha256": _sha256(index),
            "status": run_git(self.root, "status", "--porcelain=v1", "-uall").stdout,
            "files": {f: _sha256(self.root / f) for f in files},
        }

    # --- worktrees and commits ----------------------------------------------------------------

    @property
    def worktrees_dir(self) -> Path:
        return self.state_dir / "worktrees"

    @contextmanager
    def worktree(self, branch: str, base: str) -> Iterator[Path]:
        """A fresh worktree on a new branch `branch` at `base`; removed on exit, the branch stays."""
        path = self.worktrees_dir / _sanitise(branch)
        if path.exists():
            self._remove_worktree(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._check_ref_free(branch)
        with _WORKTREE_LOCK:
            self.git("worktree", "add", "-q", "-b", branch, str(path), base)
        try:
            self._init_submodules(path)
            yield path
        finally:
            self._remove_worktree(path)

    @contextmanager
    def scratch_worktree(self, base: str) -> Iterator[Path]:
        """A detached worktree at `base` (no branch), for a run that must never touch the
        user's checkout (`triage`); removed on exit."""
        path = self.worktrees_dir / f"scratch-{os.getpid()}-{threading.get_ident() % 10_000}"
        if path.exists():
            self._remove_worktree(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with _WORKTREE_LOCK:
            self.git("worktree", "add", "-q", "--detach", str(path), base)
        try:
            self._init_submodules(path)
            yield path
        finally:
            self._remove_worktree(path)

    def _init_submodules(self, worktree: Path) -> None:
        """Check out the submodules the checkout has, from the checkout's own clones (no network):
        without them a worktree's tests fail for nothing."""
        if not (worktree / ".gitmodules").is_file():
            return
        listed = run_git(
            worktree,
            "config",
            "-f",
            ".gitmodules",
            "--get-regexp",
            r"^submodule\..*\.path$",
            check=False,
        ).stdout
        for line in listed.splitlines():
            key, _, sub = line.partition(" ")
            name = key.removeprefix("submodule.").removesuffix(".path")
            local = self.root / sub
            url = str(local) if (local / ".git").exists() else None
            args = ["-c", "protocol.file.allow=always"]
            if url:
                args += ["-c", f"submodule.{name}.url={url}"]
            run_git(
                worktree,
                *args,
                "submodule",
                "update",
                "--init",
                "--recursive",
                "--",
                sub,
                check=False,
            )

    def _remove_worktree(self, path: Path) -> None:
        with _WORKTREE_LOCK:
            run_git(self.root, "worktree", "remove", "--force", "--force", str(path), check=False)
            if path.exists():
                shutil.rmtree(path)
            run_git(self.root, "worktree", "prune", check=False)

    def commit_all(
        self, worktree: Path, message: str, files: list[str] | None = None
    ) -> str | None:
        """Commit the patch: exactly `files` (what the agent changed through its tools) when
        known, else every change but test by-products; None when nothing changed.

        A file over `MAX_FILE_BYTES` is left out (and said so in the message): a patch carries
        the fix, not a 30 MB artefact. Secret values never reach the message."""
        if files is None:
            self.git("add", "-A", "--", ".", *_JUNK, cwd=worktree)
        elif files:
            tracked = set(self.git("ls-files", "-z", "--", *files, cwd=worktree).split("\0"))
            present = [f for f in files if f in tracked or (worktree / f).exists()]
            if present:
                self.git("add", "-A", "--", *present, cwd=worktree)
        staged = self.git("diff", "--cached", "--name-only", "--no-renames", "-z", cwd=worktree)
        big = [
            f
            for f in filter(None, staged.split("\0"))
            if (worktree / f).is_file() and (worktree / f).stat().st_size > MAX_FILE_BYTES
        ]
        if big:
            self.git("reset", "-q", "--", *big, cwd=worktree)
            message += f"\n\nLeft out (over {MAX_FILE_BYTES // 2**20} MiB): {', '.join(big)}\n"
        if run_git(worktree, "diff", "--cached", "--quiet", check=False).returncode == 0:
            return None
        self.git(
            *_NO_SIGN,
            "commit",
            "-q",
            "--no-verify",
            "-m",
            scrub(message),
            cwd=worktree,
            env=IDENTITY,
        )
        return self.rev("HEAD", cwd=worktree)

    @contextmanager
    def preserved(self, worktree: Path) -> Iterator[None]:
        """The worktree comes back as it was before the block: what a test run did to it (a
        `git commit`, a branch switch, files written or deleted) is undone, the agent's own
        uncommitted edits kept. Runs outside the sandbox, where tests could reach git."""
        branch = run_git(worktree, "symbolic-ref", "-q", "HEAD", check=False).stdout.strip()
        head = self.rev("HEAD", cwd=worktree)
        tree = self._worktree_tree(worktree)
        try:
            yield
        finally:
            if branch:
                self.git(
                    "checkout",
                    "-q",
                    "-f",
                    "-B",
                    branch.removeprefix("refs/heads/"),
                    head,
                    cwd=worktree,
                )
            self.git("reset", "-q", "--hard", head, cwd=worktree)
            self.git("clean", "-q", "-f", "-d", cwd=worktree)
            self.git("read-tree", tree, cwd=worktree)
            self.git("checkout-index", "-q", "-a", "-f", cwd=worktree)
            gone = self.git("diff", "--name-only", "-z", "--diff-filter=D", head, tree)
            for path in filter(None, gone.split("\0")):
                (worktree / path).unlink(missing_ok=True)
            self.git("reset", "-q", cwd=worktree)  # the index back at HEAD, the edits unstaged

    def _worktree_tree(self, worktree: Path) -> str:
        """The tree of the worktree as it is (untracked files too), built in a temporary index."""
        with tempfile.TemporaryDirectory(prefix="tree-", dir=self.state_dir) as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            self.git("read-tree", "HEAD", cwd=worktree, env=env)
            self.git("add", "-A", "--", ".", *_JUNK, cwd=worktree, env=env)
            return self.git("write-tree", cwd=worktree, env=env)

    @contextmanager
    def files_from(self, worktree: Path, rev: str, paths: list[str]) -> Iterator[None]:
        """Temporarily put `paths` in the worktree as they are at `rev` (absent there: removed).

        The worktree is reset to its HEAD afterwards, whatever happens.
        """
        try:
            for path in paths:
                if self.file_at(rev, path) is None:
                    (worktree / path).unlink(missing_ok=True)
                else:
                    self.git("checkout", rev, "--", path, cwd=worktree)
            yield
        finally:
            self.git("reset", "-q", "--hard", "HEAD", cwd=worktree)

    # --- reading commits ----------------------------------------------------------------------

    def changed_files(self, base: str, rev: str) -> list[str]:
        out = self.git("diff", "--no-renames", "--name-only", "-z", base, rev)
        return [f for f in out.split("\0") if f]

    def diff(self, base: str, rev: str) -> str:
        return self.git("diff", "--no-color", "--no-ext-diff", base, rev)

    def file_at(self, rev: str, path: str) -> str | None:
        """The text of `path` at `rev`, or None when it does not exist there."""
        proc = run_git(self.root, "show", f"{rev}:{path}", check=False)
        return proc.stdout if proc.returncode == 0 else None

    # --- branches and merges ------------------------------------------------------------------

    def create_branch(self, name: str, at: str) -> None:
        self._check_ref_free(name)
        self.git("branch", name, at)

    def _check_ref_free(self, branch: str) -> None:
        """A branch named like one of our name's directories (`orchestrate`) makes git refuse
        every `orchestrate/...` branch: say which and how to fix it, in one line."""
        parts = branch.split("/")
        for i in range(1, len(parts)):
            prefix = "/".join(parts[:i])
            ref = f"refs/heads/{prefix}"
            if run_git(self.root, "show-ref", "--verify", "-q", ref, check=False).returncode == 0:
                raise OrchestrateError(
                    f"your branch {prefix!r} blocks orchestrate's branches ({branch}): rename it "
                    f"(`git branch -m {prefix} {prefix}-old`) and run again"
                )

    def merge(self, worktree: Path, branch: str, message: str) -> bool:
        """Merge `branch` into the worktree's branch (--no-ff); a conflict is aborted -> False."""
        proc = run_git(
            worktree,
            *_NO_SIGN,
            "merge",
            "--no-ff",
            "--no-edit",
            "--no-verify",
            "-m",
            message,
            branch,
            env=IDENTITY,
            check=False,
        )
        if proc.returncode == 0:
            return True
        merge_head = self.git(
            "rev-parse", "--path-format=absolute", "--git-path", "MERGE_HEAD", cwd=worktree
        )
        if not Path(merge_head).exists():
            detail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
            raise OrchestrateError(
                f"git merge of {branch} failed: {detail[-1] if detail else proc.returncode}"
            )
        if run_git(worktree, "merge", "--abort", check=False).returncode != 0:
            self.git("reset", "-q", "--merge", cwd=worktree)
        return False

    def branches(self, prefix: str) -> list[str]:
        out = self.git("for-each-ref", "--format=%(refname:short)", "refs/heads/")
        return [b for b in out.splitlines() if b.startswith(prefix)]

    def drop_branch(self, name: str) -> None:
        """Delete exactly the branch `name` if it exists (one of ours, being made again)."""
        if name in self.branches(name):
            self.git("branch", "-q", "-D", name)

    def clean(
        self,
        branches: bool = False,
        *,
        sessions: Sequence[str] | None = None,
        dry_run: bool = False,
    ) -> list[str]:
        """Remove what an interrupted run left: our worktrees, their stale locks, our branches.

        With `sessions`, only those sessions' worktrees and `orchestrate/<session>/` branches;
        `dry_run` lists what would go and removes nothing.
        """
        removed = []
        names = [f"orchestrate-{_sanitise(s)}-" for s in sessions] if sessions is not None else None
        for path in self._our_worktrees():
            if names is not None and not path.name.startswith(tuple(names)):
                continue
            admin = self._admin_dir(path)
            lock = admin / "index.lock" if admin else None
            if lock and lock.exists():
                if not dry_run:
                    lock.unlink()
                removed.append(f"lock {lock}")
            if not dry_run:
                self._remove_worktree(path)
            removed.append(f"worktree {path}")
        if not dry_run:
            run_git(self.root, "worktree", "prune", check=False)
        if branches:
            prefixes = [f"orchestrate/{s}/" for s in sessions] if sessions is not None else None
            for branch in self.branches("orchestrate/"):
                if branch == self.current_branch:
                    continue  # never the one the user has checked out
                if prefixes is not None and not branch.startswith(tuple(prefixes)):
                    continue
                if not dry_run:
                    self.git("branch", "-q", "-D", branch)
                removed.append(f"branch {branch}")
        return removed

    def _our_worktrees(self) -> list[Path]:
        """Worktrees git knows under our directory, plus directories left there without it."""
        root = self.worktrees_dir.resolve()
        out = self.git("worktree", "list", "--porcelain")
        listed = [
            Path(line[len("worktree ") :])
            for line in out.splitlines()
            if line.startswith("worktree ")
        ]
        paths = {p.resolve() for p in listed if p.resolve().is_relative_to(root)}
        if root.is_dir():
            paths |= {p.resolve() for p in root.iterdir()}
        return sorted(paths)

    @staticmethod
    def _admin_dir(worktree: Path) -> Path | None:
        """The worktree's private git dir (`<common>/worktrees/<name>`), from its `.git` file."""
        dot_git = worktree / ".git"
        if not dot_git.is_file():
            return None
        text = dot_git.read_text(encoding="utf-8", errors="replace").strip()
        if not text.startswith("gitdir:"):
            return None
        return (worktree / text[len("gitdir:") :].strip()).resolve()
