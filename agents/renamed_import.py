"""Collection errors from a renamed or moved name: the import follows the name to where it is now.

`ImportError: cannot import name 'compute_total' from 'shop.pricing'` after `compute_total`
became `calculate_total`: the module's close matches are the candidates, and the rename is taken
only when it is verified: one candidate of the same kind (class or function), whose signature
accepts every call the importing file makes. A name that left its module (`No module named
'shop.utils'`, or no close match there) is looked for by its exact name in the rest of the project,
and taken when exactly one module defines it. `module 'x' has no attribute 'Y'` is read the same
way for `x.Y` at import time.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

import libcst as cst
import libcst.matchers as m
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor

from orchestrator.agents import codemod, syntax
from orchestrator.models import Proposal, WorkOrder

CANNOT_IMPORT = re.compile(r"cannot import name '(\w+)' from '([\w.]+)'")
NO_MODULE = re.compile(r"No module named '([\w.]+)'")
NO_ATTRIBUTE = re.compile(r"module '([\w.]+)' has no attribute '(\w+)'")
CUTOFF = 0.6
MARGIN = 0.1  # the best match must be this much closer than the next to be taken


class RenamedImport:
    name = "renamed_import"

    def __init__(self, **kwargs: object) -> None:
        """No settings; unknown keyword arguments are accepted so every specialist loads alike."""

    def propose(self, order: WorkOrder, worktree: Path, feedback: list[str]) -> Proposal:
        files = codemod.Files(worktree)
        changes: list[str] = []
        problems: list[str] = []
        for failure in order.failures:
            text = f"{failure.message}\n{failure.longrepr or ''}"
            rel = codemod.split_nodeid(failure.nodeid)[0]
            targets = [rel] + [p for p in codemod.traceback_paths(text) if p != rel]
            for path in [p for p in targets if files.exists(p)][:3]:
                done = _fix(files, path, text, problems)
                if done:
                    changes.append(done)
                    break
        if not changes:
            reason = "; ".join(dict.fromkeys(problems)) or "no missing name or module in the errors"
            return codemod.decline(f"renamed_import: {reason}")
        return Proposal(
            explanation="Imports follow names that were renamed or moved: "
            + "; ".join(dict.fromkeys(changes))
            + "."
        )


def _fix(files: codemod.Files, rel: str, text: str, problems: list[str]) -> str | None:
    module = files.parse(rel)
    if module is None:
        return None
    if (found := CANNOT_IMPORT.search(text)) is not None:
        old, source = found[1], found[2]
        renamed = _renamed(files, module, source, old, problems)
        if renamed is not None:
            files.write(rel, _rename_import(module, source, old, renamed))
            return f"{rel}: {source}.{old} is now {source}.{renamed}"
        moved = _moved(files, old, source, problems)
        if moved is not None:
            files.write(rel, _move_import(module, source, old, moved))
            return f"{rel}: {old} moved from {source} to {moved}"
    if (found := NO_MODULE.search(text)) is not None:
        source = found[1]
        names = _imported_from(module, source)
        homes = {n: _moved(files, n, source, problems) for n in names}
        if names and len(set(homes.values())) == 1 and None not in homes.values():
            home = next(iter(homes.values()))
            assert home is not None
            files.write(rel, _move_module(module, source, home))
            return f"{rel}: {', '.join(names)} moved from {source} (gone) to {home}"
    if (found := NO_ATTRIBUTE.search(text)) is not None:
        source, old = found[1], found[2]
        renamed = _renamed(files, module, source, old, problems)
        if renamed is not None:
            files.write(rel, cst.ensure_type(module.visit(_RenameAttr(old, renamed)), cst.Module))
            return f"{rel}: {source}.{old} is now {source}.{renamed}"
    return None


def _definitions(tree: cst.Module) -> dict[str, cst.CSTNode]:
    """Top-level names a module defines: functions, classes, assignments."""
    found: dict[str, cst.CSTNode] = {}
    for stmt in tree.body:
        if isinstance(stmt, cst.FunctionDef | cst.ClassDef):
            found[stmt.name.value] = stmt
        for small in stmt.body if isinstance(stmt, cst.SimpleStatementLine) else []:
            if isinstance(small, cst.Assign):
                for t in small.targets:
                    if isinstance(t.target, cst.Name):
                        found[t.target.value] = small
    return found


def _renamed(
    files: codemod.Files, module: cst.Module, source: str, old: str, problems: list[str]
) -> str | None:
    """The one close match of `old` in `source` that fits how the file uses it."""
    path = codemod.module_file(files.root, source)
    tree = syntax.parse(path) if path is not None else None
    if tree is None:
        return None
    defined = _definitions(tree)
    close = difflib.get_close_matches(old, list(defined), n=5, cutoff=CUTOFF)
    fitting = [
        c
        for c in close
        if _same_kind(old, defined[c]) and _accepts(defined[c], _calls(module, old))
    ]
    score = {c: difflib.SequenceMatcher(None, old, c).ratio() for c in fitting}
    if len(fitting) == 1 or (fitting and score[fitting[0]] - score[fitting[1]] >= MARGIN):
        return fitting[0]
    if close:
        problems.append(
            f"{source}.{old}: close matches {', '.join(close)}, but "
            + ("none fits how the file calls it" if not fitting else f"{len(fitting)} fit as well")
        )
    return None


def _same_kind(old: str, node: cst.CSTNode) -> bool:
    """A class stays a class (CapWords), a function a function."""
    is_class = isinstance(node, cst.ClassDef)
    return is_class == old[:1].isupper() or not isinstance(node, cst.FunctionDef | cst.ClassDef)


def _calls(module: cst.Module, name: str) -> list[cst.Call]:
    return [
        c
        for c in syntax.find_all(module, m.Call(), cst.Call)
        if syntax.dotted(c.func).split(".")[-1] == name
    ]


def _accepts(node: cst.CSTNode, calls: list[cst.Call]) -> bool:
    """Whether a function's signature takes every call (positional count, keyword names)."""
    if not isinstance(node, cst.FunctionDef):
        return True
    params = node.params
    names = [p.name.value for p in [*params.posonly_params, *params.params, *params.kwonly_params]]
    positional = len(params.posonly_params) + len(params.params)
    required = sum(1 for p in [*params.posonly_params, *params.params] if p.default is None)
    for call in calls:
        given = [a for a in call.args if a.keyword is None and not a.star]
        keywords = [a.keyword.value for a in call.args if a.keyword is not None]
        if isinstance(params.star_arg, cst.MaybeSentinel) and len(given) > positional:
            return False
        if params.star_kwarg is None and any(k not in names for k in keywords):
            return False
        if not any(a.star for a in call.args) and len(given) + len(keywords) < required:
            return False
    return True


