"""The runner against real pytest subprocesses: streaming, hangs, crashes, selection, leaks,
shuffling, and how the suite command is resolved."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest

from orchestrator.errors import Cancelled
from orchestrator.events import SuiteFinished, SuiteStarted, TestFinished, TestStarted
from orchestrator.models import RunSpec
from orchestrator.suite.config import load_config, resolve_command, run_spec
from orchestrator.suite.runner import collect, run_suite

QUIET_ENV = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}


def spec_for(repo: Path, **kw) -> RunSpec:
    kw.setdefault("timeout_s", 30.0)
    return RunSpec(
        repo=str(repo), command=[sys.executable, "-m", "pytest"], env=dict(QUIET_ENV), **kw
    )


def outcomes(run) -> dict[str, str]:
    return {r.nodeid: r.outcome for r in run.results}


# --- streaming -------------------------------------------------------------------------------


def test_results_stream_while_the_suite_runs(make_repo, tmp_path: Path) -> None:
    """test_b waits for a marker the emit callback writes when test_a's result arrives: it can
    only pass if results are streamed while pytest is still running."""
    marker = tmp_path / "a-finished"
    repo = make_repo(
        {
            "tests/test_stream.py": f"""
                import time
                from pathlib import Path

                import pytest

                def test_a():
                    pass

                def test_b():
                    deadline = time.monotonic() + 10
                    while not Path({str(marker)!r}).exists():
                        assert time.monotonic() < deadline, "test_a's result was not streamed"
                        time.sleep(0.01)

                def test_c():
                    assert 1 + 1 == 3

                @pytest.mark.skip(reason="not today")
                def test_d():
                    pass

                @pytest.mark.xfail(reason="known")
                def test_e():
                    assert False
                """
        }
    )
    events = []

    def emit(event) -> None:
        events.append(event)
        if isinstance(event, TestFinished) and event.nodeid.endswith("::test_a"):
            marker.write_text("done")

    run = run_suite(spec_for(repo, sandbox="off"), emit, label="baseline")  # marker is outside
    ids = [f"tests/test_stream.py::test_{c}" for c in "abcde"]
    assert isinstance(events[0], SuiteStarted) and events[0].total == 5
    assert events[0].label == "baseline"
    assert isinstance(events[-1], SuiteFinished)
    assert events[-1].counts.passed == 2 and events[-1].counts.failed == 1
    per_test = events[1:-1]
    assert [type(e) for e in per_test] == [TestStarted, TestFinished] * 5
    assert [e.nodeid for e in per_test] == [n for n in ids for _ in range(2)]
    finished = {e.nodeid: e.outcome for e in per_test if isinstance(e, TestFinished)}
    assert finished == dict(
        zip(ids, ["passed", "passed", "failed", "skipped", "xfailed"], strict=True)
    )
    assert run.collected == ids
    assert [r.nodeid for r in run.results] == ids
    assert run.restarts == 0
    failed = run.by_id()[ids[2]]
    assert failed.when == "call"
    assert failed.exc_type == "AssertionError"
    assert "assert (1 + 1) == 3" in failed.message or "assert 2 == 3" in failed.message
    assert failed.frames[-1].path == "tests/test_stream.py"
    assert failed.frames[-1].func == "test_c"


def test_a_hanging_test_is_stopped_and_the_suite_goes_on(make_repo) -> None:
    repo = make_repo(
        {
            "tests/test_a.py": """
                import time

                def test_before():
                    pass

                def test_hang():
                    time.sleep(60)

                def test_after():
                    pass
                """,
            "tests/test_b.py": """
                def test_later_pass():
                    pass

                def test_later_fail():
                    assert [] == [1]
                """,
        }
    )
    finished: list[TestFinished] = []
    started = time.monotonic()
    run = run_suite(
        spec_for(repo, timeout_s=2.0),
        lambda e: finished.append(e) if isinstance(e, TestFinished) else None,
    )
    elapsed = time.monotonic() - started
    assert elapsed < 20, f"the hang was not stopped in time ({elapsed:.1f} s)"
    assert outcomes(run) == {
        "tests/test_a.py::test_before": "passed",
        "tests/test_a.py::test_hang": "timeout",
        "tests/test_a.py::test_after": "passed",
        "tests/test_b.py::test_later_pass": "passed",
        "tests/test_b.py::test_later_fail": "failed",
    }
    assert [r.nodeid for r in run.results][1] == "tests/test_a.py::test_hang"
    assert run.restarts == 1
    hung = run.by_id()["tests/test_a.py::test_hang"]
    assert hung.duration_s == 2.0
    assert "timeout" in hung.message
    assert [e.outcome for e in finished if e.nodeid.endswith("test_hang")] == ["timeout"]
    assert run.counts().failed == 2 and run.counts().passed == 3


def test_a_crashing_test_is_an_error_and_the_suite_goes_on(make_repo) -> None:
    repo = make_repo(
        {
            "tests/test_crash.py": """
                import os

                def test_one():
                    pass

                def test_crash():
                    os._exit(3)

                def test_three():
                    pass

                def test_four():
                    assert 0
                """
        }
    )
    run = run_suite(spec_for(repo))
    assert outcomes(run) == {
        "tests/test_crash.py::test_one": "passed",
        "tests/test_crash.py::test_crash": "error",
        "tests/test_crash.py::test_three": "passed",
        "tests/test_crash.py::test_four": "failed",
    }
    crashed = run.by_id()["tests/test_crash.py::test_crash"]
    assert "exit code 3" in crashed.message
    assert crashed.exc_type == "orchestrate.Crash"
    assert run.restarts == 1


def test_a_crash_in_a_file_selected_by_its_path_resumes_after_it(make_repo) -> None:
    """The restart runs what is left of the expanded selection, not the file again."""
    repo = make_repo(
        {
            "tests/test_crash.py": "import os\n\ndef test_one():\n    pass\n\n"
            "def test_crash():\n    os._exit(3)\n\ndef test_three():\n    pass\n",
            "tests/test_other.py": "def test_other():\n    pass\n",
        }
    )
    run = run_suite(spec_for(repo, select=["tests/test_crash.py"], collect_all=True))
    assert [(r.nodeid.split("::")[1], r.outcome) for r in run.results] == [
        ("test_one", "passed"),
        ("test_crash", "error"),
        ("test_three", "passed"),
    ]
    assert run.restarts == 1 and len(run.collected) == 4


# --- what runs -------------------------------------------------------------------------------

THREE_FILES = {
    "tests/test_x.py": """
        def test_x1():
            pass

        def test_x2():
            pass
        """,
    "tests/test_y.py": """
        import pytest

        @pytest.mark.parametrize("n", [1, 2])
        def test_y(n):
            assert n

        class TestY:
            def test_method(self):
                pass
        """,
    "tests/test_z.py": """
        def test_z1():
            assert False
        """,
}


def test_select_runs_exactly_those_ids_in_that_order(make_repo) -> None:
    repo = make_repo(THREE_FILES)
    chosen = [
        "tests/test_z.py::test_z1",
        "tests/test_y.py::TestY::test_method",
        "tests/test_x.py::test_x2",
        "tests/test_y.py::test_y[2]",
    ]
    run = run_suite(spec_for(repo, select=chosen))
    assert [r.nodeid for r in run.results] == chosen
    assert outcomes(run)["tests/test_z.py::test_z1"] == "failed"
    assert run.collected == chosen


def test_collect_all_reports_the_whole_suite_and_runs_only_the_selection(make_repo) -> None:
    """One run stands for a collection and a selected run: a file's path selects every test it
    holds, in its place; `-k`/--deselect filters are applied before the whole suite is reported."""
    repo = make_repo(THREE_FILES)
    spec = spec_for(
        repo,
        select=["tests/test_z.py::test_z1", "tests/test_x.py", "tests/test_x.py::test_x1"],
        collect_all=True,
        deselect=["tests/test_y.py::test_y[1]"],
    )
    run = run_suite(spec)
    assert [r.nodeid for r in run.results] == [
        "tests/test_z.py::test_z1",
        "tests/test_x.py::test_x1",
        "tests/test_x.py::test_x2",
    ]
    assert run.collected == [
        "tests/test_x.py::test_x1",
        "tests/test_x.py::test_x2",
        "tests/test_y.py::test_y[2]",
        "tests/test_y.py::TestY::test_method",
        "tests/test_z.py::test_z1",
    ]


def test_collect_paths_bound_what_is_collected_beyond_the_selection(make_repo) -> None:
    repo = make_repo(THREE_FILES)
    spec = spec_for(
        repo,
        select=["tests/test_z.py::test_z1"],
        collect_all=True,
        collect_paths=["tests/test_z.py", "tests/test_x.py"],
    )
    run = run_suite(spec)
    assert [r.nodeid for r in run.results] == ["tests/test_z.py::test_z1"]
    assert run.collected == [  # in the suite's order
        "tests/test_x.py::test_x1",
        "tests/test_x.py::test_x2",
        "tests/test_z.py::test_z1",
    ]


def test_a_selection_in_a_big_package_collects_only_its_files(make_repo) -> None:
    """pytest is given the package, not each file (which relists the package once per file):
    the plugin keeps collection to the named files, conftests still apply, and a broken module
    or directory elsewhere in the package is never imported."""
    test = "def test_a(answer):\n    assert answer == 42\n\ndef test_b():\n    pass\n"
    files = {"tests/__init__.py": ""} | {f"tests/test_{i:03}.py": test for i in range(60)}
    files["tests/conftest.py"] = "import pytest\n\n@pytest.fixture\ndef answer():\n    return 42\n"
    files["tests/test_broken.py"] = "raise SystemExit('imported a module nobody asked for')\n"
    files["tests/deep/test_deeper.py"] = "def test_deep(answer):\n    assert answer == 42\n"
    files["tests/other/test_syntax.py"] = "def test_(:\n"
    repo = make_repo(files)
    wanted = [f"tests/test_{i:03}.py::test_a" for i in (7, 3, 41)] + ["tests/deep/test_deeper.py"]
    paths = ["tests/test_010.py", *(n.split("::")[0] for n in wanted)]
    run = run_suite(spec_for(repo, select=wanted, collect_all=True, collect_paths=paths))
    assert outcomes(run) == {
        "tests/test_007.py::test_a": "passed",
        "tests/test_003.py::test_a": "passed",
        "tests/test_041.py::test_a": "passed",
        "tests/deep/test_deeper.py::test_deep": "passed",
    }
    assert [r.nodeid for r in run.results] == list(outcomes(run))  # in the order asked
    assert run.collected == [  # in the suite's order
        "tests/deep/test_deeper.py::test_deep",
        *(f"tests/test_{i:03}.py::test_{t}" for i in (3, 7, 10, 41) for t in "ab"),
    ]


def test_a_whole_suite_run_reports_what_its_interpreter_has_installed(make_repo) -> None:
    """Versions from the metadata's header, modules from top_level.txt or RECORD's Python files;
    a module named like its distribution, a private one or a data directory is not mapped."""
    from importlib import metadata

    repo = make_repo(  # `python -m pytest` puts the repo on sys.path: these are installed
        {
            "tests/test_x.py": "def test_x():\n    pass\n",
            "Fake_Dist-1.2.dist-info/METADATA": (
                "Metadata-Version: 2.1\nName: Fake-Dist\nVersion: 1.2\n\nName: not-this\n"
            ),
            "Fake_Dist-1.2.dist-info/RECORD": (
                "fake_mod/__init__.py,,\nfake_mod/sub.py,,\nresources/style.css,,\n"
                "fake_dist.py,,\nFake_Dist-1.2.dist-info/METADATA,,\n"
            ),
            "old_style.egg-info/PKG-INFO": "Metadata-Version: 1.1\nName: Old-Style\nVersion: 0.9\n",
            "old_style.egg-info/top_level.txt": "oldmod\n_private\n",
        }
    )
    environment = run_suite(spec_for(repo)).environment
    assert environment is not None
    assert environment.packages["Fake-Dist"] == "1.2"
    assert environment.packages["Old-Style"] == "0.9"
    assert environment.packages["pytest"] == metadata.version("pytest")
    assert environment.modules["fake_mod"] == "Fake-Dist"
    assert environment.modules["oldmod"] == "Old-Style"
    assert not {"fake_dist", "resources", "_private"} & set(environment.modules)
    assert environment.distribution("fake_mod.sub") == "Fake-Dist"


def test_collect_lists_ids_without_running(make_repo) -> None:
    repo = make_repo(THREE_FILES)
    assert collect(spec_for(repo)) == [
        "tests/test_x.py::test_x1",
        "tests/test_x.py::test_x2",
        "tests/test_y.py::test_y[1]",
        "tests/test_y.py::test_y[2]",
        "tests/test_y.py::TestY::test_method",
        "tests/test_z.py::test_z1",
    ]


def test_collection_errors_become_error_results(make_repo) -> None:
    repo = make_repo(
        {
            "app/__init__.py": "",
            "app/core.py": "def real():\n    return 1\n",
            "tests/test_broken.py": """
                from app.core import renamed

                def test_never():
                    pass
                """,
            "tests/test_syntax.py": "def test_bad(:\n    pass\n",
            "tests/test_ok.py": """
                from app.core import real

                def test_ok():
                    assert real() == 1
                """,
        },
        pyproject=(
            f'[tool.orchestrator]\ntest-cmd = "{sys.executable} -m pytest"\n'
            'env = { PYTEST_DISABLE_PLUGIN_AUTOLOAD = "1" }\n'
            '[tool.pytest.ini_options]\npythonpath = ["."]\n'
        ),
    )
    run = run_suite(spec_for(repo))
    results = run.by_id()
    assert results["tests/test_ok.py::test_ok"].outcome == "passed"
    broken = results["tests/test_broken.py"]
    assert (broken.outcome, broken.when, broken.exc_type) == ("error", "collect", "ImportError")
    assert "cannot import name 'renamed'" in broken.message
    syntax = results["tests/test_syntax.py"]
    assert (syntax.outcome, syntax.when) == ("error", "collect")
    assert syntax.exc_type == "SyntaxError"
    assert run.counts().errors == 2


def test_ignore_and_deselect_are_honoured(make_repo) -> None:
    repo = make_repo(
        {
            **THREE_FILES,
            "tests/test_broken.py": "import nothing_here_at_all\n",
        }
    )
    spec = spec_for(
        repo,
        ignores=["tests/test_broken.py", "tests/test_z.py"],
        deselect=["tests/test_y.py::test_y[1]", "tests/test_x.py::test_x1"],
    )
    run = run_suite(spec)
    assert [r.nodeid for r in run.results] == [
        "tests/test_x.py::test_x2",
        "tests/test_y.py::test_y[2]",
        "tests/test_y.py::TestY::test_method",
    ]
    assert run.counts().failed == 0 and run.counts().errors == 0


# --- leaks and order -------------------------------------------------------------------------


def test_leaked_state_is_recorded_per_test(make_repo) -> None:
    repo = make_repo(
        {
            "app/__init__.py": "",
            "app/settings.py": 'MODE = "prod"\n',
            "tests/test_leaks.py": """
                import os
                from pathlib import Path

                import app.settings

                ROOT = Path(__file__).resolve().parent.parent
                SEEN = None

                def test_global():
                    global SEEN
                    SEEN = "once"

                def test_clean(monkeypatch):
                    monkeypatch.setenv("ORCH_CLEAN", "1")
                    monkeypatch.setattr(app.settings, "MODE", "test")

                def test_env():
                    os.environ["ORCH_LEAKED"] = "yes"

                def test_attr():
                    app.settings.MODE = "debug"

                def test_file():
                    (ROOT / "leftover.db").write_text("x")

                def test_cwd():
                    os.chdir(ROOT / "tests")
                """,
        },
        pyproject=('[tool.pytest.ini_options]\npythonpath = ["."]\n'),
    )
    run = run_suite(spec_for(repo, record_leaks=True))
    leaks = {r.nodeid.split("::")[1]: [leak.describe() for leak in r.leaks] for r in run.results}
    assert all(r.outcome == "passed" for r in run.results)
    assert leaks["test_clean"] == []
    assert leaks["test_env"] == ["ORCH_LEAKED='yes' left in os.environ"]
    assert leaks["test_attr"] == ["app.settings.MODE rebound (was 'prod', now 'debug')"]
    assert leaks["test_global"] == ["test_leaks.SEEN rebound (was None, now 'once')"]
    assert leaks["test_file"] == ["files left in the repo root: leftover.db"]
    assert len(leaks["test_cwd"]) == 1
    assert leaks["test_cwd"][0].startswith("cwd changed from")
    assert leaks["test_cwd"][0].endswith(f"{repo.resolve()}/tests and not restored")


def test_leaks_are_not_recorded_unless_asked(make_repo) -> None:
    repo = make_repo(
        {"tests/test_env.py": "import os\n\ndef test_env():\n    os.environ['X_LEAK'] = '1'\n"}
    )
    run = run_suite(spec_for(repo))
    assert run.results[0].leaks == []


def test_shuffle_is_seeded_and_reproducible(make_repo) -> None:
    body = "\n".join(f"def test_{i:02d}():\n    pass\n" for i in range(20))
    repo = make_repo({"tests/test_many.py": body, "tests/test_more.py": body})
    plain = [r.nodeid for r in run_suite(spec_for(repo)).results]
    first = run_suite(spec_for(repo, shuffle_seed=7))
    again = run_suite(spec_for(repo, shuffle_seed=7))
    other = run_suite(spec_for(repo, shuffle_seed=8))
    order = [r.nodeid for r in first.results]
    assert sorted(order) == sorted(plain) and len(order) == 40
    assert order != plain
    assert [r.nodeid for r in again.results] == order
    assert [r.nodeid for r in other.results] != order
    assert first.shuffle_seed == 7


# --- which command runs the suite ------------------------------------------------------------


def _bare_repo(path: Path, pyproject: str | None = None) -> Path:
    path.mkdir()
    if pyproject is not None:
        (path / "pyproject.toml").write_text(pyproject, encoding="utf-8")
    return path


def _fake_venv(repo: Path) -> Path:
    bindir = repo / ".venv" / "bin"
    bindir.mkdir(parents=True)
    python = bindir / "python"
    python.symlink_to(sys.executable)
    return python


def _path_without_uv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A PATH holding only git (the tests need it) and no uv."""
    bindir = tmp_path / "nouv-bin"
    bindir.mkdir()
    for tool in ("git",):
        found = next(
            Path(d) / tool
            for d in os.environ["PATH"].split(os.pathsep)
            if (Path(d) / tool).is_file()
        )
        (bindir / tool).symlink_to(found)
    monkeypatch.setenv("PATH", str(bindir))


