"""The model's environment: file tools confined to one worktree, and their Messages API schemas.

The model is untrusted. Every path it names is resolved inside the worktree; `..`, absolute paths,
symlinks that lead out and git's own files are refused with a `ToolError` the model can read and
act on. There is no shell.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Any

from orchestrator.agents.codemod import OutsideWorktree, confine, walk

_REFUSALS = {  # OutsideWorktree reasons, explained to the model
    "absolute": "absolute paths are refused; use a path relative to the repository root",
    "outside": "outside the repository; only files inside it can be used",
}


class ToolError(Exception):
    """A refused or failed tool call; the message goes back to the model as an error result."""


class Worktree:
    """File tools rooted at one directory; `changed` records the files the model wrote."""

    def __init__(self, root: Path, *, max_chars: int = 40_000, max_results: int = 200) -> None:
        self.root = Path(root).resolve()
        self.max_chars = max_chars
        self.max_results = max_results
        self.changed: set[str] = set()

    # --- paths ---------------------------------------------------------------------------------

    def resolve(self, path: str) -> Path:
        """The real location of `path`, refused unless it stays inside the worktree."""
        if not isinstance(path, str) or not path.strip():
            raise ToolError(
                "a path is required (relative to the repository root, e.g. 'src/app.py')"
            )
        try:
            return confine(self.root, path)
        except OutsideWorktree as exc:
            message = f"{path}: {_REFUSALS[exc.reason]}" if exc.reason in _REFUSALS else str(exc)
            raise ToolError(message) from None

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix() or "."

    def walk(self, top: Path) -> list[Path]:
        """Files under `top` in a stable order, without git internals, caches or symlinked dirs."""
        if top.is_file():
            return [top]
        if not top.is_dir():
            raise ToolError(f"{self.rel(top)}: no such directory")
        return [p for p in walk(top) if p.name != ".git" and p.resolve().is_relative_to(self.root)]

    def text(self, path: Path) -> str:
        if path.is_dir():
            raise ToolError(f"{self.rel(path)}: is a directory; use list_files")
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ToolError(f"{self.rel(path)}: no such file") from None
        except UnicodeDecodeError:
            raise ToolError(f"{self.rel(path)}: not a UTF-8 text file") from None

    # --- tools ---------------------------------------------------------------------------------

    def list_files(self, path: str = ".", pattern: str = "*") -> str:
        files = [self.rel(p) for p in self.walk(self.resolve(path))]
        files = [
            f
            for f in files
            if fnmatch.fnmatch(f, pattern) or fnmatch.fnmatch(Path(f).name, pattern)
        ]
        shown = files[: self.max_results]
        more = len(files) - len(shown)
        tail = [f"... {more} more files left off; narrow path or pattern"] if more else []
        return "\n".join(shown + tail) or f"no files match {pattern!r} under {path}"

    def read_file(
        self, path: str, start_line: int | None = None, end_line: int | None = None
    ) -> str:
        target = self.resolve(path)
        lines = self.text(target).splitlines()
        start = max(_line(start_line, 1), 1)
        end = min(_line(end_line, len(lines)), len(lines))
        if lines and start > len(lines):
            raise ToolError(f"{path}: has {len(lines)} lines; start_line {start} is past the end")
        if lines and end < start:
            raise ToolError(f"{path}: end_line {end} is before start_line {start}")
        out, size = [], 0
        for number in range(start, end + 1):
            row = f"{number:>6}\t{lines[number - 1]}"
            size += len(row) + 1
            if size > self.max_chars:
                out.append(
                    f"[truncated at line {number - 1} of {len(lines)}; read on with start_line={number}]"
                )
                break
            out.append(row)
        return "\n".join(out) if out else f"{path}: empty file"

    def search(self, pattern: str, path: str = ".", regex: bool = False) -> str:
        try:
            matcher = re.compile(pattern if regex else re.escape(pattern))
        except re.error as exc:
            raise ToolError(f"invalid regular expression {pattern!r}: {exc}") from None
        hits: list[str] = []
        for file in self.walk(self.resolve(path)):
            try:
                text = file.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            for number, line in enumerate(text.splitlines(), 1):
                if matcher.search(line):
                    hits.append(f"{self.rel(file)}:{number}: {line.strip()[:200]}")
        shown = hits[: self.max_results]
        more = len(hits) - len(shown)
        tail = [f"... {more} more matches left off; narrow the pattern or path"] if more else []
        return "\n".join(shown + tail) or f"no matches for {pattern!r} under {path}"

    def replace_in_file(self, path: str, old: str, new: str) -> str:
        target = self.resolve(path)
        text = self.text(target)
        if not old:
            raise ToolError("old must be the exact text to replace, not empty")
        count = text.count(old)
        if count == 0:
            raise ToolError(
                f"{path}: old text not found; read the file and copy the exact text, indentation included"
            )
        if count > 1:
            raise ToolError(
                f"{path}: old text occurs {count} times; include more surrounding lines so it occurs once"
            )
        target.write_text(text.replace(old, new), encoding="utf-8")
        self.changed.add(self.rel(target))
        return f"{path}: replaced 1 occurrence"

    def create_file(self, path: str, content: str, overwrite: bool = False) -> str:
        target = self.resolve(path)
        if target.is_dir():
            raise ToolError(f"{path}: is a directory")
        if target.exists() and not overwrite:
            raise ToolError(
                f"{path}: already exists; use replace_in_file, or overwrite=true to replace it whole"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
        self.changed.add(self.rel(target))
        return f"{path}: wrote {len(content.splitlines())} lines"

    def call(self, name: str, args: dict[str, Any]) -> str:
        """Run the tool `name` with the model's arguments, checked against its schema."""
        schema = next((s for s in TOOL_SCHEMAS if s["name"] == name), None)
        if schema is None:
            raise ToolError(f"unknown tool {name!r}")
        props = schema["input_schema"]["properties"]
        missing = [k for k in schema["input_schema"]["required"] if k not in args]
        unknown = [k for k in args if k not in props]
        if missing or unknown:
            raise ToolError(
                f"{name}: missing arguments {missing}, unknown arguments {unknown}; expected {list(props)}"
            )
        return getattr(self, name)(**args)


