"""Environment facts: what the target has installed and which dependencies moved, and when.

The installed versions come from the target's own interpreter (the stream plugin reads
`importlib.metadata` in the baseline run). What changed is read from the dependency files' git
history (the last commit that changed a pin, against its parent), from pins the environment no
longer matches, and from the packages the last handoff recorded.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from orchestrator.git import run_git
from orchestrator.models import Environment, PackageChange

# Files that say which versions a project expects, most exact first.
LOCK_FILES = ("uv.lock", "poetry.lock", "pdm.lock", "Pipfile.lock")
PIN_FILES = re.compile(
    r"(?:^|/)(?:requirements|constraints)[\w.-]*\.(?:txt|in)$|(?:^|/)pyproject\.toml$"
)
_REQUIREMENT = re.compile(
    r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*((?:[=<>!~]=?|===)\s*[^;#\s]+(?:\s*,\s*[=<>!~]=?\s*[^;#\s,]+)*)?"
)
_EXACT = re.compile(r"^===?\s*([^,\s]+)$")


def environment_facts(
    installed: Environment | None, repo: Path | None, previous: dict[str, str] | None = None
) -> Environment | None:
    """The installed packages (as seen) plus every change that can be seen; None if nothing is."""
    env = installed.model_copy(deep=True) if installed else Environment()
    changes: dict[str, PackageChange] = {}
    if repo is not None and (repo / ".git").exists():
        for change in _history_changes(repo):
            changes.setdefault(_key(change.name), change)
        for change in _pins_not_installed(repo, env):
            changes.setdefault(_key(change.name), change)
    for name, old in (previous or {}).items():
        new = env.version(name)
        if new and new != old:
            changes.setdefault(
                _key(name),
                PackageChange(name=name, old=old, new=new, source="since the last handoff"),
            )
    env.changes = list(changes.values())
    return env if env.packages or env.changes else None


def _key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# --- dependency files -----------------------------------------------------------------------------


def dependency_files(repo: Path) -> list[str]:
    """Tracked files that pin or lock dependencies."""
    proc = run_git(repo, "ls-files", check=False)
    names = proc.stdout.splitlines() if proc.returncode == 0 else []
    return [n for n in names if Path(n).name in LOCK_FILES or PIN_FILES.search(n)]


def pins(path: str, text: str) -> dict[str, str]:
    """Distribution -> version (a lock's exact one, or a requirement's specifier)."""
    name = Path(path).name
    try:
        if name == "Pipfile.lock":
            data = json.loads(text)
            return {
                k: str(v.get("version", "")).lstrip("=")
                for section in ("default", "develop")
                for k, v in data.get(section, {}).items()
                if isinstance(v, dict)
            }
        if name in LOCK_FILES:
            return {
                p["name"]: str(p["version"])
                for p in tomllib.loads(text).get("package", [])
                if "name" in p and "version" in p
            }
        if name == "pyproject.toml":
            return _pyproject_pins(tomllib.loads(text))
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, AttributeError, TypeError):
        return {}
    return _requirement_pins(text.splitlines())


def _pyproject_pins(data: dict) -> dict[str, str]:
    project = data.get("project", {})
    lines = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        lines += extra
    for group in data.get("dependency-groups", {}).values():
        lines += [g for g in group if isinstance(g, str)]
    found = _requirement_pins(lines)
    poetry = data.get("tool", {}).get("poetry", {})
    for section in [poetry.get("dependencies", {})] + [
        g.get("dependencies", {}) for g in poetry.get("group", {}).values()
    ]:
        for name, spec in section.items():
            version = spec.get("version") if isinstance(spec, dict) else spec
            if name != "python" and isinstance(version, str):
                found[name] = version
    return found


def _requirement_pins(lines: list[str]) -> dict[str, str]:
    found = {}
    for line in lines:
        m = _REQUIREMENT.match(line)
        if m and not line.lstrip().startswith(("-", "#")):
            found[m.group(1)] = (m.group(2) or "").replace(" ", "")
    return found


def _history_changes(repo: Path) -> list[PackageChange]:
    """Pins the last commit touching each dependency file changed (against its parent)."""
    changes = []
    for path in dependency_files(repo):
        log = run_git(repo, "log", "-n", "1", "--format=%H", "--", path, check=False)
        commit = log.stdout.strip()
        if log.returncode or not commit:
            continue
        before = run_git(repo, "show", f"{commit}^:{path}", check=False)
        now = run_git(repo, "show", f"HEAD:{path}", check=False)
        if before.returncode or now.returncode:
            continue  # the file was added then: nothing to compare with
        old, new = pins(path, before.stdout), pins(path, now.stdout)
        where = f"{path} since {commit[:7]}"
        for name in sorted(old.keys() | new.keys(), key=str.lower):
            if old.get(name) != new.get(name):
                changes.append(
                    PackageChange(
                        name=name,
                        old=_shown(old.get(name)),
                        new=_shown(new.get(name)),
                        source=where,
                    )
                )
    return changes


def _shown(spec: str | None) -> str | None:
    """`==1.4.54` -> `1.4.54`; a range stays as written; a bare name is "any version"."""
    if spec is None:
        return None
    exact = _EXACT.match(spec)
    return exact.group(1) if exact else spec or "any version"


def _pins_not_installed(repo: Path, env: Environment) -> list[PackageChange]:
    """Exact pins the environment does not match: it was upgraded without the files."""
    changes = []
    for path in dependency_files(repo):
        try:
            text = (repo / path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for name, spec in pins(path, text).items():
            pinned = _shown(spec)
            installed = env.version(name)
            exact = Path(path).name in LOCK_FILES or bool(_EXACT.match(spec))
            if exact and installed and pinned and installed != pinned:
                source = f"{path} pins {pinned}, the environment has {installed}"
                changes.append(PackageChange(name=name, old=pinned, new=installed, source=source))
    return changes