def _path_with_fake_uv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bindir = tmp_path / "uv-bin"
    bindir.mkdir()
    uv = bindir / "uv"
    uv.write_text("#!/bin/sh\nexit 0\n")
    uv.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")


def test_repo_venv_python_is_used_and_runs_the_suite(make_repo, monkeypatch, tmp_path) -> None:
    repo = make_repo(
        {"tests/test_v.py": "import sys\n\ndef test_v():\n    assert sys.executable\n"},
        pyproject="",
    )
    python = _fake_venv(repo)
    _path_without_uv(monkeypatch, tmp_path)
    spec = run_spec(repo)
    assert spec.command == [str(python), "-m", "pytest"]
    spec = spec.model_copy(update={"env": dict(QUIET_ENV)})
    run = run_suite(spec)
    assert outcomes(run) == {"tests/test_v.py::test_v": "passed"}


def test_no_venv_falls_back_to_this_interpreter(tmp_path, monkeypatch) -> None:
    repo = _bare_repo(tmp_path / "r")
    _path_with_fake_uv(monkeypatch, tmp_path)  # uv on PATH but no uv.lock: not used
    assert resolve_command(repo, None, load_config(repo)) == [sys.executable, "-m", "pytest"]


def test_uv_lock_with_uv_on_path_uses_uv(tmp_path, monkeypatch) -> None:
    repo = _bare_repo(tmp_path / "r")
    (repo / "uv.lock").write_text("version = 1\n")
    _fake_venv(repo)
    _path_with_fake_uv(monkeypatch, tmp_path)
    spec = run_spec(repo)
    assert spec.command == ["uv", "run", "--no-sync", "pytest"]
    assert spec.env["UV_PROJECT_ENVIRONMENT"] == str(repo / ".venv")