def _line(value: Any, default: int) -> int:
    if value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ToolError(f"line numbers must be integers, not {value!r}") from None


def _schema(name: str, description: str, required: list[str], **props: dict) -> dict:
    return {
        "name": name,
        "description": description,
        "input_schema": {"type": "object", "properties": props, "required": required},
    }


_PATH = {"type": "string", "description": "relative to the repository root"}

TOOL_SCHEMAS: list[dict] = [
    _schema(
        "list_files",
        "List files under a directory of the repository (git internals and caches left out).",
        [],
        path={**_PATH, "description": "directory relative to the repository root; default '.'"},
        pattern={
            "type": "string",
            "description": "glob on the relative path or file name, e.g. '*.py'",
        },
    ),
    _schema(
        "read_file",
        "Read a text file with numbered lines; give start_line/end_line for a part of a long file.",
        ["path"],
        path=_PATH,
        start_line={"type": "integer", "minimum": 1},
        end_line={"type": "integer", "minimum": 1},
    ),
    _schema(
        "search",
        "Find lines containing a string (or a Python regex with regex=true); returns path:line: text.",
        ["pattern"],
        pattern={"type": "string"},
        path={**_PATH, "description": "file or directory to search; default '.'"},
        regex={"type": "boolean", "description": "treat pattern as a regular expression"},
    ),
    _schema(
        "replace_in_file",
        "Replace an exact snippet of a file with new text. The snippet must occur exactly once: "
        "copy it from read_file output without the line numbers, indentation included.",
        ["path", "old", "new"],
        path=_PATH,
        old={"type": "string", "description": "the exact text to replace"},
        new={"type": "string", "description": "the text to put in its place"},
    ),
    _schema(
        "create_file",
        "Create a new file with the given content (set overwrite=true to replace an existing file).",
        ["path", "content"],
        path=_PATH,
        content={"type": "string"},
        overwrite={"type": "boolean"},
    ),
]
