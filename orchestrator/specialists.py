"""The specialist seam: the protocol every agent keeps, and agents loaded by name on demand.

A specialist gets a work order, a worktree (a checkout of the base commit on its own branch) and
the feedback of earlier rejected attempts. It edits files inside the worktree and returns a
`Proposal`, or declines with its reason. It never commits and never touches anything outside the
worktree: the orchestrator commits, verifies and merges. Which category a specialist takes is
its `CategorySpec`'s business (orchestrator/categories/specs.py).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from orchestrator.models import Proposal, WorkOrder

DEFAULT_MODEL = "claude-sonnet-5-5"  # the model specialist's, unless --model or ORCHESTRATOR_MODEL
GUESS_MODEL = "claude-haiku-5-5"  # one cheap call naming an `unknown` group


@runtime_checkable
class Specialist(Protocol):
    name: str

    def propose(self, order: WorkOrder, worktree: Path, feedback: list[str]) -> Proposal:
        """Edit files under `worktree` to fix the order's tests, or return a declined Proposal."""
        ...


# Specialist name -> "module:Class"; imported only when dispatched (libcst, anthropic cost nothing
# until then). The agents package imports the core, never the reverse.
SPECIALISTS: dict[str, str] = {
    "model_defaults": "orchestrator.agents.model_defaults:ModelDefaults",
    "uuid_type": "orchestrator.agents.uuid_type:UuidType",
    "api_conflict": "orchestrator.agents.api_conflict:ApiConflict",
    "async_event_loop": "orchestrator.agents.async_event_loop:AsyncEventLoop",
    "patch_target": "orchestrator.agents.patch_target:PatchTarget",
    "test_pollution": "orchestrator.agents.test_pollution:TestPollution",
    "db_schema": "orchestrator.agents.db_schema:DbSchema",
    "docker_lifecycle": "orchestrator.agents.docker_lifecycle:DockerLifecycle",
    "dependency_upgrade": "orchestrator.agents.dependency_upgrade:DependencyUpgrade",
    "test_framework_contract": "orchestrator.agents.pytest_contract:PytestContract",
    "api_routing": "orchestrator.agents.api_routing:ApiRouting",
    "renamed_import": "orchestrator.agents.renamed_import:RenamedImport",
    "llm": "orchestrator.agents.llm:LLMSpecialist",
}
GUESSER = "orchestrator.agents.llm:guess_category"  # names an `unknown` group (one cheap call)


def load(target: str) -> Any:
    """The object a "module:attribute" path names, imported now."""
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def load_specialist(name: str, **kwargs: Any) -> Specialist:
    """Import and build a specialist by name (heavy imports happen only here)."""
    try:
        target = SPECIALISTS[name]
    except KeyError:
        known = ", ".join(sorted(SPECIALISTS))
        raise KeyError(f"unknown specialist {name!r} (known: {known})") from None
    specialist: Specialist = load(target)(**kwargs)
    return specialist
