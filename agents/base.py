"""The specialist protocol and the registry that maps categories to specialists.

A specialist gets a work order, a worktree (a checkout of the base commit on its own branch) and
the feedback of earlier rejected attempts. It edits files inside the worktree and returns a
`Proposal`, or declines with its reason. It never commits, never runs a shell, and never touches
anything outside the worktree: the orchestrator commits, verifies and merges.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from orchestrator.models import Proposal, WorkOrder

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"


@runtime_checkable
class Specialist(Protocol):
    name: str

    def propose(self, order: WorkOrder, worktree: Path, feedback: list[str]) -> Proposal:
        """Edit files under `worktree` to fix the order's tests, or return a declined Proposal."""
        ...


# Specialist name -> "module:Class"; imported only when dispatched.
SPECIALISTS: dict[str, str] = {
    "model_defaults": "agents.model_defaults:ModelDefaults",
    "uuid_type": "agents.uuid_type:UuidType",
    "api_conflict": "agents.api_conflict:ApiConflict",
    "async_event_loop": "agents.async_event_loop:AsyncEventLoop",
    "patch_target": "agents.patch_target:PatchTarget",
    "test_pollution": "agents.test_pollution:TestPollution",
    "db_schema": "agents.db_schema:DbSchema",
    "docker_lifecycle": "agents.docker_lifecycle:DockerLifecycle",
    "llm": "agents.llm:LLMSpecialist",
}

# Category id -> the deterministic specialist that takes it. Categories not listed go to "llm".
CATEGORY_AGENT: dict[str, str] = {
    "model_defaults": "model_defaults",
    "uuid_type": "uuid_type",
    "validation_error": "uuid_type",
    "api_conflict": "api_conflict",
    "async_event_loop": "async_event_loop",
    "mock_not_called": "patch_target",
    "test_isolation": "test_pollution",
    "db_schema": "db_schema",
    "docker_lifecycle": "docker_lifecycle",
}


def agent_for(category: str) -> str:
    """The specialist that takes a category: its deterministic one, else the model."""
    return CATEGORY_AGENT.get(category, "llm")


def load_specialist(name: str, **kwargs: Any) -> Specialist:
    """Import and build a specialist by name (heavy imports happen only here)."""
    try:
        target = SPECIALISTS[name]
    except KeyError:
        known = ", ".join(sorted(SPECIALISTS))
        raise KeyError(f"unknown specialist {name!r} (known: {known})") from None
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(**kwargs)


def prompt_text(name: str) -> str:
    """The specialist's prompt (mission, recognising the cause, fix strategy, what not to do)."""
    path = PROMPTS_DIR / f"{name}.md"
    return path.read_text(encoding="utf-8")
