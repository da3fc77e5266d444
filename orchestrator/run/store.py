"""A run's large artifacts, one JSON file each, outside the graph's checkpoints.

The baseline, the triage report, the plan and the final run grow with the suite; checkpointing
them at every step of the graph made the state database grow with tests x steps. Each is written
once, by the stage that made it, under `<git-dir>/orchestrate/sessions/<session>/`, and read back
by later stages and on `--resume`. The checkpoints hold only what grows with the categories.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from orchestrator.secrets import scrub

M = TypeVar("M", bound=BaseModel)


class SessionStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._cache: dict[str, BaseModel] = {}

    def _path(self, name: str) -> Path:
        return self.directory / f"{name}.json"

    def save(self, name: str, value: BaseModel) -> None:
        """Write `value` atomically: an interrupted run never leaves half a file to resume from."""
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self._path(name).with_suffix(".tmp")
        tmp.write_text(scrub(value.model_dump_json()), encoding="utf-8")
        os.replace(tmp, self._path(name))
        self._cache[name] = value

    def load(self, name: str, cls: type[M]) -> M:
        cached = self._cache.get(name)
        if not isinstance(cached, cls):
            cached = cls.model_validate_json(self._path(name).read_text(encoding="utf-8"))
            self._cache[name] = cached
        return cached

    def get(self, name: str, cls: type[M]) -> M | None:
        """The artifact, or None when no stage has written it (yet)."""
        return self.load(name, cls) if name in self._cache or self._path(name).is_file() else None