def test_uv_lock_without_uv_falls_back_to_the_venv(tmp_path, monkeypatch) -> None:
    repo = _bare_repo(tmp_path / "r")
    (repo / "uv.lock").write_text("version = 1\n")
    python = _fake_venv(repo)
    _path_without_uv(monkeypatch, tmp_path)
    assert resolve_command(repo, None, load_config(repo)) == [str(python), "-m", "pytest"]
    (python).unlink()
    (python.parent).rmdir()
    assert resolve_command(repo, None, load_config(repo)) == [sys.executable, "-m", "pytest"]


def test_configured_test_cmd_wins_over_uv_and_venv(tmp_path, monkeypatch) -> None:
    repo = _bare_repo(
        tmp_path / "r",
        '[tool.orchestrator]\ntest-cmd = "tox -e py -- -x"\ntimeout = 7\nignore = ["slow"]\n'
        'env = { APP_ENV = "test" }\n',
    )
    (repo / "uv.lock").write_text("version = 1\n")
    _fake_venv(repo)
    _path_with_fake_uv(monkeypatch, tmp_path)
    spec = run_spec(repo, ignores=["more"])
    assert spec.command == ["tox", "-e", "py", "--", "-x"]
    assert spec.timeout_s == 7
    assert spec.ignores == ["slow", "more"]
    assert spec.env == {"APP_ENV": "test"}
    assert run_spec(repo, timeout_s=3).timeout_s == 3


