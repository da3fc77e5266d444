"""Keep the developer's machine out of the tests, and build throwaway target repositories."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import MakeRepo, commit_all, write_files


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Test")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "test@example.com")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Test")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "test@example.com")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in (
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "ORCHESTRATOR_MODEL",
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "PYTEST_ADDOPTS",
        "PYTHONPATH",
        "COLUMNS",  # pytest-xdist's workers set 80x24, which Textual would take as the screen size
        "LINES",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def make_repo(tmp_path: Path) -> MakeRepo:
    """Build a committed git repository from {relative path: source}; sources are dedented.

    The repo runs its tests with this interpreter (`[tool.orchestrator] test-cmd`) unless
    `pyproject` is given.
    """
    counter = iter(range(1000))

    def make(
        files: dict[str, str], *, name: str | None = None, pyproject: str | None = None
    ) -> Path:
        repo = tmp_path / (name or f"repo{next(counter)}")
        repo.mkdir()
        if pyproject is None:
            pyproject = (
                f'[tool.orchestrator]\ntest-cmd = "{sys.executable} -m pytest"\n'
                # this interpreter's plugins (langsmith, textual) cost a second per pytest start
                'env = { PYTEST_DISABLE_PLUGIN_AUTOLOAD = "1" }\n'
            )
        write_files(repo, {"pyproject.toml": pyproject, **files})
        commit_all(repo)
        return repo

    return make


@pytest.fixture
def agents(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Register test doubles by name and route categories to them: `agents(unknown=doubles.X)`."""
    import dataclasses

    from orchestrator import categories, specialists

    def route(**by_category: type) -> None:
        for category, cls in by_category.items():
            name = f"double_{cls.__name__}"
            monkeypatch.setitem(specialists.SPECIALISTS, name, f"{cls.__module__}:{cls.__name__}")
            routed = dataclasses.replace(categories.spec(category), specialist=name)
            monkeypatch.setitem(categories.by_id, category, routed)

    return route
