"""The model's environment: tools confined to one worktree, and their Messages API schemas.

The model is untrusted. Every path it names is resolved inside the worktree; `..`, absolute paths,
symlinks that lead out and git's own files are refused with a `ToolError` the model can read and
act on. The installed packages and the git history are read-only views. Every tool has a time
limit: a regular expression is matched in a child process that is killed when it runs too long.
Commands (`run`, `run_tests`) are not run here: the lane hands the loop callables that run them
in the sandbox (orchestrator/run/lanes.py).
"""

from __future__ import annotations

import ast
import fnmatch
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from orchestrator.agents.codemod import OutsideWorktree, confine, walk

_REFUSALS = {  # OutsideWorktree reasons, explained to the model
    "absolute": "absolute paths are refused; use a path relative to the repository root",
    "outside": "outside the repository; only files inside it can be used",
}
SEARCH_TIMEOUT_S = 10.0
_BINARY = (".pyc", ".so", ".pyd")
GIT_TIMEOUT_S = 30.0

# A regular expression runs in a child: `re` cannot be interrupted, `(a+)+$` never returns.
_SEARCH_CHILD = r"""
import json, re, sys
job = json.load(sys.stdin)
matcher = re.compile(job["pattern"])
hits = []
for name in job["files"]:
    try:
        text = open(name, encoding="utf-8").read()
    except (UnicodeDecodeError, OSError):
        continue
    for number, line in enumerate(text.splitlines(), 1):
        if matcher.search(line):
            hits.append([name, number, line.strip()[:200]])
            if len(hits) > job["limit"]:
                json.dump(hits, sys.stdout)
                sys.exit(0)
json.dump(hits, sys.stdout)
"""


class ToolError(Exception):
    """A refused or failed tool call; the message goes back to the model as an error result."""