def test_test_cmd_option_wins_over_everything(tmp_path, monkeypatch) -> None:
    repo = _bare_repo(tmp_path / "r", '[tool.orchestrator]\ntest-cmd = "tox"\n')
    (repo / "uv.lock").write_text("version = 1\n")
    _fake_venv(repo)
    _path_with_fake_uv(monkeypatch, tmp_path)
    spec = run_spec(repo, test_cmd="/opt/py/bin/python -m pytest -x 'tests/a b'")
    assert spec.command == ["/opt/py/bin/python", "-m", "pytest", "-x", "tests/a b"]


def test_secrets_in_failure_messages_and_leaks_are_redacted(make_repo, monkeypatch):
    monkeypatch.setenv("SERVICE_API_KEY", "sk-live-0123456789")
    repo = make_repo(
        {
            "tests/test_env.py": """
            import os


            def test_prints_the_key():
                assert os.environ["SERVICE_API_KEY"] == "other"


            def test_leaks_the_key():
                os.environ["COPY_TOKEN"] = os.environ["SERVICE_API_KEY"]
        """,
        }
    )
    run = run_suite(run_spec(repo, record_leaks=True))
    assert "KeyError" in outcomes_messages(run)  # secrets never reach the tests' environment
    spec = run_spec(repo, record_leaks=True).model_copy(update={"pass_env": ["SERVICE_API_KEY"]})
    text = run_suite(spec).model_dump_json()  # kept on purpose ([tool.orchestrator] pass-env)
    assert "sk-live-0123456789" not in text
    assert "[redacted]" in text


