"""A corpus of real-world shapes per category: small repositories written the way real projects
are (FastAPI, Flask, Django, plain SQLAlchemy; pytest functions, unittest classes, module- and
session-scoped fixtures, factories, constants, helpers in conftest or in the test module; sync and
async; requests, httpx, TestClient), each with one category's real failure and the exact code a
careful engineer's fix leaves on the integration branch.

`tests/agents/test_corpus.py` runs every shape through `orchestrate run`; `bench/bench_corpus.py`
prints the fix rate per category and per shape. One module per category defines its `SHAPES`.
"""

from __future__ import annotations

import json
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers import commit_all, write_files


@dataclass(frozen=True)
class Shape:
    """One repository: its files, the failures it has, and what the fix must leave."""

    category: str  # what triage calls the failures
    name: str  # the shape, e.g. "fastapi-module-constant"
    specialist: str  # the offline specialist that takes the category
    files: dict[str, str]  # relative path -> source (dedented)
    fixed: dict[str, str]  # relative path -> its exact text on the integration branch (dedented)
    failing: int  # failing tests at baseline, all fixed afterwards
    plugins: tuple[str, ...] = ()  # pytest plugins the suite loads (`-p`)
    ini: str = ""  # [tool.pytest.ini_options] lines
    isolation: bool = False  # the category needs the isolation stage (it names polluters)
    docker: dict[str, str] = field(default_factory=dict)  # fake docker containers and states

    @property
    def id(self) -> str:
        return f"{self.category}/{self.name}"

    def pyproject(self) -> str:
        plugins = "".join(f" -p {p}" for p in self.plugins)
        command = f"{sys.executable} -m pytest{plugins}"
        text = (
            f"[tool.orchestrator]\ntest-cmd = {json.dumps(command)}\n"
            'env = { PYTEST_DISABLE_PLUGIN_AUTOLOAD = "1" }\n'
        )
        return text + (f"\n[tool.pytest.ini_options]\n{self.ini}" if self.ini else "")

    def expected(self, path: str) -> str:
        return textwrap.dedent(self.fixed[path]).lstrip("\n")

    def build(self, root: Path) -> Path:
        """The shape as a committed git repository at `root`."""
        root.mkdir(parents=True)
        write_files(
            root, {"pyproject.toml": self.pyproject(), ".gitignore": "*.db\n", **self.files}
        )
        commit_all(root)
        return root


def all_shapes() -> list[Shape]:
    from tests.corpus import (
        api_conflict,
        api_routing,
        async_event_loop,
        collection_error,
        db_schema,
        docker_lifecycle,
        mock_not_called,
        model_defaults,
        pollution,
        uuid_type,
        validation_error,
    )

    modules = (
        api_conflict, api_routing, async_event_loop, collection_error, db_schema,
        docker_lifecycle, mock_not_called, model_defaults, pollution, uuid_type,
        validation_error,
    )  # fmt: skip
    return [shape for module in modules for shape in module.SHAPES]