def _moved(files: codemod.Files, name: str, source: str, problems: list[str]) -> str | None:
    """The one other project module that defines `name`."""
    homes = []
    for rel in files.python_files():
        if (
            f"def {name}" not in (text := files.read(rel))
            and f"class {name}" not in text
            and f"{name} =" not in text
        ):
            continue
        tree = files.parse(rel)
        dotted = codemod.module_name(files, rel)
        if (
            tree is not None
            and name in _definitions(tree)
            and dotted != source
            and not _is_test(rel)
        ):
            homes.append(dotted)
    if len(homes) == 1:
        return homes[0]
    if len(homes) > 1:
        problems.append(f"{name} is defined in {', '.join(homes)}: can't tell where it moved")
    return None


def _is_test(rel: str) -> bool:
    name = Path(rel).name
    return name.startswith("test_") or name == "conftest.py"


def _imported_from(module: cst.Module, source: str) -> list[str]:
    return [
        syntax.dotted(alias.name)
        for node in syntax.find_all(module, m.ImportFrom(), cst.ImportFrom)
        if syntax.dotted(node.module) == source and not isinstance(node.names, cst.ImportStar)
        for alias in node.names
    ]


def _rename_import(module: cst.Module, source: str, old: str, new: str) -> cst.Module:
    """`from source import old` -> `... import new`, and every use of `old` in the file."""
    return cst.ensure_type(module.visit(_RenameName(source, old, new)), cst.Module)


class _RenameName(cst.CSTTransformer):
    def __init__(self, source: str, old: str, new: str) -> None:
        super().__init__()
        self.source, self.old, self.new = source, old, new
        self.aliased = False

    def leave_ImportAlias(self, original: cst.ImportAlias, updated: cst.ImportAlias) -> Any:
        if syntax.dotted(original.name) == self.old:
            self.aliased = self.aliased or original.asname is not None
            return updated.with_changes(name=cst.Name(self.new))
        return updated

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> Any:
        return (
            updated.with_changes(value=self.new)
            if original.value == self.old and not self.aliased
            else updated
        )

    def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> Any:
        return updated.with_changes(attr=original.attr)  # `x.old` is another object's attribute


class _RenameAttr(cst.CSTTransformer):
    def __init__(self, old: str, new: str) -> None:
        super().__init__()
        self.old, self.new = old, new

    def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> Any:
        if original.attr.value == self.old:
            return updated.with_changes(attr=cst.Name(self.new))
        return updated


def _move_import(module: cst.Module, source: str, name: str, home: str) -> cst.Module:
    """`from source import a, name` -> `from source import a` + `from home import name`."""

    class Drop(cst.CSTTransformer):
        def leave_ImportFrom(self, original: cst.ImportFrom, updated: cst.ImportFrom) -> Any:
            if syntax.dotted(original.module) != source or isinstance(
                updated.names, cst.ImportStar
            ):
                return updated
            kept = [a for a in updated.names if syntax.dotted(a.name) != name]
            if not kept:
                return cst.RemoveFromParent()
            kept[-1] = kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
            return updated.with_changes(names=kept)

    context = CodemodContext()
    AddImportsVisitor.add_needed_import(context, home, name)
    return AddImportsVisitor(context).transform_module(module.visit(Drop()))


def _move_module(module: cst.Module, source: str, home: str) -> cst.Module:
    class Swap(cst.CSTTransformer):
        def leave_ImportFrom(self, original: cst.ImportFrom, updated: cst.ImportFrom) -> Any:
            if syntax.dotted(original.module) == source:
                return updated.with_changes(module=cst.parse_expression(home))
            return updated

    return cst.ensure_type(module.visit(Swap()), cst.Module)
