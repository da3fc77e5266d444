"""Environment facts: the target's installed distributions and the dependency changes seen.

Part of the vocabulary (`orchestrator.models` re-exports them); kept apart because they carry
their own lookups (a module's distribution, a name's PEP 503 spelling).
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field


class _Model(BaseModel):
    model_config = {"extra": "forbid"}


class PackageChange(_Model):
    """A dependency whose version moved since the last known-good state."""

    name: str
    old: str | None = None  # None: newly added
    new: str | None = None  # None: removed
    source: str = (
        ""  # where it was seen, e.g. "requirements.txt since 1a2b3c4" or "the last handoff"
    )

    def describe(self) -> str:
        if self.old is None:
            return f"{self.name} {self.new} added ({self.source})"
        if self.new is None:
            return f"{self.name} {self.old} removed ({self.source})"
        return f"{self.name} {self.old} -> {self.new} ({self.source})"


class Environment(_Model):
    """What the target's own interpreter has installed, and what changed since it last passed."""

    python: str = ""
    packages: dict[str, str] = Field(default_factory=dict)  # distribution -> version
    modules: dict[str, str] = Field(default_factory=dict)  # top-level module -> its distribution
    changes: list[PackageChange] = Field(default_factory=list)

    def distribution(self, module: str) -> str:
        """The distribution that provides an importable top-level module (`yaml` -> `PyYAML`)."""
        top = module.split(".", 1)[0]
        if top in self.modules:
            return self.modules[top]
        wanted = _canonical(top)
        return next((name for name in self.packages if _canonical(name) == wanted), top)

    def version(self, name: str) -> str | None:
        wanted = _canonical(name)
        return next((v for n, v in self.packages.items() if _canonical(n) == wanted), None)

    def change(self, name: str) -> PackageChange | None:
        wanted = _canonical(name)
        return next((c for c in self.changes if _canonical(c.name) == wanted), None)

    def describe(self, name: str) -> str:
        """'SQLAlchemy 2.1.9 installed (1.4.54 -> 2.1.9 in requirements.txt since 1a2b3c4)'."""
        wanted = _canonical(name)
        name = next((n for n in self.packages if _canonical(n) == wanted), name)  # its spelling
        version = self.version(name)
        change = self.change(name)
        installed = f"{name} {version} installed" if version else f"{name} (version not seen)"
        return f"{installed} ({change.describe()})" if change else installed


def _canonical(name: str) -> str:
    """PEP 503: `SQLAlchemy`, `sqlalchemy` and `Sql_Alchemy` are one distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()
