"""Isolation on real polluting suites: each kind of leaked state, named culprits, counted runs."""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path

import pytest

from orchestrator.errors import UsageError
from orchestrator.isolation import bisect, diagnose, order_probe
from orchestrator.models import NO_LEAK, IsolationFinding, IsolationResult, RunSpec, SuiteRun
from orchestrator.suite.config import run_spec
from orchestrator.suite.runner import run_suite
from tests.helpers import innocents, write_files

CONFTEST = '''
    import sqlite3
    from pathlib import Path

    import pytest

    ROOT = Path(__file__).resolve().parent.parent


    @pytest.fixture(autouse=True, scope="session")
    def fresh_state():
        """Each session starts clean: the pollution lives only as long as one pytest process."""
        (ROOT / "state.json").unlink(missing_ok=True)
        db = ROOT / "shop.db"
        db.unlink(missing_ok=True)
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE users (name TEXT UNIQUE)")
        yield
    '''

SHOP = {
    "app/__init__.py": "",
    "app/config.py": """
        class Settings:
            def __init__(self, debug=False):
                self.debug = debug

        settings = Settings()
        """,
    "app/clock.py": """
        import time

        def now():
            return time.time()
        """,
    "app/db.py": """
        import sqlite3
        from pathlib import Path

        DB = Path(__file__).resolve().parent.parent / "shop.db"

        def add_user(name):
            with sqlite3.connect(DB) as conn:
                conn.execute("INSERT INTO users VALUES (?)", (name,))
        """,
    "data/prices.csv": "apple,1\n",
    "tests/__init__.py": "",
    "tests/conftest.py": CONFTEST,
    "tests/test_a_env.py": "import os\n"
    + innocents("env_before")
    + '\n\ndef test_readonly_mode():\n    os.environ["SHOP_MODE"] = "readonly"\n'
    + innocents("env_after"),
    "tests/test_b_settings.py": "from app import config\n"
    + innocents("settings_before")
    + "\n\ndef test_debug_settings():\n    config.settings = config.Settings(debug=True)\n"
    + innocents("settings_after"),
    "tests/test_c_clock.py": "from unittest.mock import Mock\n\nfrom app import clock\n"
    + innocents("clock_before")
    + "\n\ndef test_frozen_clock():\n    clock.now = Mock(return_value=0)\n"
    + innocents("clock_after"),
    "tests/test_d_files.py": "from tests.conftest import ROOT\n"
    + innocents("files_before")
    + '\n\ndef test_saves_state():\n    (ROOT / "state.json").write_text("{}")\n'
    + "\n\ndef test_registers_alice():\n    from app import db\n    db.add_user('alice')\n"
    + innocents("files_after"),
    "tests/test_e_cwd.py": "import os\n\nfrom tests.conftest import ROOT\n"
    + innocents("cwd_before")
    + '\n\ndef test_inside_tests_dir():\n    os.chdir(ROOT / "tests")\n'
    + innocents("cwd_after"),
    "tests/test_z_victims.py": """
        import os
        from pathlib import Path

        from app import clock, config, db
        from tests.conftest import ROOT


        def test_mode_is_writable():
            assert os.environ.get("SHOP_MODE", "writable") == "writable"


        def test_default_settings():
            assert config.settings.debug is False


        def test_clock_is_real():
            assert clock.now() > 1e9


        def test_no_saved_state():
            assert not (ROOT / "state.json").exists()


        def test_alice_signs_up():
            db.add_user("alice")


        def test_reads_prices():
            assert Path("data/prices.csv").read_text().startswith("apple")


        def test_plain_bug():
            assert 1 + 1 == 3
        """,
}

VICTIMS = {
    "tests/test_z_victims.py::test_mode_is_writable": (
        "tests/test_a_env.py::test_readonly_mode",
        "SHOP_MODE='readonly' left in os.environ",
    ),
    "tests/test_z_victims.py::test_default_settings": (
        "tests/test_b_settings.py::test_debug_settings",
        "app.config.settings rebound",
    ),
    "tests/test_z_victims.py::test_clock_is_real": (
        "tests/test_c_clock.py::test_frozen_clock",
        "app.clock.now rebound",
    ),
    "tests/test_z_victims.py::test_no_saved_state": (
        "tests/test_d_files.py::test_saves_state",
        "files left in the repo root: state.json",
    ),
    "tests/test_z_victims.py::test_alice_signs_up": (
        "tests/test_d_files.py::test_registers_alice",
        NO_LEAK,
    ),
    "tests/test_z_victims.py::test_reads_prices": (
        "tests/test_e_cwd.py::test_inside_tests_dir",
        "cwd changed from",
    ),
}
PLAIN = "tests/test_z_victims.py::test_plain_bug"
FLAKY = "tests/test_flaky.py::test_sometimes"

