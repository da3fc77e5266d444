"""The sandbox every run of changed code goes through: bubblewrap on Linux, sandbox-exec on macOS.

What the code inside sees (the policy, Linux):

- the whole filesystem read-only; `workdir` and `writable` writable (the worktree, our stream);
- the user's home hidden: an empty private tmpfs at `$HOME` (so `~/.ssh`, `~/.aws`, `~/.netrc`,
  credential stores are not there), with `readable` paths (the checkout, the interpreter, the
  plugin) bound back read-only where they live under it;
- a private `/tmp`; a synthetic `/etc/passwd`/`/etc/group` naming only the current user, and
  `/etc/shadow`/`/etc/gshadow` empty;
- a new pid namespace (`/proc` shows only the sandbox's processes, never our environment) and
  `--die-with-parent`: when the command exits or is killed, every process it started dies;
- the network by policy: `loopback` (default) a private network namespace with its own `lo`;
  `none` the same without the Docker socket (and `/run`); `host` the host's network, which a
  suite whose Docker containers publish ports on the host's loopback needs;
- the environment the caller passes: build it with `scrubbed_env` (secret-looking variables
  dropped, an allow-list kept).

git metadata (the checkout's `.git`) is readable, never writable: orchestrate runs git outside.
macOS: a generated `sandbox-exec` profile with the same file and network rules; there is no pid
namespace, so the runner's process-group kill is what ends stragglers (untested here).
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from orchestrator.secrets import is_secret

NETWORKS = ("loopback", "none", "host")
MODES = ("auto", "required", "off")
MISSING = "no sandbox is available (bubblewrap on Linux: `apt-get install bubblewrap`)"

# Variables the target's tests never need and that point back at us or at git state.
_DROPPED = frozenset(
    {"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_OBJECT_DIRECTORY"}
)


@functools.cache
def available() -> str | None:
    """The name of the sandbox this machine has ("bubblewrap", "sandbox-exec"), or None.

    bubblewrap is probed with a real run: a container without user namespaces has the binary
    but cannot use it."""
    if sys.platform == "darwin":
        return "sandbox-exec" if shutil.which("sandbox-exec") else None
    bwrap = _bwrap_path()
    if bwrap is None:
        return None
    try:
        probe = subprocess.run(
            [bwrap, "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", "true"],
            capture_output=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return "bubblewrap" if probe.returncode == 0 else None


def notice(mode: str) -> str | None:
    """What to say, once a run, about the sandbox: nothing when it is used as asked."""
    if mode == "off":
        return "the sandbox is off (--sandbox off): agent-written code runs as you, unconfined"
    if mode == "auto" and available() is None:
        return MISSING + ": agent-written code runs unconfined (--sandbox required refuses)"
    return None


@functools.cache
def _bwrap_path() -> str | None:
    """Found once: a suite's PATH (a test's, a venv's) need not have it."""
    return shutil.which("bwrap") or next(
        (p for p in ("/usr/bin/bwrap", "/usr/local/bin/bwrap") if os.path.exists(p)), None
    )


def described(mode: str, network: str) -> str:
    """How the tests ran, for the handoff: `--sandbox off` is recorded as the choice it was."""
    if mode == "off":
        return "off (--sandbox off): tests ran unconfined, as the user"
    kind = available()
    if kind is None:
        return "none available: tests ran unconfined (" + MISSING + ")"
    return f"{kind}, network {network}"


def scrubbed_env(env: Mapping[str, str], keep: Iterable[str] = ()) -> dict[str, str]:
    """`env` without secret-looking variables (by name or value) and git's own pointers;
    names in `keep` (`[tool.orchestrator] pass-env`) stay whatever they look like."""
    kept = set(keep)
    return {
        k: v for k, v in env.items() if k in kept or (k not in _DROPPED and not is_secret(k, v))
    }


def confined(
    argv: Sequence[str],
    *,
    workdir: Path,
    env: Mapping[str, str],
    writable: Sequence[Path] = (),
    network: str = "loopback",
    readable: Sequence[Path] = (),
) -> list[str]:
    """The argv that runs `argv` in the sandbox, in `workdir` (see the module's policy).

    Pass the same `env` to the process: it names the home to hide. Raises RuntimeError when no
    sandbox is available (callers check `available()` first)."""
    if network not in NETWORKS:
        raise ValueError(f"network must be one of {', '.join(NETWORKS)}, not {network!r}")
    kind = available()
    readable = [*readable, *_our_own()]
    if kind == "bubblewrap":
        return _bwrap(argv, workdir, env, writable, network, readable)
    if kind == "sandbox-exec":
        return _sandbox_exec(argv, workdir, env, writable, network, readable)
    raise RuntimeError(MISSING)


