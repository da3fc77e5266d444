"""Make tests that pause or stop containers always bring them back.

`docker pause cos_redis; <assertions>; docker unpause cos_redis` leaves the container paused for
every later test (and for the next run) as soon as an assertion fails. The restore moves into a
`finally` (a fixture's teardown after `yield` included), followed by a bounded wait until the
container runs again, so the next test doesn't race a resuming service.
"""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import libcst.matchers as m

from orchestrator.agents import codemod, syntax
from orchestrator.models import Proposal, WorkOrder

RESTORE = {"pause": "unpause", "stop": "start"}
_RUNNERS = ("run", "call", "check_call", "check_output", "Popen")

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


class DockerLifecycle:
    name = "docker_lifecycle"

    def __init__(self, **kwargs: object) -> None:
        """No settings; unknown keyword arguments are accepted so every specialist loads alike."""

    def propose(self, order: WorkOrder, worktree: Path, feedback: list[str]) -> Proposal:
        changes: list[str] = []
        for path in _files(order, worktree):
            changes += _fix_file(worktree, path)
        if not changes:
            return codemod.decline(
                "docker_lifecycle: no docker pause/stop without a guaranteed restore found"
            )
        return Proposal(
            explanation=(
                "Containers paused or stopped by tests are now restored in `finally` (so a failing "
                "assertion can't leave them down) and waited for until running: "
                + "; ".join(changes)
                + "."
            )
        )


def _files(order: WorkOrder, worktree: Path) -> list[Path]:
    """The failures' files plus the conftests next to them (fixtures often do the pausing)."""
    paths = codemod.candidate_files(order, worktree)
    for path in list(paths):
        conftest = codemod.resolve_inside(
            worktree, Path(codemod.relative(worktree, path)).parent / "conftest.py"
        )
        if conftest is not None and conftest.is_file() and conftest not in paths:
            paths.append(conftest)
    return paths


def _cli_action(call: cst.Call) -> tuple[str, cst.BaseExpression, cst.BaseExpression] | None:
    """(verb, docker executable node, container node) of subprocess.X(["docker", verb, name])."""
    if syntax.dotted(call.func).split(".")[-1] not in _RUNNERS or not call.args:
        return None
    command = call.args[0].value
    if not isinstance(command, cst.List) or len(command.elements) < 3:
        return None
    values = [syntax.string_value(e.value) for e in command.elements]
    if not (values[0] or "").endswith("docker"):
        return None
    for index, value in enumerate(values[1:-1], start=1):
        if value in ("pause", "stop", "unpause", "start"):
            return value, command.elements[0].value, command.elements[index + 1].value
    return None


def _action(stmt: cst.CSTNode) -> tuple[str, str, cst.Call, str] | None:
    """(verb, container key, call, kind) of the first docker action in a statement."""
    for call in syntax.find_all(stmt, m.Call(), cst.Call):
        cli = _cli_action(call)
        if cli is not None:
            return cli[0], cst.Module([]).code_for_node(cli[2]), call, "cli"
        func = call.func
        if (
            isinstance(func, cst.Attribute)
            and func.attr.value in ("pause", "stop", "unpause", "start")
            and not call.args
        ):
            owner = cst.Module([]).code_for_node(func.value)
            if "container" in owner.lower():
                return func.attr.value, owner, call, "sdk"
    return None


def _restore_of(pause: tuple[str, str, cst.Call, str], stmt: cst.CSTNode) -> bool:
    found = _action(stmt)
    return found is not None and found[0] == RESTORE[pause[0]] and found[1] == pause[1]


def _synth_restore(pause: tuple[str, str, cst.Call, str]) -> cst.SimpleStatementLine:
    """The restoring command, written like the pausing one with the verb swapped."""
    verb, _, call, kind = pause
    if kind == "sdk":
        new = call.with_changes(func=call.func.with_changes(attr=cst.Name(RESTORE[verb])))
    else:
        command = call.args[0].value
        assert isinstance(command, cst.List)  # _cli_action() read the command from it
        elements = [
            e.with_changes(value=syntax.with_string(e.value, RESTORE[verb]))
            if isinstance(e.value, cst.SimpleString) and syntax.string_value(e.value) == verb
            else e
            for e in command.elements
        ]
        new = call.with_changes(
            args=[
                call.args[0].with_changes(value=command.with_changes(elements=elements)),
                *call.args[1:],
            ]
        )
    return cst.SimpleStatementLine([cst.Expr(new)])


def _wait_stmt(pause: tuple[str, str, cst.Call, str]) -> cst.SimpleStatementLine:
    verb, key, call, kind = pause
    if kind == "sdk":
        return cst.SimpleStatementLine(
            [cst.Expr(cst.parse_expression(f"_wait_until_running_sdk({key})"))]
        )
    cli = _cli_action(call)
    assert cli is not None  # a "cli" pause is one _cli_action() read
    _, docker, _ = cli
    args = (
        [key]
        if syntax.string_value(docker) == "docker"
        else [key, cst.Module([]).code_for_node(docker)]
    )
    return cst.SimpleStatementLine(
        [cst.Expr(cst.parse_expression(f"_wait_until_running({', '.join(args)})"))]
    )


def _guard(func: cst.FunctionDef) -> tuple[cst.FunctionDef, list[str], set[str]]:
    """The function with every unguarded pause/stop followed by try/finally restore + wait."""
    body = syntax.statements(func)
    notes: list[str] = []
    kinds: set[str] = set()
    index = 0
    while index < len(body):
        pause = _action(body[index])
        if pause is None or pause[0] not in RESTORE or isinstance(body[index], cst.Try):
            index += 1
            continue
        later = body[index + 1 :]
        guarded = any(
            isinstance(s, cst.Try) and s.finalbody and _restore_of(pause, s.finalbody)
            for s in later
        )
        if guarded:
            index += 1
            continue
        at = next(
            (
                i
                for i, s in enumerate(later)
                if _restore_of(pause, s) and not isinstance(s, cst.Try)
            ),
            None,
        )
        restore = later[at] if at is not None else _synth_restore(pause)
        inner = later[:at] if at is not None else later
        rest = later[at + 1 :] if at is not None else []
        finally_body = [restore, _wait_stmt(pause)]
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
        notes.append(f"{pause[0]} {pause[1]} in {func.name.value}")
        kinds.add(pause[3])
        index += 1 + len(block)
    return (syntax.with_body(func, body) if notes else func), notes, kinds


def _fix_file(worktree: Path, path: Path) -> list[str]:
    module = syntax.parse(path)
    if module is None or ("pause" not in module.code and "stop" not in module.code):
        return []
    replacements: dict[cst.CSTNode, cst.CSTNode] = {}
    notes: list[str] = []
    kinds: set[str] = set()
    for func, _ in syntax.functions(module):
        new, found, used = _guard(func)
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
    return [f"{codemod.relative(worktree, path)}: {', '.join(notes)}"]
