"""pytest plugin loaded by orchestrate with `-p orchestrate_stream` (stdlib only: the target installs nothing).

It writes one JSON line per event to the file named by ORCHESTRATE_STREAM, flushed at once, so the
orchestrator sees every result while the suite runs and keeps them if the process hangs or dies.

Other switches, all environment variables:
  ORCHESTRATE_SELECT   a file of node ids: run exactly these, in this order (a file's path: every
                       test it holds, in its place)
  ORCHESTRATE_ALL      "1": report everything collected before the selection (one run instead of
                       a collection and a run)
  ORCHESTRATE_FILES    a file of paths: collect only these files in the directories pytest is
                       given (and the directories on the way to them)
  ORCHESTRATE_SHUFFLE  a seed: run the suite in a seeded random order
  ORCHESTRATE_ORDER    a file of node ids: run those first, in this order (the rest after)
  ORCHESTRATE_LEAKS    "1": record the state each test changed and did not restore
  ORCHESTRATE_ENV      "1": report the interpreter's installed distributions first
"""

from __future__ import annotations

import json
import operator
import os
import random
import re
import sys
import sysconfig

import pytest

_MAX_TEXT = 4000
_stream: int | None = None  # a file descriptor opened for appending: one write per event
_role = "solo"  # under pytest-xdist: "controller" (the session's end) or "worker" (the tests)
_CONTROLLER_EVENTS = ("env", "finish")
_reports: dict[str, dict] = {}
_excinfo: dict[str, tuple] = {}
_leak_tracker = None
_rootdir = ""
_collect_only: tuple[set[str], set[str]] | None = None  # ORCHESTRATE_FILES: (files, directories)


def _write(event: dict) -> None:
    """One line, one `write` on an O_APPEND descriptor: xdist workers' lines never interleave."""
    if _stream is None or (
        _role != "solo" and (event["e"] in _CONTROLLER_EVENTS) != (_role == "controller")
    ):
        return
    os.write(_stream, (json.dumps(_printable(event), default=str) + "\n").encode("utf-8"))


def _printable(value):
    """Valid UTF-8 everywhere: a file name that is not (`test_caf\\xe9.py`) is written with its
    bytes escaped, the one spelling of that node id on our side."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        return value
    if isinstance(value, dict):
        return {k: _printable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_printable(v) for v in value]
    return value


def _trim(text: str | None, limit: int = _MAX_TEXT) -> str | None:
    if text is None or len(text) <= limit:
        return text
    half = limit // 2
    return text[:half] + "\n[...]\n" + text[-half:]


def pytest_configure(config: pytest.Config) -> None:
    global _stream, _leak_tracker, _rootdir, _role, _collect_only
    _rootdir = str(config.rootpath)
    if hasattr(config, "workerinput"):
        _role = "worker"
    elif (
        getattr(config.option, "numprocesses", None) and getattr(config.option, "dist", "") != "no"
    ):
        _role = "controller"
    path = os.environ.get("ORCHESTRATE_STREAM")
    if path:
        _stream = os.open(
            path, os.O_WRONLY | os.O_APPEND | os.O_CREAT
        )  # lives as long as the session
    if os.environ.get("ORCHESTRATE_LEAKS") == "1":
        _leak_tracker = _LeakTracker(str(config.rootpath))
    if os.environ.get("ORCHESTRATE_ENV") == "1":
        _write({"e": "env", **_environment()})
    files = os.environ.get("ORCHESTRATE_FILES")
    if files:
        with open(files, encoding="utf-8", errors="surrogateescape") as f:
            wanted = {os.path.normpath(line.rstrip("\n")) for line in f if line.strip()}
        directories = {"."}
        for path in wanted:
            while (path := os.path.dirname(path)) and path not in directories:
                directories.add(path)
        _collect_only = (wanted, directories)


def pytest_ignore_collect(collection_path, config: pytest.Config) -> bool | None:
    """Under ORCHESTRATE_FILES, skip what leads to none of the files (None: pytest decides)."""
    if _collect_only is None or collection_path.name in ("conftest.py", "__init__.py"):
        return None
    relative = os.path.relpath(collection_path, config.invocation_params.dir)
    files, directories = _collect_only
    if relative in files or relative in directories or relative.startswith(".."):
        return None
    return True


def _environment() -> dict:
    """The installed distributions' versions and the top-level modules whose distribution is
    named otherwise (`yaml` -> `PyYAML`), as the target's own interpreter sees them.

    Read from the files themselves: `dist.metadata` and `packages_distributions()` parse every
    METADATA and RECORD in full, a third of a second in a venv of a hundred packages."""
    from importlib import metadata

    packages: dict[str, str] = {}
    modules: dict[str, str] = {}
    for dist in metadata.distributions():
        name, version = _name_and_version(dist)
        if not name or name in packages:
            continue
        packages[name] = version
        canonical = re.sub(r"[-_.]+", "-", name).lower()
        for module in sorted(_top_level_modules(dist) - modules.keys()):
            named_otherwise = canonical != module.lower().replace("_", "-")
            if module.isidentifier() and not module.startswith("_") and named_otherwise:
                modules[module] = name
    return {"python": sys.version.split()[0], "packages": packages, "modules": modules}


def _name_and_version(dist) -> tuple[str, str]:
    """Name and Version from the metadata's header (the lines before the first blank one)."""
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    name = version = ""
    for line in text.splitlines():
        if not line.strip():
            break
        if line.startswith("Name:") and not name:
            name = line[5:].strip()
        elif line.startswith("Version:") and not version:
            version = line[8:].strip()
    return name, version


