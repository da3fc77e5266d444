"""Every corpus shape through `orchestrate run --agents <its specialist>`, offline.

Each shape is a real repository with its category's real failure; the run goes through triage,
the specialist, the verifier and integration. The test asserts what a reviewer would: every
failing test passes on the integration branch, nothing else broke, exactly the expected files
changed and each holds exactly the expected code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.agents.test_specialists_e2e import agent, assert_all_fixed, git_branches, run, show
from tests.corpus import Shape, all_shapes
from tests.helpers.fake_docker import fake_docker

SHAPES = all_shapes()


def assert_fixed(report: dict, shape: Shape) -> dict:
    """`assert_all_fixed`; a module that failed to collect runs all its tests afterwards."""
    if shape.category != "collection_error":
        return assert_all_fixed(report, shape.category, shape.failing)
    result = agent(report, shape.category)
    assert (result["status"], len(result["fixed"])) == ("accepted", shape.failing), result
    assert result["branch"] in git_branches(report)
    before, after = report["before"], report["after"]
    assert before["errors"] == shape.failing, before
    assert after["failed"] == after["errors"] == 0 and after["passed"] == after["total"], after
    assert after["total"] >= before["total"], after  # the module's tests are collected again
    return result


@pytest.mark.parametrize("shape", SHAPES, ids=[s.id for s in SHAPES])
def test_corpus_shape_is_fixed_exactly(
    shape: Shape, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shape.docker:
        _, state = fake_docker(tmp_path, shape.docker)
        monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.setenv("ORCHESTRATE_WRITABLE", str(state.parent))  # the daemon's state, shared
    repo = shape.build(tmp_path / "repo")
    report = run(repo, tmp_path, capsys, "--agents", shape.specialist, isolation=shape.isolation)
    result = assert_fixed(report, shape)
    assert sorted(result["files_changed"]) == sorted(shape.fixed), result["explanation"]
    for path in shape.fixed:
        assert show(repo, report, path) + "\n" == shape.expected(path), path
    if shape.docker:
        assert set(json.loads(state.read_text())["containers"].values()) <= {"running"}


def test_every_offline_specialist_loads_and_has_its_prompt() -> None:
    from orchestrator import categories
    from orchestrator.agents.llm import prompt_text
    from orchestrator.specialists import load_specialist

    for name in {s.specialist for s in categories.CATEGORIES if s.specialist}:
        assert load_specialist(name).name == name
        text = prompt_text(name)
        assert "## Mission" in text and "## What not to do" in text, name


def test_the_corpus_covers_every_offline_category_with_three_shapes() -> None:
    from orchestrator import categories

    # Upgrade breakage has its own repos, one per upgrade (pytest 8, pytest-asyncio 1.x,
    # SQLAlchemy 2.0, pydantic 2, numpy 2): tests/agents/test_upgrades_e2e.py.
    upgrades = {"dependency_upgrade", "test_framework_contract"}
    offline = {s.id for s in categories.CATEGORIES if s.specialist} - upgrades
    counts = {c: sum(s.category == c for s in SHAPES) for c in offline}
    assert all(n >= 3 for n in counts.values()), counts
    assert len({s.id for s in SHAPES}) == len(SHAPES)  # shape names are unique per category
