"""Adapt tests to what pytest 8 and pytest-asyncio 1.x call and accept, with libcst:

- nose-style `setup`/`teardown` (methods, and module functions), which pytest 8 no longer calls,
  become `setup_method`/`teardown_method` (`setup_module`/`teardown_module`);
- `pytest.warns(None)`, which pytest 8 rejects, becomes `warnings.catch_warnings(record=True)`
  recording every warning (as `pytest.warns(None)` did);
- a test or fixture asking for pytest-asyncio's removed `event_loop` fixture gets the running loop
  (`asyncio.get_running_loop()`) when it is async, and a loop of its own, closed after it, when not.

Only the failing tests' files and their conftests are edited, and only for the contract their
failures show (the work order's cause).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import libcst as cst

from orchestrator.agents.codemod import Files, decline, failure_text, test_files
from orchestrator.agents.syntax import NO_SPACES, dotted, param_names, with_import
from orchestrator.models import Proposal, WorkOrder

NOSE_RENAMES = {
    True: {"setup": "setup_method", "teardown": "teardown_method"},  # in a class
    False: {"setup": "setup_module", "teardown": "teardown_module"},  # at module level
}
XUNIT = frozenset({"setup_method", "teardown_method", "setup_module", "teardown_module"})


class PytestContract:
    name = "test_framework_contract"

    def __init__(self, **kwargs: Any) -> None:
        """No options: this specialist is a deterministic codemod."""

    def propose(self, order: WorkOrder, worktree: Path, feedback: list[str]) -> Proposal:
        files = Files(worktree)
        kind = order.cause or _kind_from_text(failure_text(order))
        fix = FIXES.get(kind)
        if fix is None:
            return decline(
                f"No codemod for the contract change {kind or '(not named)'}: it needs a person "
                "or the model."
            )
        done: list[str] = []
        for path in test_files(order, files):
            module = files.parse(path)
            if module is None:
                continue
            changed = fix(module)
            if changed is not None:
                files.write(path, changed)
                done.append(path)
        if not done:
            return decline(f"{EXPLAIN[kind]}, but none of the failing tests' files does it.")
        return Proposal(explanation=f"{EXPLAIN[kind]}: rewrote {', '.join(done)}.")


def _kind_from_text(text: str) -> str:
    if "exceptions must be derived from Warning" in text or "pytest.warns(None)" in text:
        return "warns-none"
    if "fixture 'event_loop' not found" in text:
        return "event-loop"
    return "nose-setup"


# --- nose-style setup -----------------------------------------------------------------------------


def nose_to_xunit(module: cst.Module) -> cst.Module | None:
    """setup/teardown renamed where pytest 8 would call the xunit names; None: nothing to do."""
    changed = False

    def rename(body: list[cst.BaseStatement], in_class: bool) -> list[cst.BaseStatement]:
        nonlocal changed
        names = {n.name.value for n in body if isinstance(n, cst.FunctionDef)}
        if names & XUNIT:
            return body
        renames = NOSE_RENAMES[in_class]
        out = []
        for node in body:
            if isinstance(node, cst.FunctionDef) and node.name.value in renames:
                node = node.with_changes(name=cst.Name(renames[node.name.value]))
                changed = True
            out.append(node)
        return out

    body = rename(list(module.body), in_class=False)
    new_body = []
    for node in body:
        if (
            isinstance(node, cst.ClassDef)
            and isinstance(node.body, cst.IndentedBlock)
            and not _is_unittest(node)
        ):
            inner = rename(list(node.body.body), in_class=True)
            node = node.with_changes(body=node.body.with_changes(body=inner))
        new_body.append(node)
    return module.with_changes(body=new_body) if changed else None


def _is_unittest(node: cst.ClassDef) -> bool:
    return any(dotted(b.value).endswith("TestCase") for b in node.bases)


# --- pytest.warns(None) ---------------------------------------------------------------------------


class _WarnsNone(cst.CSTTransformer):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def leave_With(self, original: cst.With, updated: cst.With) -> cst.With:
        items = []
        found = False
        for item in updated.items:
            call = item.item
            if (
                isinstance(call, cst.Call)
                and dotted(call.func) in ("pytest.warns", "warns")
                and len(call.args) == 1
                and isinstance(call.args[0].value, cst.Name)
                and call.args[0].value.value == "None"
            ):
                record = cst.Arg(
                    keyword=cst.Name("record"), value=cst.Name("True"), equal=NO_SPACES
                )
                recorder = cst.Call(
                    func=cst.parse_expression("warnings.catch_warnings"), args=[record]
                )
                item = item.with_changes(item=recorder)
                found = True
            items.append(item)
        if not found or not isinstance(updated.body, cst.IndentedBlock):
            return updated
        self.count += 1
        always = cst.parse_statement('warnings.simplefilter("always")\n')
        body = updated.body.with_changes(body=[always, *updated.body.body])
        return updated.with_changes(items=items, body=body)


def warns_none(module: cst.Module) -> cst.Module | None:
    transformer = _WarnsNone()
    new = module.visit(transformer)
    return with_import(new, "warnings") if transformer.count else None


# --- pytest-asyncio's event_loop fixture ----------------------------------------------------------


class _EventLoop(cst.CSTTransformer):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def leave_FunctionDef(
        self, original: cst.FunctionDef, updated: cst.FunctionDef
    ) -> cst.FunctionDef:
        if "event_loop" not in param_names(updated) or updated.name.value == "event_loop":
            return updated
        if not isinstance(updated.body, cst.IndentedBlock):
            return updated
        params = updated.params.with_changes(
            params=[p for p in updated.params.params if p.name.value != "event_loop"]
        )
        self.count += 1
        if updated.asynchronous is not None:
            first = cst.parse_statement("event_loop = asyncio.get_running_loop()\n")
            body = [first, *updated.body.body]
        else:
            first = cst.parse_statement("event_loop = asyncio.new_event_loop()\n")
            guarded = cst.Try(
                body=cst.IndentedBlock(body=list(updated.body.body)),
                finalbody=cst.Finally(
                    body=cst.IndentedBlock(body=[cst.parse_statement("event_loop.close()\n")])
                ),
            )
            body = [first, guarded]
        return updated.with_changes(params=params, body=updated.body.with_changes(body=body))


def event_loop(module: cst.Module) -> cst.Module | None:
    transformer = _EventLoop()
    new = module.visit(transformer)
    return with_import(new, "asyncio") if transformer.count else None


FIXES = {"nose-setup": nose_to_xunit, "warns-none": warns_none, "event-loop": event_loop}
EXPLAIN = {
    "nose-setup": "pytest 8 no longer calls nose-style setup()/teardown(); renamed them to the "
    "xunit names it calls (setup_method/teardown_method, setup_module/teardown_module)",
    "warns-none": "pytest 8 rejects pytest.warns(None); recording warnings with "
    "warnings.catch_warnings(record=True) and simplefilter('always') instead",
    "event-loop": "pytest-asyncio 1.0 removed the event_loop fixture; async tests take the running "
    "loop, sync ones a loop of their own",
}