def outcomes_messages(run) -> str:
    return " ".join(f"{r.exc_type} {r.message}" for r in run.results)


# --- what outlives a run -----------------------------------------------------------------------


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie waiting for its reaper."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _pid_from(path: Path, timeout_s: float = 10.0) -> int:
    deadline = time.monotonic() + timeout_s
    while not path.exists() or not path.read_text().strip():
        assert time.monotonic() < deadline, f"{path} never written"
        time.sleep(0.02)
    return int(path.read_text())


def test_a_server_a_test_started_dies_with_the_run(make_repo, tmp_path: Path) -> None:
    pidfile = tmp_path / "server.pid"
    repo = make_repo(
        {
            "tests/test_server.py": f"""
                import subprocess
                import sys


                def test_starts_a_server():
                    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
                    open({str(pidfile)!r}, "w").write(str(server.pid))
            """
        }
    )
    run = run_suite(spec_for(repo, sandbox="off"))  # the pidfile is outside; see tests/security
    assert outcomes(run) == {"tests/test_server.py::test_starts_a_server": "passed"}
    pid = _pid_from(pidfile)
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid), "the test's server outlived pytest"


def test_the_stop_token_kills_the_running_test_at_once(make_repo, tmp_path: Path) -> None:
    started = tmp_path / "started"
    repo = make_repo(
        {
            "tests/test_slow.py": f"""
                import time


                def test_slow():
                    open({str(started)!r}, "w").write("yes")
                    time.sleep(60)
            """
        }
    )
    stop = threading.Event()

    def stop_once_started() -> None:
        deadline = time.monotonic() + 20
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        stop.set()

    threading.Thread(target=stop_once_started, daemon=True).start()
    began = time.monotonic()
    with pytest.raises(Cancelled):
        run_suite(spec_for(repo, sandbox="off"), stop=stop)  # `started` is outside the repo
    assert time.monotonic() - began < 15  # well inside the test's 60 s sleep
