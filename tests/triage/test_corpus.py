"""Triage on real failure texts people posted in public issue threads (tests/resources/corpus).

Every text carries its source thread and a label given by reading the thread (what the cause
really was, not what our rules say); a few are hard on purpose (a pydantic upgrade showing as a
ValidationError). `bench/corpus_accuracy.py` prints the per-category table.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.categories import CATEGORY_IDS
from tests.helpers.corpus import CORPUS, accuracy, load, triaged


@pytest.fixture(scope="module")
def corpus() -> list:
    return load()


@pytest.fixture(scope="module")
def results(corpus, tmp_path_factory: pytest.TempPathFactory) -> dict[int, str]:
    return triaged(corpus, tmp_path_factory.mktemp("corpus"))


def test_corpus_is_real_labelled_and_covers_every_category(corpus) -> None:
    assert len(corpus) >= 200
    assert {i.category for i in corpus} == set(CATEGORY_IDS)
    rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    assert all(r["source"].startswith("https://github.com/") and r["repository"] for r in rows)
    assert len({(r["source"], r["text"]) for r in rows}) == len(rows)  # no text twice


def test_accuracy_overall_and_per_category(corpus, results) -> None:
    table = accuracy(corpus, results)
    right, total = table.pop("all")
    assert right / total >= 0.93, table
    weak = {c: (r, t) for c, (r, t) in table.items() if r / t < 0.75}
    assert not weak, weak


def test_upgrade_texts_name_the_package(corpus, tmp_path: Path) -> None:
    """The dependency_upgrade items are split per package and name it in the root cause."""
    from orchestrator.models import SuiteRun
    from orchestrator.triage import triage

    upgrades = [i.result for i in corpus if i.category == "dependency_upgrade"]
    report = triage(
        SuiteRun(command=["pytest"], cwd=str(tmp_path), results=upgrades), tmp_path, "pytest"
    )
    causes = {c.cause for c in report.categories if c.id == "dependency_upgrade"}
    assert {"numpy", "sqlalchemy", "werkzeug"} <= {c.lower() for c in causes}, causes
    numpy = next(c for c in report.categories if c.cause == "numpy")
    assert "NPY201" in numpy.fix_strategy and numpy.title.endswith(": numpy")