FLAKY_TEST = """
    from tests.conftest import ROOT


    def test_sometimes():
        counter = ROOT / ".flaky-count"
        count = int(counter.read_text()) + 1 if counter.exists() else 1
        counter.write_text(str(count))
        assert count % 2 == 0, f"odd run {count}"
    """


def bound(candidates: int) -> int:
    return math.ceil(math.log2(candidates)) + 2


def spec_for(repo: Path) -> RunSpec:
    """The throwaway repo's spec; our venv's own pytest plugins would add seconds to every run."""
    spec = run_spec(repo, record_leaks=True)
    spec.env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return spec


def baseline_of(repo: Path) -> tuple[RunSpec, SuiteRun]:
    spec = spec_for(repo)
    return spec, run_suite(spec, label="baseline")


def finding_for(result: IsolationResult, victim: str) -> IsolationFinding:
    (finding,) = [f for f in result.findings if f.victim == victim]
    return finding


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[SuiteRun, IsolationResult]:
    """The shop suite diagnosed once (with two reruns); the tests below read the verdicts."""
    repo = tmp_path_factory.mktemp("shop")
    pyproject = f'[tool.orchestrator]\ntest-cmd = "{sys.executable} -m pytest"\n'
    write_files(repo, {"pyproject.toml": pyproject, "tests/test_flaky.py": FLAKY_TEST, **SHOP})
    spec, baseline = baseline_of(repo)
    messages: list[str] = []
    result = diagnose(spec, baseline, reruns=2, emit=lambda e: messages.append(e.message))
    assert any("bisecting tests/test_z_victims.py::test_reads_prices over" in m for m in messages)
    return baseline, result


@pytest.mark.parametrize("victim", sorted(VICTIMS))
def test_each_polluter_is_named_with_its_leak(shop, victim: str) -> None:
    baseline, result = shop
    polluter, leak = VICTIMS[victim]
    finding = finding_for(result, victim)
    depth = [r.nodeid for r in baseline.results].index(victim)
    assert result.alone[victim] == "passes_alone"
    assert finding.kind == "polluter"
    assert finding.culprits == [polluter]
    assert leak in (finding.leak or "")
    assert 1 <= finding.runs <= bound(depth)


def test_plain_failure_fails_alone_and_flaky_is_not_a_victim(shop) -> None:
    _, result = shop
    assert result.alone[PLAIN] == "fails_alone"
    assert result.flaky == [FLAKY]
    assert finding_for(result, FLAKY).kind == "flaky"
    assert FLAKY not in result.alone
    assert {f.victim for f in result.findings} == {*VICTIMS, FLAKY}


def test_whole_diagnosis_stays_under_the_victims_budgets(shop) -> None:
    baseline, result = shop
    order = [r.nodeid for r in baseline.results]
    assert result.runs < sum(bound(order.index(v)) for v in VICTIMS)
    assert result.duration_s > 0


SHARED_REPO = {
    "tests/test_a.py": "import os\n"
    + innocents("a", 3)
    + '\n\ndef test_sets_mode():\n    os.environ["SHOP_MODE"] = "readonly"\n'
    + innocents("b", 12),
    **{
        f"tests/test_{name}.py": innocents(name, count)
        + f'\n\ndef test_victim_{name}():\n    import os\n    assert "SHOP_MODE" not in os.environ\n'
        for name, count in (("c", 5), ("d", 20), ("e", 8))
    },
}


def test_victims_of_one_polluter_share_runs(make_repo) -> None:
    spec, baseline = baseline_of(make_repo(SHARED_REPO))
    result = diagnose(spec, baseline)
    order = [r.nodeid for r in baseline.results]
    victims = [f"tests/test_{n}.py::test_victim_{n}" for n in "cde"]
    assert [f.culprits for f in result.findings] == [["tests/test_a.py::test_sets_mode"]] * 3
    assert result.runs <= 1 + bound(order.index(victims[-1]))  # the failing-tests run, one search
    assert result.runs < sum(bound(order.index(v)) for v in victims)