class Worktree:
    """Tools rooted at one directory; `changed` records the files the model wrote.

    `site_dirs` are the target interpreter's site-packages: the installed distributions are
    listed and read from there (their files as their RECORD names them), never written.
    """

    def __init__(
        self,
        root: Path,
        *,
        max_chars: int = 40_000,
        max_results: int = 200,
        site_dirs: list[str] | tuple[str, ...] = (),
        search_timeout_s: float = SEARCH_TIMEOUT_S,
    ) -> None:
        self.root = Path(root).resolve()
        self.max_chars = max_chars
        self.max_results = max_results
        self.site_dirs = [Path(d) for d in site_dirs if Path(d).is_dir()]
        self.search_timeout_s = search_timeout_s
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

    def text(self, path: Path, shown: str | None = None) -> str:
        shown = shown or self.rel(path)
        if path.is_dir():
            raise ToolError(f"{shown}: is a directory; use list_files")
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ToolError(f"{shown}: no such file") from None
        except UnicodeDecodeError:
            raise ToolError(f"{shown}: not a UTF-8 text file") from None

    # --- reading -------------------------------------------------------------------------------

    def list_files(self, path: str = ".", pattern: str = "*") -> str:
        files = [self.rel(p) for p in self.walk(self.resolve(path))]
        files = [
            f
            for f in files
            if fnmatch.fnmatch(f, pattern) or fnmatch.fnmatch(Path(f).name, pattern)
        ]
        return self._listing(files, "files", "narrow path or pattern") or (
            f"no files match {pattern!r} under {path}"
        )

    def read_file(
        self, path: str, start_line: int | None = None, end_line: int | None = None
    ) -> str:
        return self._numbered(path, self.text(self.resolve(path)), start_line, end_line)

    def search(self, pattern: str, path: str = ".", regex: bool = False) -> str:
        if not isinstance(pattern, str) or not pattern:
            raise ToolError("pattern must be a non-empty string")
        files = self.walk(self.resolve(path))
        if regex:
            hits = self._regex_search(pattern, files)
        else:
            hits = []
            for file in files:
                try:
                    text = file.read_text(encoding="utf-8")
                except (UnicodeDecodeError, OSError):
                    continue
                for number, line in enumerate(text.splitlines(), 1):
                    if pattern in line:
                        hits.append(f"{self.rel(file)}:{number}: {line.strip()[:200]}")
        return self._listing(hits, "matches", "narrow the pattern or path") or (
            f"no matches for {pattern!r} under {path}"
        )

    def _regex_search(self, pattern: str, files: list[Path]) -> list[str]:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ToolError(f"invalid regular expression {pattern!r}: {exc}") from None
        job = {"pattern": pattern, "files": [str(f) for f in files], "limit": self.max_results}
        try:
            proc = subprocess.run(
                [sys.executable, "-I", "-S", "-c", _SEARCH_CHILD],
                input=json.dumps(job),
                capture_output=True,
                text=True,
                timeout=self.search_timeout_s,
                env={"PATH": os.environ.get("PATH", "")},
            )
        except subprocess.TimeoutExpired:
            raise ToolError(
                f"search {pattern!r} timed out after {self.search_timeout_s:g} s: the regular "
                "expression backtracks too much (nested repetition?); simplify it or search a "
                "plain string"
            ) from None
        if proc.returncode != 0:
            raise ToolError(f"search {pattern!r} failed: {proc.stderr.strip()[-300:]}")
        return [
            f"{self.rel(Path(name))}:{number}: {line}"
            for name, number, line in json.loads(proc.stdout)
        ]

    def git_log(self, path: str = ".", max_count: int = 5) -> str:
        """`git log -p` of a path: what changed there, and why (read-only)."""
        target = self.resolve(path)
        count = max(1, min(_line(max_count, 5), 50))
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        try:
            proc = subprocess.run(
                ["git", "log", "-p", "--no-color", "--stat", f"-n{count}", "--", self.rel(target)],
                cwd=self.root,
                capture_output=True,
                text=True,
                timeout=GIT_TIMEOUT_S,
                env={**env, "GIT_PAGER": "cat", "GIT_CONFIG_NOSYSTEM": "1"},
            )
        except subprocess.TimeoutExpired:
            raise ToolError(f"git log timed out after {GIT_TIMEOUT_S:g} s") from None
        if proc.returncode != 0:
            raise ToolError(f"git log failed: {proc.stderr.strip()[-300:]}")
        out = proc.stdout
        if len(out) > self.max_chars:
            out = out[: self.max_chars] + "\n[truncated; ask for fewer commits or a narrower path]"
        return out or f"no commits touch {path}"

    # --- installed packages (read-only) --------------------------------------------------------

    def _distributions(self) -> dict[str, tuple[str, Path, Path]]:
        """Normalised name -> (name, version, dist-info dir, site dir)."""
        found: dict[str, tuple[str, Path, Path]] = {}
        for site in self.site_dirs:
            for info in sorted(site.glob("*.dist-info")):
                meta = _metadata(info / "METADATA")
                name, version = meta.get("name"), meta.get("version")
                if name and version:
                    found.setdefault(_norm(name), (f"{name} {version}", info, site))
        return found

    def _distribution(self, package: str) -> tuple[str, Path, Path]:
        if not self.site_dirs:
            raise ToolError("no installed packages are known for this repository's interpreter")
        found = self._distributions().get(_norm(str(package)))
        if found is None:
            raise ToolError(f"{package}: not installed; list_packages shows what is")
        return found

    def list_packages(self, pattern: str = "*") -> str:
        if not self.site_dirs:
            raise ToolError("no installed packages are known for this repository's interpreter")
        rows = [
            label
            for key, (label, _info, _site) in sorted(self._distributions().items())
            if fnmatch.fnmatch(key, _norm(pattern) if pattern != "*" else "*")
        ]
        return (
            self._listing(rows, "packages", "narrow the pattern")
            or f"no packages match {pattern!r}"
        )

    def _package_files(self, package: str) -> tuple[list[str], Path]:
        _label, info, site = self._distribution(package)
        record = info / "RECORD"
        try:
            rows = record.read_text(encoding="utf-8").splitlines()
        except OSError:
            raise ToolError(
                f"{package}: its RECORD is missing; its files cannot be listed"
            ) from None
        files = []
        for row in rows:
            name = row.split(",")[0]
            skipped = not name or name.startswith("..") or ".dist-info/" in name
            if not skipped and "__pycache__" not in name and not name.endswith(_BINARY):
                files.append(name)
        return files, site

    def package_files(self, package: str, pattern: str = "*") -> str:
        files, _site = self._package_files(package)
        shown = [
            f
            for f in files
            if fnmatch.fnmatch(f, pattern) or fnmatch.fnmatch(Path(f).name, pattern)
        ]
        return self._listing(shown, "files", "narrow the pattern") or f"no files match {pattern!r}"

    def read_package_file(
        self, package: str, path: str, start_line: int | None = None, end_line: int | None = None
    ) -> str:
        files, site = self._package_files(package)
        if path not in files:
            raise ToolError(f"{package}: has no file {path!r}; package_files lists its files")
        return self._numbered(path, self.text(site / path, shown=path), start_line, end_line)

    # --- writing -------------------------------------------------------------------------------

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
        self._write(target, path, text.replace(old, new))
        return f"{path}: replaced 1 occurrence"

    def create_file(self, path: str, content: str, overwrite: bool = False) -> str:
        target = self.resolve(path)
        if target.is_dir():
            raise ToolError(f"{path}: is a directory")
        if target.exists() and not overwrite:
            raise ToolError(
                f"{path}: already exists; use replace_in_file, or overwrite=true to replace it whole"
            )
        self._write(target, path, content)
        return f"{path}: wrote {len(content.splitlines())} lines"

    def _write(self, target: Path, path: str, text: str) -> None:
        """Write, unless a Python file would no longer parse: the edit is refused with the error."""
        if target.suffix in (".py", ".pyi"):
            try:
                ast.parse(text, filename=path)
            except SyntaxError as exc:
                where = f"line {exc.lineno}" + (f", column {exc.offset}" if exc.offset else "")
                code = f": {exc.text.strip()}" if exc.text and exc.text.strip() else ""
                raise ToolError(
                    f"{path}: edit refused, the file would not parse: SyntaxError: {exc.msg} "
                    f"({where}){code}. The file is unchanged."
                ) from None
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        self.changed.add(self.rel(target))

    # --- plumbing ------------------------------------------------------------------------------

    def _listing(self, rows: list[str], what: str, hint: str) -> str:
        shown = rows[: self.max_results]
        more = len(rows) - len(shown)
        return "\n".join(shown + ([f"... {more} more {what} left off; {hint}"] if more else []))

    def _numbered(self, path: str, text: str, start_line: int | None, end_line: int | None) -> str:
        lines = text.splitlines()
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

    def call(self, name: str, args: dict[str, Any]) -> str:
        """Run the tool `name` with the model's arguments, checked against its schema."""
        schema = next((s for s in TOOL_SCHEMAS if s["name"] == name), None)
        if schema is None:
            raise ToolError(f"unknown tool {name!r}")
        check_args(schema, args)
        return getattr(self, name)(**args)


