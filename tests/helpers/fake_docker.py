"""A fake `docker` executable that keeps its containers' states in a JSON file."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

FAKE_DOCKER = """
    #!{python}
    import fcntl, json, os, sys, time
    from pathlib import Path


    def save(state):
        tmp = state_file.with_suffix("." + str(os.getpid()) + ".tmp")  # one per process: calls overlap
        tmp.write_text(json.dumps(state))
        os.replace(tmp, state_file)  # atomic: the test reads the file concurrently


    state_file = Path({state!r})
    # One call at a time, like the daemon: without the lock an `inspect` that read the state before
    # a concurrent `pause` wrote it would write the old state back (a lost update).
    lock = open(str(state_file) + ".lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    state = json.loads(state_file.read_text())
    verb, *args = sys.argv[1:]
    name = args[-1]
    containers = state["containers"]
    state.setdefault("calls", []).append([verb, *args])
    if name not in containers:
        save(state)
        sys.exit(f"Error: No such container: {{name}}")
    time.sleep(state.get("delays", {{}}).get(verb, 0))  # a slow daemon
    if verb == "inspect":
        status = containers[name]
        print("true" if "Running" in args[1] and status == "running" else status if "Status" in args[1] else "false")
    elif verb == "unpause":
        if name in state.get("broken", []) or containers[name] != "paused":
            save(state)
            sys.exit(f"Error response from daemon: Container {{name}} is not paused")
        containers[name] = "running"
    elif verb == "pause":
        containers[name] = "paused"
    elif verb == "start":
        containers[name] = "running"
    elif verb == "stop":
        containers[name] = "exited"
    save(state)
    """


def fake_docker(
    tmp_path: Path,
    containers: dict[str, str],
    broken: list[str] | None = None,
    delays: dict[str, float] | None = None,
) -> tuple[Path, Path]:
    """A `docker` executable in tmp_path/bin and the JSON file holding its containers' states;
    `delays`: seconds a verb takes (a slow daemon)."""
    state = tmp_path / "docker" / "docker-state.json"  # its own directory: bound writable
    state.parent.mkdir(exist_ok=True)
    state.write_text(
        json.dumps({"containers": containers, "broken": broken or [], "delays": delays or {}})
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    docker = bin_dir / "docker"
    docker.write_text(
        textwrap.dedent(FAKE_DOCKER.format(python=sys.executable, state=str(state))).lstrip()
    )
    docker.chmod(0o755)
    return docker, state


def states(state: Path) -> dict[str, str]:
    return json.loads(state.read_text())["containers"]
