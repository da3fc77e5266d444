"""Make tests that pause or stop containers always bring them back.

`docker pause cos_redis; <assertions>; docker unpause cos_redis` leaves the container paused for
every later test (and for the next run) as soon as an assertion fails. The restore moves into a
`finally` (a fixture's teardown after `yield` included), followed by a bounded wait until the
container runs again, so the next test doesn't race a resuming service.
"""

from __future__ import annotations

import re
from pathlib import Path

import libcst as cst

from orchestrator.agents import codemod, syntax
from orchestrator.agents.docker_calls import RESTORE, Action, find_action
from orchestrator.agents.docker_calls import helpers as docker_helpers
from orchestrator.agents.docker_outage import failed_outages, simulate
from orchestrator.models import Proposal, WorkOrder

CLI_WAIT = '''

def _wait_until_running(name, docker="docker", timeout=30.0):
    """Poll `docker inspect` until the container runs again, so later tests don't hit it paused."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = subprocess.run(
            [docker, "inspect", "-f", "{{.State.Running}}", name],
            capture_output=True,
            text=True,
            check=False,
        )
        if state.stdout.strip() == "true":
            return
        time.sleep(0.2)
    raise RuntimeError(f"container {name} not running {timeout}s after it was restored")
'''

SDK_WAIT = '''

def _wait_until_running_sdk(container, timeout=30.0):
    """Poll the container until it runs again, so later tests don't hit it paused."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        container.reload()
        if container.status == "running":
            return
        time.sleep(0.2)
    raise RuntimeError(f"container {container.name} not running {timeout}s after it was restored")
'''


BROKEN = re.compile(
    r"[Cc]ontainer ['\"]?([A-Za-z0-9][\w.-]+)['\"]? is (?:paused|not running|exited)"
)


class DockerLifecycle:
    name = "docker_lifecycle"

    def __init__(self, **kwargs: object) -> None:
        """No settings; unknown keyword arguments are accepted so every specialist loads alike."""

    def propose(self, order: WorkOrder, worktree: Path, feedback: list[str]) -> Proposal:
        paths = _files(order, worktree)
        texts = [f"{f.message}\n{f.longrepr or ''}" for f in order.failures]
        changes = simulate(worktree, paths, failed_outages(texts))
        conftests = [t for p in paths if p.name == "conftest.py" and (t := syntax.parse(p))]
        known = docker_helpers(conftests)
        for path in paths:
            changes += _fix_file(worktree, path, known)
        if not changes:
            looked = ", ".join(codemod.relative(worktree, p) for p in paths) or "no file"
            return codemod.decline(
                "docker_lifecycle: no docker pause/stop without a guaranteed restore found, and "
                f"no failed pause of a missing container to simulate (looked at {looked})"
            )
        return Proposal(
            explanation=(
                "Tests that pause or stop containers now leave them as they found them (a failing "
                "assertion can't leave them down; where no container exists the outage is "
                "simulated): " + "; ".join(changes) + "."
            )
        )


def _files(order: WorkOrder, worktree: Path) -> list[Path]:
    """The failures' files, the conftests next to them (fixtures often do the pausing) and the
    test files that name the containers the failures found broken (the pausing test often
    passes: it is its victims that fail)."""
    paths = codemod.candidate_files(order, worktree)
    names = set(BROKEN.findall(codemod.failure_text(order)))
    for path in codemod.python_files(worktree):
        is_test = path.name.startswith("test_") or path.name == "conftest.py"
        if is_test and path not in paths and any(n in path.read_text("utf-8") for n in names):
            paths.append(path)
    for path in list(paths):
        conftest = codemod.resolve_inside(
            worktree, Path(codemod.relative(worktree, path)).parent / "conftest.py"
        )
        if conftest is not None and conftest.is_file() and conftest not in paths:
            paths.append(conftest)
    return paths


def _restore_of(pause: Action, stmt: cst.CSTNode, helpers: set[str]) -> bool:
    found = find_action(stmt, helpers)
    return (
        found is not None
        and found.verb == RESTORE[pause.verb]
        and found.container == pause.container
    )


def _guard(func: cst.FunctionDef, helpers: set[str]) -> tuple[cst.FunctionDef, list[str], set[str]]:
    """The function with every unguarded pause/stop followed by try/finally restore + wait."""
    body = syntax.statements(func)
    notes: list[str] = []
    kinds: set[str] = set()
    index = 0
    while index < len(body):
        pause = find_action(body[index], helpers)
        if pause is None or pause.verb not in RESTORE or isinstance(body[index], cst.Try):
            index += 1
            continue
        later = body[index + 1 :]
        guarded = any(
            isinstance(s, cst.Try) and s.finalbody and _restore_of(pause, s.finalbody, helpers)
            for s in later
        )
        if guarded:
            index += 1
            continue
        at = next(
            (
                i
                for i, s in enumerate(later)
                if _restore_of(pause, s, helpers) and not isinstance(s, cst.Try)
            ),
            None,
        )
        restore = later[at] if at is not None else pause.restore()
        inner = later[:at] if at is not None else later
        rest = later[at + 1 :] if at is not None else []
        finally_body = [restore, pause.wait()]
        block: list[cst.BaseStatement]
        if inner:
            block = [
                cst.Try(
                    body=cst.IndentedBlock(inner),
                    finalbody=cst.Finally(cst.IndentedBlock(finally_body)),
                )
            ]
        else:
            block = finally_body
        body = [*body[: index + 1], *block, *rest]
        notes.append(f"{pause.verb} {pause.container} in {func.name.value}")
        kinds.add("sdk" if pause.kind == "sdk" else "cli")
        index += 1 + len(block)
    return (syntax.with_body(func, body) if notes else func), notes, kinds


def _fix_file(worktree: Path, path: Path, known: set[str]) -> list[str]:
    """Guard the file's pauses; `known`: the docker helpers its conftests define."""
    module = syntax.parse(path)
    if module is None or ("pause" not in module.code and "stop" not in module.code):
        return []
    helpers = known | docker_helpers([module])
    replacements: dict[cst.CSTNode, cst.CSTNode] = {}
    notes: list[str] = []
    kinds: set[str] = set()
    for func, _ in syntax.functions(module):
        new, found, used = _guard(func, helpers)
        if found:
            replacements[func] = new
            notes += found
            kinds |= used
    if not replacements:
        return []
    module = syntax.replace_nodes(module, replacements)
    defined = {f.name.value for f, _ in syntax.functions(module)}
    for kind, name, source in (
        ("cli", "_wait_until_running", CLI_WAIT),
        ("sdk", "_wait_until_running_sdk", SDK_WAIT),
    ):
        if kind in kinds and name not in defined:
            module = syntax.append_code(module, source)
    module = syntax.with_import(module, "time")
    if "cli" in kinds:
        module = syntax.with_import(module, "subprocess")
    syntax.write(path, module)
    where = codemod.relative(worktree, path)
    return [f"{where}: {', '.join(notes)} restored in `finally` and waited for until running"]