def _top_level_modules(dist) -> set[str]:
    """What `packages_distributions()` counts: top_level.txt, else RECORD's Python files."""
    declared = dist.read_text("top_level.txt")
    if declared is not None:
        return set(declared.split())
    names = set()
    for line in (dist.read_text("RECORD") or "").splitlines():
        path = line.split(",", 1)[0]
        if path.endswith(".py"):
            top, nested, _ = path.partition("/")
            names.add(top if nested else top[:-3])
    return names


@pytest.hookimpl(trylast=True)  # after -k, -m and --deselect: what the suite would run
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list
) -> None:
    if os.environ.get("ORCHESTRATE_ALL"):
        _write({"e": "all", "ids": [item.nodeid for item in items]})
    select = os.environ.get("ORCHESTRATE_SELECT")
    if select:
        with open(select, encoding="utf-8", errors="surrogateescape") as f:
            wanted = [line.rstrip("\n") for line in f if line.strip()]
        by_id = {_printable(item.nodeid): item for item in items}
        by_file: dict[str, list] = {}
        for nodeid, item in by_id.items():
            by_file.setdefault(nodeid.split("::", 1)[0], []).append(item)
        picked: dict[int, pytest.Item] = {}  # in the order wanted, each test once
        for n in wanted:
            for item in [by_id[n]] if n in by_id else by_file.get(n, []):
                picked.setdefault(id(item), item)
        chosen = list(picked.values())
        keep = {id(item) for item in chosen}
        dropped = [item for item in items if id(item) not in keep]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
        items[:] = chosen
        missing = [n for n in wanted if n not in by_id and n not in by_file]
        if missing:
            _write({"e": "missing", "ids": missing})
    seed = os.environ.get("ORCHESTRATE_SHUFFLE")
    if seed and not select:
        random.Random(int(seed)).shuffle(items)
    order = os.environ.get("ORCHESTRATE_ORDER")
    if order and not select:
        with open(order, encoding="utf-8", errors="surrogateescape") as f:
            rank = {line.strip(): i for i, line in enumerate(f) if line.strip()}
        items.sort(
            key=lambda item: rank.get(_printable(item.nodeid), len(rank))
        )  # stable: the rest keep theirs


def pytest_collection_finish(session: pytest.Session) -> None:
    if _leak_tracker is not None:
        _leak_tracker.test_modules = {
            module.__name__
            for item in session.items
            if (module := getattr(item, "module", None)) is not None
        }
    _write({"e": "collected", "ids": [item.nodeid for item in session.items]})


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed:
        text = report.longreprtext
        exc_type = _exc_name(text)
        message = _first_line(text)
        if exc_type and message.startswith(exc_type + ":"):
            message = message[len(exc_type) + 1 :].strip()  # the type is reported on its own
        _write(
            {
                "e": "result",
                "id": report.nodeid or "<collection>",
                "outcome": "error",
                "when": "collect",
                "duration": 0.0,
                "exc_type": exc_type,
                "message": message,
                "frames": _text_frames(text, os.getcwd()),
                "longrepr": _trim(text),
            }
        )


def pytest_runtest_logstart(nodeid: str, location: tuple) -> None:
    _write({"e": "start", "id": nodeid})


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.excinfo is not None and item.nodeid not in _excinfo:
        _excinfo[item.nodeid] = (call.excinfo, str(item.config.rootpath))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    state = _reports.setdefault(report.nodeid, {"outcome": "passed", "when": None, "duration": 0.0})
    state["duration"] += getattr(report, "duration", 0.0) or 0.0
    outcome = _phase_outcome(report)
    if outcome is None:
        return
    if state["when"] is None or outcome == "error" and state["outcome"] == "passed":
        state.update(outcome=outcome, when=report.when, longrepr=_trim(report.longreprtext))


