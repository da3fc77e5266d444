"""The worktree tools: confinement first, then the semantics the model relies on."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.agents.tools import TOOL_SCHEMAS, ToolError, Worktree


@pytest.fixture
def tree(tmp_path: Path) -> Worktree:
    root = tmp_path / "wt"
    (root / "pkg").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[core]\n")
    (root / "pkg" / "app.py").write_text(
        "def add(a, b):\n    return a - b\n\n\ndef sub(a, b):\n    return a - b\n"
    )
    (root / "README.md").write_text("hello\nworld\n")
    (tmp_path / "secret.txt").write_text("TOP SECRET\n")
    (root / "out").symlink_to(tmp_path / "secret.txt")
    (root / "outdir").symlink_to(tmp_path, target_is_directory=True)
    (root / "inside").symlink_to(root / "README.md")
    return Worktree(root)


@pytest.mark.parametrize(
    "call",
    [
        lambda t: t.read_file("../secret.txt"),
        lambda t: t.read_file("pkg/../../secret.txt"),
        lambda t: t.read_file("/etc/passwd"),
        lambda t: t.read_file(str(t.root / "README.md")),
        lambda t: t.read_file("~/.bashrc"),
        lambda t: t.read_file("out"),
        lambda t: t.read_file("outdir/secret.txt"),
        lambda t: t.read_file(".git/config"),
        lambda t: t.list_files(".."),
        lambda t: t.list_files(".git"),
        lambda t: t.search("SECRET", path="outdir"),
        lambda t: t.create_file("../pwned.txt", "x"),
        lambda t: t.create_file("outdir/pwned.txt", "x"),
        lambda t: t.create_file(".git/hooks/pre-commit", "x"),
        lambda t: t.replace_in_file("out", "TOP", "NOT"),
        lambda t: t.replace_in_file(".git/config", "[core]", "[x]"),
    ],
)
def test_escapes_are_refused(tree: Worktree, call) -> None:
    outside = tree.root.parent
    with pytest.raises(ToolError):
        call(tree)
    assert (outside / "secret.txt").read_text() == "TOP SECRET\n"
    assert not (outside / "pwned.txt").exists()
    assert (tree.root / ".git" / "config").read_text() == "[core]\n"
    assert not (tree.root / ".git" / "hooks").exists()
    assert tree.changed == set()


def test_refusals_say_why(tree: Worktree) -> None:
    with pytest.raises(ToolError, match="outside the repository"):
        tree.read_file("../secret.txt")
    with pytest.raises(ToolError, match="absolute paths are refused"):
        tree.read_file("/etc/passwd")
    with pytest.raises(ToolError, match="git's internal files"):
        tree.read_file(".git/config")


def test_symlink_inside_is_followed(tree: Worktree) -> None:
    assert "hello" in tree.read_file("inside")


def test_listing_and_search_never_show_outside_or_git(tree: Worktree) -> None:
    listing = tree.list_files().splitlines()
    assert listing == ["README.md", "inside", "pkg/app.py"]
    assert tree.list_files(pattern="*.py") == "pkg/app.py"
    assert tree.search("SECRET").startswith("no matches")
    assert tree.search("core").startswith("no matches")


def test_read_numbers_lines_and_reads_ranges(tree: Worktree) -> None:
    assert tree.read_file("pkg/app.py", start_line=2, end_line=2) == "     2\t    return a - b"
    whole = tree.read_file("pkg/app.py").splitlines()
    assert len(whole) == 6 and whole[0] == "     1\tdef add(a, b):"
    with pytest.raises(ToolError, match="past the end"):
        tree.read_file("pkg/app.py", start_line=50)
    with pytest.raises(ToolError, match="no such file"):
        tree.read_file("pkg/missing.py")
    with pytest.raises(ToolError, match="integers"):
        tree.read_file("pkg/app.py", start_line="two")


def test_read_is_capped(tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_text("x" * 50 + "\n" * 1 + ("y" * 50 + "\n") * 100)
    out = Worktree(tmp_path, max_chars=500).read_file("big.txt")
    assert len(out) < 700
    assert "read on with start_line=" in out


def test_search_fixed_and_regex(tree: Worktree) -> None:
    assert tree.search("a - b").splitlines() == [
        "pkg/app.py:2: return a - b",
        "pkg/app.py:6: return a - b",
    ]
    assert tree.search("a.b").startswith("no matches")  # fixed string: the dot is literal
    assert tree.search(r"def \w+\(a", regex=True).splitlines() == [
        "pkg/app.py:1: def add(a, b):",
        "pkg/app.py:5: def sub(a, b):",
    ]
    with pytest.raises(ToolError, match="invalid regular expression"):
        tree.search("(", regex=True)


def test_search_is_capped(tmp_path: Path) -> None:
    (tmp_path / "many.txt").write_text("hit\n" * 30)
    out = Worktree(tmp_path, max_results=5).search("hit").splitlines()
    assert len(out) == 6 and out[-1].startswith("... 25 more matches")


def test_replace_needs_exactly_one_occurrence(tree: Worktree) -> None:
    with pytest.raises(ToolError, match="occurs 2 times"):
        tree.replace_in_file("pkg/app.py", "return a - b", "return a + b")
    with pytest.raises(ToolError, match="not found"):
        tree.replace_in_file("pkg/app.py", "return a * b", "return a + b")
    assert tree.changed == set()
    tree.replace_in_file(
        "pkg/app.py", "def add(a, b):\n    return a - b", "def add(a, b):\n    return a + b"
    )
    text = (tree.root / "pkg" / "app.py").read_text()
    assert text.count("return a + b") == 1 and text.count("return a - b") == 1
    assert tree.changed == {"pkg/app.py"}


def test_create_refuses_overwrite_unless_asked(tree: Worktree) -> None:
    tree.create_file("pkg/new/mod.py", "X = 1\n")
    assert (tree.root / "pkg" / "new" / "mod.py").read_text() == "X = 1\n"
    with pytest.raises(ToolError, match="already exists"):
        tree.create_file("README.md", "gone")
    assert (tree.root / "README.md").read_text() == "hello\nworld\n"
    tree.create_file("README.md", "new\n", overwrite=True)
    assert (tree.root / "README.md").read_text() == "new\n"
    assert tree.changed == {"pkg/new/mod.py", "README.md"}


def test_call_checks_arguments_against_the_schemas(tree: Worktree) -> None:
    assert {s["name"] for s in TOOL_SCHEMAS} == {
        "list_files",
        "read_file",
        "search",
        "git_log",
        "list_packages",
        "package_files",
        "read_package_file",
        "replace_in_file",
        "create_file",
    }
    assert "return a - b" in tree.call("read_file", {"path": "pkg/app.py"})
    with pytest.raises(ToolError, match="missing arguments \\['path'\\]"):
        tree.call("read_file", {})
    with pytest.raises(ToolError, match="unknown arguments \\['mode'\\]"):
        tree.call("read_file", {"path": "pkg/app.py", "mode": "rb"})
    with pytest.raises(ToolError, match="unknown tool"):
        tree.call("run_shell", {"cmd": "ls"})