def _bwrap(
    argv: Sequence[str],
    workdir: Path,
    env: Mapping[str, str],
    writable: Sequence[Path],
    network: str,
    readable: Sequence[Path],
) -> list[str]:
    bwrap = _bwrap_path() or "bwrap"
    home = _home(env)
    args = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    hidden = ["/tmp"]
    if home is not None:
        args += ["--tmpfs", str(home)]
        hidden.append(str(home))
    if network == "none":
        args += ["--tmpfs", "/run"]
        hidden.append("/run")
    for name, path in _identity_files(home).items():
        if os.path.exists(name):
            args += ["--ro-bind", str(path), name]
    # Shallow first, so a writable worktree inside a read-only checkout stays writable.
    # Bound where they really are: a link inside a bound directory then resolves inside too.
    binds = {os.path.realpath(p): "--ro-bind" for p in readable}
    binds = {p: kind for p, kind in binds.items() if _under(p, hidden)}
    binds.update({os.path.realpath(p): "--bind" for p in [workdir, *writable]})
    for bind in sorted(binds, key=lambda p: p.count(os.sep)):
        if os.path.exists(bind):
            args += [binds[bind], bind, bind]
    args += ["--unshare-all", "--die-with-parent", "--new-session"]
    if network == "host":
        args.append("--share-net")
    args += ["--setenv", "TMPDIR", "/tmp", "--chdir", os.path.realpath(workdir), "--"]
    return [*args, *argv]


def _our_own() -> list[Path]:
    """orchestrate's own interpreter and package stay readable, wherever they are installed
    (a clone under /tmp): the stream plugin runs from there, often with that interpreter."""
    package = Path(__file__).resolve().parent.parent
    return [Path(sys.prefix), Path(sys.base_prefix), package]


def _home(env: Mapping[str, str]) -> Path | None:
    home = env.get("HOME") or os.path.expanduser("~")
    path = Path(home).absolute()
    return path if path.is_dir() and path != Path("/") else None


def _under(path: Path | str, roots: Sequence[str]) -> bool:
    text = str(Path(path).absolute())
    return any(text == root or text.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


@functools.cache
def _identity_files(home: Path | None) -> dict[str, Path]:
    """A passwd and group naming only us, and empty shadow files, written once per process."""
    scratch = Path(tempfile.mkdtemp(prefix="orchestrate-sandbox-"))
    atexit.register(shutil.rmtree, scratch, True)
    uid, gid = os.getuid(), os.getgid()
    user = os.environ.get("USER") or ("root" if uid == 0 else "user")
    files = {
        "/etc/passwd": f"{user}:x:{uid}:{gid}::{home or '/tmp'}:/bin/sh\n"
        + ("" if uid == 65534 else "nobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\n"),
        "/etc/group": f"{user}:x:{gid}:\n",
        "/etc/shadow": "",
        "/etc/gshadow": "",
    }
    paths = {}
    for name, text in files.items():
        path = scratch / Path(name).name
        path.write_text(text, encoding="utf-8")
        paths[name] = path
    return paths


def _sandbox_exec(
    argv: Sequence[str],
    workdir: Path,
    env: Mapping[str, str],
    writable: Sequence[Path],
    network: str,
    readable: Sequence[Path],
) -> list[str]:
    """A Seatbelt profile with the same rules: writes only where allowed, home unreadable
    (but for `readable`), network by policy."""

    def paths(items: Iterable[Path | str]) -> str:
        return " ".join(f'(subpath "{os.path.realpath(p)}")' for p in items)

    home = _home(env)
    rules = ["(version 1)", "(allow default)", "(deny file-write*)"]
    rules.append(
        f"(allow file-write* {paths([workdir, *writable, '/private/tmp', '/private/var/folders', '/dev'])})"
    )
    if home is not None:
        rules.append(f"(deny file-read* {paths([home])})")
        rules.append(f"(allow file-read* {paths([workdir, *writable, *readable])})")
    if network != "host":
        rules.append("(deny network*)")
        if network == "loopback":
            rules.append('(allow network* (remote ip "localhost:*"))')
            rules.append('(allow network* (local ip "localhost:*"))')
    return ["sandbox-exec", "-p", "\n".join(rules), *argv]