def _phase_outcome(report: pytest.TestReport) -> str | None:
    """The outcome this phase decides, or None when it leaves the test passed."""
    xfail = hasattr(report, "wasxfail")
    if report.when == "call":
        if report.passed:
            return "xpassed" if xfail else None
        if report.skipped:
            return "xfailed" if xfail else "skipped"
        return "failed"
    if report.skipped:
        return "xfailed" if xfail else "skipped"
    return "error" if report.failed else None


def pytest_runtest_logfinish(nodeid: str, location: tuple) -> None:
    state = _reports.pop(nodeid, {"outcome": "passed", "when": None, "duration": 0.0})
    event = {
        "e": "result",
        "id": nodeid,
        "outcome": state["outcome"],
        "when": state["when"],
        "duration": round(state["duration"], 6),
    }
    if state["outcome"] in ("failed", "error"):
        event.update(_describe(nodeid), longrepr=state.get("longrepr"))
    _write(event)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem):
    if _leak_tracker is None:
        yield
        return
    own = getattr(getattr(item, "module", None), "__name__", None)
    before = _leak_tracker.snapshot(own)
    yield
    leaks = _leak_tracker.changes(before, own)
    if leaks:
        _write({"e": "leaks", "id": item.nodeid, "leaks": leaks})


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _write({"e": "finish", "exitstatus": int(exitstatus)})


def _describe(nodeid: str) -> dict:
    info = _excinfo.pop(nodeid, None)
    if info is None:
        return {"exc_type": None, "message": None, "frames": []}
    excinfo, root = info
    exc_type = excinfo.type
    name = exc_type.__qualname__
    module = getattr(exc_type, "__module__", "builtins")
    if module not in ("builtins", "__builtin__"):
        name = f"{module}.{name}"
    try:
        message = str(excinfo.value)
    except Exception as exc:  # a broken __str__ must not lose the result
        message = f"<unprintable {type(exc).__name__}>"
    if exc_type.__name__ == "FixtureLookupError":  # its str() is a tuple; say what pytest says
        message = f"fixture {getattr(excinfo.value, 'argname', '?')!r} not found"
    return {"exc_type": name, "message": _trim(message, 2000), "frames": _frames(excinfo, root)}


