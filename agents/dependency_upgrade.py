"""Migrate code to what an upgraded dependency now offers, chosen by what the traceback shows.

The work order names the package (its cause) and the environment its versions. numpy goes to
ruff's NPY201 autofix, pydantic to bump-pydantic (plus `skip_on_failure=True` on v1 root
validators, which v2 otherwise rejects), Django to django-upgrade, SQLAlchemy to our own libcst
rewrites (sqlalchemy2.py). Anything else is declined, with the versions, for the model.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import libcst as cst

from orchestrator.agents import sqlalchemy2
from orchestrator.agents.codemod import Files, candidate_files, decline, failure_text, relative
from orchestrator.agents.migration_tools import (
    ToolMissing,
    bump_pydantic,
    django_upgrade,
    ruff_fix,
)
from orchestrator.agents.syntax import NO_SPACES, dotted
from orchestrator.models import Proposal, WorkOrder

Migrate = Callable[[WorkOrder, Files], Proposal]


class DependencyUpgrade:
    name = "dependency_upgrade"

    def __init__(self, **kwargs: Any) -> None:
        """No options: the migrations are the ecosystem's tools and deterministic codemods."""

    def propose(self, order: WorkOrder, worktree: Path, feedback: list[str]) -> Proposal:
        package = order.cause or "a dependency"
        migrate = MIGRATIONS.get(_canonical(package))
        versions = _versions(order, package)
        if migrate is None:
            return decline(
                f"No migration tool or codemod covers {package}{versions}: the calls must be "
                "migrated by hand or by the model (see the package's changelog)."
            )
        try:
            proposal = migrate(order, Files(worktree))
        except ToolMissing as exc:
            return decline(f"{package}{versions}: {exc}.")
        if not proposal.declined:
            proposal.explanation = f"{package}{versions}: {proposal.explanation}"
        return proposal


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _versions(order: WorkOrder, package: str) -> str:
    env = order.environment
    if env is None:
        return ""
    change = env.change(package)
    if change and change.old and change.new:
        return f" ({change.old} -> {change.new})"
    version = env.version(package)
    return f" ({version} installed)" if version else ""


def _project_files(files: Files) -> list[str]:
    return list(files.python_files())


# --- numpy ------------------------------------------------------------------------------------


def _numpy(order: WorkOrder, files: Files) -> Proposal:
    run = ruff_fix(files.root, _project_files(files), "NPY001,NPY201")
    if not run.changed:
        return decline(
            "ruff's NPY001 and NPY201 found no removed numpy alias to rewrite; the failures come from "
            f"another change ({run.output or 'no output'})."
        )
    return Proposal(
        explanation=f"ruff --select NPY001,NPY201 --fix rewrote the removed numpy names in {', '.join(run.changed)}."
    )


# --- pydantic ---------------------------------------------------------------------------------


def _pydantic(order: WorkOrder, files: Files) -> Proposal:
    packages = _top_dirs(files, order)
    run = bump_pydantic(files.root, packages)
    fixed = _root_validators(files)
    changed = list(dict.fromkeys([*run.changed, *fixed]))
    if not changed:
        return decline(f"bump-pydantic changed nothing in {', '.join(packages)}.")
    extra = f"; @root_validator given skip_on_failure=True in {', '.join(fixed)}" if fixed else ""
    return Proposal(
        explanation=f"bump-pydantic migrated {', '.join(run.changed) or 'nothing'} to Pydantic v2{extra}."
    )


def _top_dirs(files: Files, order: WorkOrder) -> list[str]:
    """The top-level directories (or files) holding the failures' code."""
    tops: list[str] = []
    for path in candidate_files(order, files.root):
        top = relative(files.root, path).split("/", 1)[0]
        if top not in tops:
            tops.append(top)
    return tops or ["."]


class _RootValidator(cst.CSTTransformer):
    """v2 rejects a post `@root_validator` without `skip_on_failure=True`."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def leave_Decorator(self, original: cst.Decorator, updated: cst.Decorator) -> cst.Decorator:
        node = updated.decorator
        call = node if isinstance(node, cst.Call) else None
        name = dotted(call.func if call else node)
        if name.rsplit(".", 1)[-1] != "root_validator":
            return updated
        args = list(call.args) if call else []
        keywords = {a.keyword.value for a in args if a.keyword}
        if keywords & {"pre", "skip_on_failure"}:
            return updated
        skip = cst.Arg(keyword=cst.Name("skip_on_failure"), value=cst.Name("True"), equal=NO_SPACES)
        self.count += 1
        func = call.func if call else node
        return updated.with_changes(decorator=cst.Call(func=func, args=[*args, skip]))


def _root_validators(files: Files) -> list[str]:
    changed = []
    for path in files.python_files():
        if "root_validator" not in files.read(path):
            continue
        module = files.parse(path)
        if module is None:
            continue
        transformer = _RootValidator()
        new = module.visit(transformer)
        if transformer.count:
            files.write(path, new)
            changed.append(path)
    return changed


# --- Django -----------------------------------------------------------------------------------


def _django(order: WorkOrder, files: Files) -> Proposal:
    version = order.environment.version("Django") if order.environment else None
    run = django_upgrade(files.root, _project_files(files), version)
    if not run.changed:
        return decline(f"django-upgrade found nothing to rewrite for Django {version or '?'}.")
    return Proposal(
        explanation=f"django-upgrade --target-version {version or 'auto'} rewrote {', '.join(run.changed)}."
    )


# --- SQLAlchemy -------------------------------------------------------------------------------


def _sqlalchemy(order: WorkOrder, files: Files) -> Proposal:
    found = sqlalchemy2.findings(failure_text(order))
    if not found.any:
        return decline(
            "The failures show none of SQLAlchemy 2.0's removals this codemod handles "
            "(select([...]), engine.execute(), plain SQL strings)."
        )
    done: dict[str, set[str]] = {}
    skipped: list[str] = []
    for path in [relative(files.root, p) for p in candidate_files(order, files.root)]:
        module = files.parse(path)
        if module is None:
            continue
        new, rewrite = sqlalchemy2.rewrite(module, found)
        skipped += [f"{path}: {why}" for why in rewrite.skipped]
        if rewrite.done:
            files.write(path, new)
            done[path] = rewrite.done
    if not done:
        why = f" ({'; '.join(skipped)})" if skipped else ""
        return decline(f"Nothing in the failures' files matched the SQLAlchemy 2.0 removals{why}.")
    parts = [f"{path}: {', '.join(sorted(kinds))}" for path, kinds in done.items()]
    left = f" Left for a person: {'; '.join(skipped)}." if skipped else ""
    return Proposal(explanation=f"Rewrote SQLAlchemy 1.x calls for 2.0 ({'; '.join(parts)}).{left}")


MIGRATIONS: dict[str, Migrate] = {
    "numpy": _numpy,
    "pydantic": _pydantic,
    "django": _django,
    "sqlalchemy": _sqlalchemy,
}