def check_args(schema: dict, args: dict[str, Any]) -> None:
    props = schema["input_schema"]["properties"]
    missing = [k for k in schema["input_schema"]["required"] if k not in args]
    unknown = [k for k in args if k not in props]
    if missing or unknown:
        raise ToolError(
            f"{schema['name']}: missing arguments {missing}, unknown arguments {unknown}; expected {list(props)}"
        )


def _metadata(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                if key.lower() in ("name", "version"):
                    out.setdefault(key.lower(), value.strip())
    except OSError:
        pass
    return out


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _line(value: Any, default: int) -> int:
    if value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ToolError(f"line numbers must be integers, not {value!r}") from None


def schema(name: str, description: str, required: list[str], **props: dict) -> dict:
    return {
        "name": name,
        "description": description,
        "input_schema": {"type": "object", "properties": props, "required": required},
    }


_PATH = {"type": "string", "description": "relative to the repository root"}
_LINES = {
    "start_line": {"type": "integer", "minimum": 1},
    "end_line": {"type": "integer", "minimum": 1},
}

TOOL_SCHEMAS: list[dict] = [
    schema(
        "list_files",
        "List files under a directory of the repository (git internals and caches left out).",
        [],
        path={**_PATH, "description": "directory relative to the repository root; default '.'"},
        pattern={
            "type": "string",
            "description": "glob on the relative path or file name, e.g. '*.py'",
        },
    ),
    schema(
        "read_file",
        "Read a text file with numbered lines; give start_line/end_line for a part of a long file.",
        ["path"],
        path=_PATH,
        **_LINES,
    ),
    schema(
        "search",
        "Find lines containing a string (or a Python regex with regex=true); returns path:line: text.",
        ["pattern"],
        pattern={"type": "string"},
        path={**_PATH, "description": "file or directory to search; default '.'"},
        regex={"type": "boolean", "description": "treat pattern as a regular expression"},
    ),
    schema(
        "git_log",
        "The git history of a file or directory with patches (git log -p): what changed and why.",
        [],
        path={**_PATH, "description": "file or directory; default '.'"},
        max_count={"type": "integer", "minimum": 1, "maximum": 50, "description": "default 5"},
    ),
    schema(
        "list_packages",
        "The packages installed in the repository's interpreter, with their versions.",
        [],
        pattern={"type": "string", "description": "glob on the package name, e.g. 'sqlalchemy*'"},
    ),
    schema(
        "package_files",
        "The files of an installed package (paths inside site-packages).",
        ["package"],
        package={"type": "string"},
        pattern={"type": "string", "description": "glob, e.g. '*.py' or 'sqlalchemy/orm/*'"},
    ),
    schema(
        "read_package_file",
        "Read a file of an installed package (as package_files names it), with numbered lines: "
        "the installed version's real API.",
        ["package", "path"],
        package={"type": "string"},
        path={"type": "string", "description": "as package_files lists it"},
        **_LINES,
    ),
    schema(
        "replace_in_file",
        "Replace an exact snippet of a file with new text. The snippet must occur exactly once: "
        "copy it from read_file output without the line numbers, indentation included. "
        "A Python file that would not parse afterwards is refused with the SyntaxError.",
        ["path", "old", "new"],
        path=_PATH,
        old={"type": "string", "description": "the exact text to replace"},
        new={"type": "string", "description": "the text to put in its place"},
    ),
    schema(
        "create_file",
        "Create a new file with the given content (set overwrite=true to replace an existing file).",
        ["path", "content"],
        path=_PATH,
        content={"type": "string"},
        overwrite={"type": "boolean"},
    ),
]
