"""Isolation spends runs where they teach: the leaks the failures name first, a sample per
signature, the rest of a signature only when its sample shows order-dependence."""

from __future__ import annotations

from orchestrator.isolation import diagnose
from tests.helpers import innocents
from tests.isolation.test_isolation import baseline_of, finding_for

NAMED = {
    "tests/test_a.py": "import os\n"
    + innocents("a", 6)
    + '\n\ndef test_sets_region():\n    os.environ["SHOP_REGION"] = "eu"\n',
    "tests/test_b.py": "import os\n"
    + innocents("b", 6)
    + "".join(
        f'\n\ndef test_region_{i}():\n    assert os.environ.get("SHOP_REGION") is None\n'
        for i in range(2)
    )
    + "".join(f"\n\ndef test_bug_{i}():\n    assert {i} == -1\n" for i in range(8)),
}


def test_a_named_leak_is_confirmed_in_one_run_and_one_signature_sampled(make_repo) -> None:
    spec, baseline = baseline_of(make_repo(NAMED))
    messages: list[str] = []
    result = diagnose(spec, baseline, emit=lambda e: messages.append(e.message))
    for i in range(2):
        finding = finding_for(result, f"tests/test_b.py::test_region_{i}")
        assert finding.culprits == ["tests/test_a.py::test_sets_region"]
        assert finding.runs == 1 and "SHOP_REGION" in (finding.leak or "")
    assert all(result.alone[f"tests/test_b.py::test_bug_{i}"] == "fails_alone" for i in range(8))
    # the sample together, reversed, and one run for the named polluter: no bisection
    assert result.runs == 3
    assert any("5 failures not re-run" in m for m in messages)


GUARDED = {
    "app/__init__.py": "",
    "app/guard.py": (
        "TRIPPED = False\n\n\ndef check(always):\n"
        "    if always or TRIPPED:\n        raise RuntimeError('guard tripped')\n"
    ),
    "tests/__init__.py": "",
    "tests/test_a.py": "from app import guard\n"
    + innocents("a", 3)
    + "\n\ndef test_trips():\n    guard.TRIPPED = 1\n",
    # victims and plain failures share one signature; the message names nothing leaked
    "tests/test_b.py": "from app import guard\n"
    + "".join(
        f"\n\ndef test_{i}():\n    guard.check({kind})\n"
        for i, kind in enumerate(["False", "True", "True", "False", "True", "False", "True"])
    ),
}


def test_a_sample_showing_order_dependence_runs_its_whole_signature(make_repo) -> None:
    spec, baseline = baseline_of(make_repo(GUARDED))
    result = diagnose(spec, baseline)
    victims = [f"tests/test_b.py::test_{i}" for i in (0, 3, 5)]
    assert {f.victim for f in result.findings} == set(victims)
    assert all(f.culprits == ["tests/test_a.py::test_trips"] for f in result.findings)
    assert [result.alone[f"tests/test_b.py::test_{i}"] for i in (1, 2, 4, 6)] == ["fails_alone"] * 4


def test_xdist_runs_report_each_test_once_and_isolation_runs_without_workers(make_repo) -> None:
    """A suite run with pytest-xdist keeps its `-n` where order does not matter (verification,
    the final run); the baseline and isolation run without workers, in one process's order."""
    import sys

    from orchestrator.suite.config import run_spec, sequential
    from orchestrator.suite.runner import run_suite

    pyproject = (
        f'[tool.orchestrator]\ntest-cmd = "{sys.executable} -m pytest -p xdist -n 2"\n'
        'env = { PYTEST_DISABLE_PLUGIN_AUTOLOAD = "1" }\n'
    )
    repo = make_repo(NAMED, pyproject=pyproject)
    spec = run_spec(repo, record_leaks=True)
    parallel = run_suite(spec)
    assert sorted(r.nodeid for r in parallel.results) == sorted(parallel.collected)
    bugs = {f"tests/test_b.py::test_bug_{i}" for i in range(8)}
    assert len(parallel.results) == 23 and bugs <= {r.nodeid for r in parallel.failing()}
    assert "assert 0 == -1" in (parallel.by_id()["tests/test_b.py::test_bug_0"].message or "")
    one_process = sequential(spec)
    assert "-n" not in one_process.command and "xdist" in one_process.command
    baseline = run_suite(one_process)
    result = diagnose(spec, baseline)
    assert finding_for(result, "tests/test_b.py::test_region_0").culprits == [
        "tests/test_a.py::test_sets_region"
    ]


TWO_LEAKS = {
    "tests/test_a.py": "import os\n"
    + innocents("a", 2)
    + '\n\ndef test_sets_a():\n    os.environ["SHOP_A"] = "1"\n'
    + '\n\ndef test_sets_b():\n    os.environ["SHOP_B"] = "1"\n',
    # the assertion names SHOP_A first; the dump of os.environ after it names both
    "tests/test_b.py": "import os\n\n\ndef test_victim():\n    assert 'SHOP_A' not in os.environ\n",
}


def test_the_leak_the_assertion_names_first_is_tried_first(make_repo) -> None:
    spec, baseline = baseline_of(make_repo(TWO_LEAKS))
    finding = finding_for(diagnose(spec, baseline), "tests/test_b.py::test_victim")
    assert finding.culprits == ["tests/test_a.py::test_sets_a"] and finding.runs == 1
