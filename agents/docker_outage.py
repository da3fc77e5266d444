"""Simulate an outage without the container, where no container (or daemon) is there to pause.

A fixture that pauses a service container to test the app's degraded mode, and restores it in
`finally`, is right about the lifecycle; it fails where the container does not exist (a laptop
without the compose stack, CI without docker): `CalledProcessError: Command 'docker pause
cos_redis' ...`. The test's intent is the outage, not the container: the fixture now points the
app's client at an address nothing listens on (the service's URL or host/port setting, found where
the project reads it), through `monkeypatch`, so pytest restores the setting afterwards.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import libcst as cst

from orchestrator.agents import codemod, syntax
from orchestrator.agents.docker_calls import RESTORE, find_action
from orchestrator.agents.docker_calls import helpers as docker_helpers

FAILED_COMMAND = re.compile(
    r"Command '\[?['\"]?(?:\S*docker)['\"]?,? ['\"]?(pause|stop)['\"]?,? ['\"]?([\w.-]+)"
)
STILL_THERE = re.compile(r"already paused|is paused|is not running")
ENV_READ = re.compile(
    r"""(?:os\.environ\.get|os\.getenv|environ\.get|os\.environ\[)\(?\s*["'](\w+)["']"""
    r"""(?:\s*,\s*["']([^"']*)["'])?"""
)
GENERIC = {"cos", "test", "tests", "app", "local", "dev", "service", "svc", "1", "2"}
UNREACHABLE_HOST, UNREACHABLE_PORT = "127.0.0.1", 1  # nothing listens on port 1
COMMENT = "# The outage without the container: the client points at an address nothing listens on."


@dataclass(frozen=True)
class Setting:
    """Where the code under test reads the service's address."""

    key: str  # the environment variable
    value: str  # an address nothing listens on, in the setting's own form
    attr: str | None  # "module.CONSTANT" when it is read once at import time


def failed_outages(texts: list[str]) -> list[tuple[str, str]]:
    """(verb, container) of pause/stop commands that failed because the container is absent."""
    found: list[tuple[str, str]] = []
    for text in texts:
        if STILL_THERE.search(text):
            continue
        found += [(v, c) for v, c in FAILED_COMMAND.findall(text) if (v, c) not in found]
    return found


def simulate(worktree: Path, paths: list[Path], outages: list[tuple[str, str]]) -> list[str]:
    """Rewrite the guarded outages of `paths` to use an unreachable address; what changed."""
    files = codemod.Files(worktree)
    changes: list[str] = []
    modules = {path: tree for path in paths if (tree := syntax.parse(path))}
    helpers = docker_helpers(list(modules.values()))
    for verb, container in outages:
        setting = _setting(files, container)
        if setting is None:
            continue
        for path, module in modules.items():
            new, done = _rewrite(module, verb, container, helpers, setting)
            if done:
                modules[path] = new
                syntax.write(path, new)
                changes.append(
                    f"{files.rel(path)}: {done} simulates the {container} outage with "
                    f"{setting.attr or setting.key}={setting.value!r} instead of `docker {verb}`"
                )
    return changes


def _setting(files: codemod.Files, container: str) -> Setting | None:
    """The service's address setting: an env var named after the container (REDIS_URL for
    cos_redis), read by the project's code; a URL wins over host/port."""
    tokens = {t for t in re.split(r"[-_.]", container.lower()) if t and t not in GENERIC}
    candidates: list[tuple[str, str, str, str | None]] = []  # (key, default, path, constant)
    for path in files.python_files():
        parts = Path(path).parts
        if parts[0] in ("tests", "test") or Path(path).name.startswith(("test_", "conftest")):
            continue
        source = files.read(path)
        for line in source.splitlines():
            for key, default in ENV_READ.findall(line):
                if not any(t in key.lower() for t in tokens):
                    continue
                bound = re.match(r"([A-Z][A-Z0-9_]*)\s*=", line)  # read once, at import
                name = f"{codemod.module_name(files, path)}.{bound[1]}" if bound else None
                candidates.append((key, default, path, name))
    for suffix in ("URL", "URI", "DSN", "HOST", "ADDR"):
        for key, default, _, attr in candidates:
            if key.upper().endswith(suffix):
                return Setting(key, _unreachable(key, default, tokens), attr)
    return None


def _unreachable(key: str, default: str, tokens: set[str]) -> str:
    if key.upper().endswith(("HOST", "ADDR")):
        return UNREACHABLE_HOST
    url = urlsplit(default if "://" in default else f"{sorted(tokens)[0]}://{default}")
    return urlunsplit(url._replace(netloc=f"{UNREACHABLE_HOST}:{UNREACHABLE_PORT}"))


def _rewrite(
    module: cst.Module, verb: str, container: str, helpers: set[str], setting: Setting
) -> tuple[cst.Module, str]:
    """The module with the function that pauses `container` and restores it in `finally`
    rewritten to monkeypatch the setting; ("", unchanged) when there is none."""
    for func, owner in syntax.functions(module):
        if syntax.is_unittest_class(owner):
            continue
        body = syntax.statements(func)
        index = _pause_index(body, verb, container, helpers, _string_constants(module))
        if index is None:
            continue
        guard = body[index + 1] if index + 1 < len(body) else None
        if not (isinstance(guard, cst.Try) and guard.finalbody and not guard.handlers):
            continue
        kept = [s for s in guard.finalbody.body.body if not _restores(s, verb, helpers)]
        with_fixture = syntax.add_param(func, "monkeypatch")
        if with_fixture is None:
            continue
        before = getattr(body[index], "leading_lines", [])
        patch = _patch_line(setting).with_changes(
            leading_lines=[*before, cst.EmptyLine(comment=cst.Comment(COMMENT))]
        )
        new_body = [*body[:index], patch, *guard.body.body, *kept, *body[index + 2 :]]
        new = syntax.with_body(with_fixture, new_body)
        return syntax.replace_nodes(module, {func: new}), func.name.value
    return module, ""


def _pause_index(
    body: list[cst.BaseStatement],
    verb: str,
    container: str,
    helpers: set[str],
    constants: dict[str, str],
) -> int | None:
    for index, stmt in enumerate(body):
        action = find_action(stmt, helpers)
        if action is None or action.verb != verb:
            continue
        named = constants.get(action.container) or action.container.strip("\"'")
        if named == container:
            return index
    return None


def _string_constants(module: cst.Module) -> dict[str, str]:
    """Module-level `NAME = "text"` assignments."""
    found: dict[str, str] = {}
    for stmt in module.body:
        for small in stmt.body if isinstance(stmt, cst.SimpleStatementLine) else []:
            if isinstance(small, cst.Assign) and len(small.targets) == 1:
                target, value = small.targets[0].target, syntax.string_value(small.value)
                if isinstance(target, cst.Name) and value is not None:
                    found[target.value] = value
    return found


def _restores(stmt: cst.CSTNode, verb: str, helpers: set[str]) -> bool:
    action = find_action(stmt, helpers)
    return action is not None and action.verb == RESTORE[verb]


def _patch_line(setting: Setting) -> cst.SimpleStatementLine:
    if setting.attr:
        text = f'monkeypatch.setattr("{setting.attr}", "{setting.value}")'
    else:
        text = f'monkeypatch.setenv("{setting.key}", "{setting.value}")'
    return cst.SimpleStatementLine([cst.Expr(cst.parse_expression(text))])