_SKIP_DIRS = ("_pytest", "pluggy", os.sep + "unittest" + os.sep)
_LIB_DIRS = tuple({sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"]})


def _frames(excinfo, root: str) -> list[dict]:
    frames = []
    for entry in excinfo.traceback:
        path = str(entry.path)
        if any(part in path for part in _SKIP_DIRS):
            continue
        frames.append({"path": _relative(path, root), "line": entry.lineno + 1, "func": entry.name})
    return frames[-30:]


# pytest's entry lines: "app/core.py:3: in <module>", "/venv/.../numpy/__init__.py:414: AttributeError"
# and the standard traceback's 'File "app/core.py", line 3, in <module>'.
_ENTRY = re.compile(
    r"^(?P<path>[^\s:][^:\n]*\.py):(?P<line>\d+): (?:in (?P<func>\S+)|\w)"
    r'|^\s*File "(?P<path2>[^"]+\.py)", line (?P<line2>\d+), in (?P<func2>\S+)',
    re.M,
)


def _text_frames(text: str, cwd: str) -> list[dict]:
    """The traceback of a collection error, read from pytest's report text (no excinfo is
    kept for collectors), outermost first; pytest's and pluggy's own frames left out."""
    root = _rootdir or cwd
    frames: list[dict] = []
    for m in _ENTRY.finditer(text or ""):
        path = m.group("path") or m.group("path2")
        line = int(m.group("line") or m.group("line2"))
        func = m.group("func") or m.group("func2") or ""
        full = os.path.normpath(path if os.path.isabs(path) else os.path.join(cwd, path))
        if any(part in full for part in _SKIP_DIRS) or "importlib" + os.sep in full:
            continue
        frame = {"path": _relative(full, root), "line": line, "func": func}
        if not frames or frames[-1] != frame:
            frames.append(frame)
    return frames[-30:]


def _relative(path: str, root: str) -> str:
    """Repo-relative for the repo's own files; absolute for libraries, wherever they live."""
    if path.startswith(_LIB_DIRS) or "site-packages" in path or not path.startswith(root + os.sep):
        return path
    return os.path.relpath(path, root)


def _exc_name(text: str) -> str | None:
    """The exception type pytest printed for a collection error (`E   ImportError: ...`)."""
    for line in text.splitlines():
        head = line[1:].strip().split(":", 1)[0] if line.startswith("E ") else ""
        if head and head.replace(".", "").replace("_", "").isalnum() and head[0].isalpha():
            return head
    return None


def _first_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("E ")]
    return (errors[0][1:].strip() if errors else lines[-1] if lines else "")[:500]


class _LeakTracker:
    """Snapshots the process state a test can leak: env vars, cwd, repo modules' attributes, files.

    Of the test modules, only the running test's own is watched: a test rebinds its own module's
    globals or the code's, seldom another test file's, and copying every test module's namespace
    around every test made a 10,000-test baseline four times the bare suite.
    """

    def __init__(self, root: str) -> None:
        self.root = root
        self.test_modules: set[str] = set()
        self._modules: list = []
        self._module_count = -1
        self._watched = -1

    def _repo_modules(self) -> list:
        if len(sys.modules) != self._module_count or len(self.test_modules) != self._watched:
            self._module_count, self._watched = len(sys.modules), len(self.test_modules)
            self._modules = [
                (name, mod)
                for name, mod in list(sys.modules.items())
                if name not in self.test_modules
                and _is_repo_file(getattr(mod, "__file__", None), self.root)
            ]
        return self._modules

    def snapshot(self, own: str | None = None) -> dict:
        modules = self._repo_modules()
        if own in self.test_modules:
            modules = [*modules, (own, sys.modules.get(own))]
        attrs = {}
        for name, mod in modules:
            try:
                attrs[name] = dict(vars(mod))
            except TypeError:
                continue
        return {
            "env": _raw_environ(),
            "cwd": os.getcwd(),
            "modules": set(sys.modules),
            "attrs": attrs,
            "files": set(os.listdir(self.root)),
        }

    def changes(self, before: dict, own: str | None = None) -> list[dict]:
        """Leak records: {"kind": "env"|"attr"|"cwd"|"files"|"modules", ...} (see models.Leak)."""
        after = self.snapshot(own)
        leaks = [] if after["env"] == before["env"] else _env_changes(before["env"], after["env"])
        if after["cwd"] != before["cwd"]:
            leaks.append({"kind": "cwd", "old": before["cwd"], "new": after["cwd"]})
        for name, old in before["attrs"].items():
            new = after["attrs"].get(name)
            if new is not None and not _same(old, new):
                leaks.extend(_attr_changes(name, old, new))
        created = sorted(after["files"] - before["files"])
        if created:
            leaks.append({"kind": "files", "names": created[:20]})
        imported = sorted(
            n
            for n in after["modules"] - before["modules"]
            if _is_repo_file(getattr(sys.modules.get(n), "__file__", None), self.root)
        )
        if imported:
            leaks.append({"kind": "modules", "names": imported[:20]})
        return leaks


def _is_repo_file(path: str | None, root: str) -> bool:
    return (
        path is not None
        and path.startswith(root + os.sep)
        and "site-packages" not in path
        and (os.sep + "." not in path[len(root) :])
    )


def _raw_environ() -> dict:
    """os.environ as the interpreter holds it (encoded): copying it costs nothing per test,
    where `dict(os.environ)` decodes every variable."""
    raw = getattr(os.environ, "_data", None)
    return dict(raw) if isinstance(raw, dict) else dict(os.environ)


def _decoded(env: dict) -> dict:
    key = getattr(os.environ, "decodekey", None)
    value = getattr(os.environ, "decodevalue", None)
    if key is None or value is None or not all(isinstance(k, bytes) for k in env):
        return env
    return {key(k): value(v) for k, v in env.items()}


def _same(old: dict, new: dict) -> bool:
    """The same names bound to the same objects (identity, never a value's own __eq__)."""
    return list(old) == list(new) and all(map(operator.is_, old.values(), new.values()))


def _env_changes(old: dict, new: dict) -> list[dict]:
    old, new = _decoded(old), _decoded(new)
    keys = old.keys() | new.keys()
    changed = sorted(k for k in keys if old.get(k) != new.get(k) and not k.startswith("PYTEST_"))
    return [{"kind": "env", "key": k, "old": old.get(k), "new": new.get(k)} for k in changed]


def _short(value: object) -> str:
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 60 else text[:57] + "..."


def _attr_changes(module: str, old: dict, new: dict) -> list[dict]:
    leaks = []
    for attr, value in new.items():
        if attr.startswith("__"):
            continue
        key = f"{module}.{attr}"
        if attr not in old:
            if not _is_definition(value):
                leaks.append({"kind": "attr", "key": key, "old": None, "new": _short(value)})
        elif old[attr] is not value:
            leaks.append(
                {"kind": "attr", "key": key, "old": _short(old[attr]), "new": _short(value)}
            )
    return leaks


def _is_definition(value: object) -> bool:
    return (
        isinstance(value, type)
        or callable(value)
        and hasattr(value, "__code__")
        or (type(value).__name__ == "module")
    )