PAIR_REPO = {
    "tests/test_flags.py": "import os\n"
    + innocents("a", 5)
    + '\n\ndef test_enable_a():\n    os.environ["FEATURE_A"] = "1"\n'
    + innocents("b", 5)
    + '\n\ndef test_enable_b():\n    os.environ["FEATURE_B"] = "1"\n'
    + innocents("c", 5)
    + '\n\ndef test_both_off():\n    assert not (os.environ.get("FEATURE_A") and os.environ.get("FEATURE_B"))\n',
}


def test_pair_of_polluters_is_reported_as_a_pair(make_repo) -> None:
    spec, baseline = baseline_of(make_repo(PAIR_REPO))
    result = diagnose(spec, baseline)
    finding = finding_for(result, "tests/test_flags.py::test_both_off")
    assert finding.kind == "pair"
    assert finding.culprits == [
        "tests/test_flags.py::test_enable_a",
        "tests/test_flags.py::test_enable_b",
    ]
    assert "FEATURE_A='1' left in os.environ" in (finding.leak or "")


BISECT_REPO = {
    "tests/test_one.py": "import os\n"
    + innocents("x", 9)
    + '\n\ndef test_sets_mode():\n    os.environ["SHOP_MODE"] = "readonly"\n'
    + innocents("y", 9),
    "tests/test_two.py": """
        import os


        def test_victim():
            assert "SHOP_MODE" not in os.environ


        def test_broken():
            assert False
        """,
}


def test_bisect_on_its_own(make_repo) -> None:
    repo = make_repo(BISECT_REPO)
    spec = spec_for(repo)
    finding = bisect(spec, "tests/test_two.py::test_victim")
    assert finding.kind == "polluter"
    assert finding.culprits == ["tests/test_one.py::test_sets_mode"]
    assert finding.leak == "SHOP_MODE='readonly' left in os.environ"
    assert finding.runs <= 1 + bound(19)  # the baseline run, then the bisection

    order = [f"tests/test_one.py::test_x_{i}" for i in range(9)]
    order += ["tests/test_one.py::test_sets_mode", "tests/test_two.py::test_victim"]
    given = bisect(spec, "tests/test_two.py::test_victim", order=order)
    assert given.culprits == ["tests/test_one.py::test_sets_mode"]
    assert given.runs <= bound(10)

    broken = bisect(
        spec, "tests/test_two.py::test_broken", order=order + ["tests/test_two.py::test_broken"]
    )
    assert (broken.kind, broken.note) == ("unresolved", "fails alone: not order-dependent")
    with pytest.raises(UsageError, match="not collected"):
        bisect(spec, "tests/test_two.py::test_nope", order=[*order, "tests/test_two.py::test_nope"])


SETTER_REPO = {
    "app/__init__.py": "",
    "app/registry.py": "HANDLERS = {}\n",
    "tests/test_a_setup.py": "from app import registry\n"
    + innocents("early", 6)
    + '\n\ndef test_registers_default():\n    registry.HANDLERS["default"] = print\n'
    + innocents("late", 6),
    "tests/test_b_uses.py": "from app import registry\n"
    + innocents("more", 6)
    + '\n\ndef test_uses_default():\n    assert "default" in registry.HANDLERS\n',
}


def test_order_probe_finds_the_state_setter(make_repo) -> None:
    spec, baseline = baseline_of(make_repo(SETTER_REPO))
    victim = "tests/test_b_uses.py::test_uses_default"
    assert baseline.by_id()[victim].outcome == "passed"
    seed = next(s for s in range(50) if _setter_runs_after(spec, s, victim))
    findings = order_probe(spec, baseline, seed)
    (finding,) = findings
    assert finding.kind == "state_setter"
    assert finding.culprits == ["tests/test_a_setup.py::test_registers_default"]
    assert f"seed {seed}" in finding.note
    assert finding.leak == NO_LEAK  # a dict mutated in place leaves no recorded trace


def _setter_runs_after(spec: RunSpec, seed: int, victim: str) -> bool:
    """Replays the plugin's shuffle so the test picks a seed that puts the victim first."""
    ids = run_suite(spec.model_copy(update={"collect_only": True})).collected
    random.Random(seed).shuffle(ids)
    return ids.index(victim) < ids.index("tests/test_a_setup.py::test_registers_default")
