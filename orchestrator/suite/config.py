"""How to run the target's suite: its own configuration, its own interpreter, never ours by guess."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from orchestrator.errors import UsageError
from orchestrator.models import RunSpec
from orchestrator.suite.sandbox import scrubbed_env

DEFAULT_TIMEOUT_S = 120.0


class TargetConfig(BaseModel):
    """`[tool.orchestrator]` in the target's pyproject.toml."""

    test_cmd: str | None = Field(default=None, alias="test-cmd")
    ignore: list[str] = Field(default_factory=list)
    deselect: list[str] = Field(default_factory=list)
    timeout: float | None = None
    containers: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)  # set for every run of the suite
    # Variables kept in the sandboxed environment although they look like secrets.
    pass_env: list[str] = Field(default_factory=list, alias="pass-env")
    network: Literal["loopback", "none", "host"] | None = None
    # Paths outside the worktree the suite must write inside the sandbox (a service's state).
    writable: list[str] = Field(default_factory=list)
    models: dict[str, str] = Field(default_factory=dict)  # the model agent's model per category
    escalate_model: str | None = Field(default=None, alias="escalate-model")  # its last attempt's

    model_config = {"populate_by_name": True, "extra": "ignore"}


def load_config(repo: Path) -> TargetConfig:
    path = repo / "pyproject.toml"
    if not path.is_file():
        return TargetConfig()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path} is not valid TOML ({exc}): fix it or pass --test-cmd") from None
    return TargetConfig.model_validate(data.get("tool", {}).get("orchestrator", {}))


def resolve_command(repo: Path, test_cmd: str | None, config: TargetConfig) -> list[str]:
    """--test-cmd, else [tool.orchestrator], else uv where a uv.lock is, else .venv, else ours."""
    if test_cmd or config.test_cmd:
        return _anchored(repo, shlex.split(test_cmd or config.test_cmd or ""))
    if (repo / "uv.lock").is_file() and shutil.which("uv"):
        return ["uv", "run", "--no-sync", "pytest"]
    for python in (repo / ".venv" / "bin" / "python", repo / ".venv" / "Scripts" / "python.exe"):
        if python.is_file():
            return [str(python), "-m", "pytest"]
    return [sys.executable, "-m", "pytest"]


def _anchored(repo: Path, command: list[str]) -> list[str]:
    """A relative executable (`.venv/bin/python`) is the repo's: runs in worktrees, where no
    `.venv` is, still use it."""
    if command and os.sep in command[0] and not os.path.isabs(command[0]):
        candidate = os.path.normpath(repo / command[0])  # not resolved: a venv's python is a link
        if os.path.exists(candidate):
            return [candidate, *command[1:]]
    return command


def run_spec(
    repo: Path,
    *,
    test_cmd: str | None = None,
    ignores: list[str] | None = None,
    deselect: list[str] | None = None,
    timeout_s: float | None = None,
    record_leaks: bool = False,
    sandbox: Literal["auto", "required", "off"] = "auto",
    network: Literal["loopback", "none", "host"] | None = None,
) -> RunSpec:
    """The RunSpec for the user's repository, options first, then its configuration.

    The network is --network, else `[tool.orchestrator] network`, else loopback; a suite that
    declares containers gets the host's network by default, where their published ports are."""
    config = load_config(repo)
    network = network or config.network or ("host" if config.containers else "loopback")
    command = resolve_command(repo, test_cmd, config)
    env = dict(config.env)
    if command[0] == "uv":
        # Worktrees must use the user's environment, never a fresh one uv would install.
        env["UV_PROJECT_ENVIRONMENT"] = str(repo / ".venv")
    return RunSpec(
        repo=str(repo),
        command=command,
        ignores=[*config.ignore, *(ignores or [])],
        deselect=[*config.deselect, *(deselect or [])],
        timeout_s=timeout_s or config.timeout or DEFAULT_TIMEOUT_S,
        env=env,
        record_leaks=record_leaks,
        sandbox=sandbox,
        network=network,
        pass_env=config.pass_env,
        writable=_writable(repo, config.writable),
    )


def _writable(repo: Path, configured: list[str]) -> list[str]:
    """`[tool.orchestrator] writable` (relative to the repo, `~` expanded), then the
    `ORCHESTRATE_WRITABLE` variable (os.pathsep-separated), for a machine's own services."""
    extra = os.environ.get("ORCHESTRATE_WRITABLE", "").split(os.pathsep)
    return [str(repo / Path(p).expanduser()) for p in [*configured, *extra] if p]


def in_worktree(spec: RunSpec, worktree: Path) -> RunSpec:
    """The same run, in a worktree: its code shadows an editable install of the user's checkout."""
    paths = [str(worktree)] + ([str(worktree / "src")] if (worktree / "src").is_dir() else [])
    return spec.model_copy(update={"repo": str(worktree), "pythonpath": paths})


def environ_for(spec: RunSpec, plugin_dir: str) -> dict[str, str]:
    """The test process's environment: ours without secrets and git's pointers (the sandbox's
    `scrubbed_env`, keeping `pass-env`), then the suite's own `env`."""
    env = scrubbed_env(os.environ, keep=spec.pass_env)
    env.pop("PYTEST_CURRENT_TEST", None)
    paths = [*spec.pythonpath, *filter(None, [env.get("PYTHONPATH")]), plugin_dir]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.update(spec.env)
    return env


_XDIST_OPTIONS = ("-n", "--numprocesses", "--maxprocesses", "--dist", "--tx")


def sequential(spec: RunSpec) -> RunSpec:
    """The same run without pytest-xdist's workers: for the runs whose order matters (the
    baseline, isolation). Verification, integration and the final run keep the suite's `-n`."""
    command, extra = _without_xdist(spec.command), _without_xdist(spec.extra_args, pytest=True)
    if command == spec.command and extra == spec.extra_args:
        return spec
    return spec.model_copy(update={"command": command, "extra_args": extra})


def _without_xdist(args: list[str], pytest: bool = False) -> list[str]:
    """`args` without xdist's options (only after the word naming pytest, unless `pytest`)."""
    kept: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif not pytest:
            kept.append(arg)
            pytest = "pytest" in arg
        elif arg in _XDIST_OPTIONS:
            skip = True
        elif not (
            arg.startswith(tuple(f"{o}=" for o in _XDIST_OPTIONS[1:]))
            or (arg.startswith("-n") and not arg.startswith("--"))
        ):
            kept.append(arg)
    return kept
