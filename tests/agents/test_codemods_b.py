"""The async_event_loop, patch_target, test_pollution and docker_lifecycle specialists.

Each case builds a tiny real project, shows its tests fail under pytest, runs the specialist,
and shows the same pytest invocation passing, then checks the code a careful engineer expects.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from orchestrator.agents.async_event_loop import AsyncEventLoop
from orchestrator.agents.docker_lifecycle import DockerLifecycle
from orchestrator.agents.patch_target import PatchTarget
from orchestrator.agents.test_pollution import TestPollution
from orchestrator.models import Failure, IsolationFinding, Leak, WorkOrder

PYPROJECT = (
    '[tool.pytest.ini_options]\npythonpath = ["src", "."]\naddopts = "-p no:cacheprovider"\n'
)


def project(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for rel, text in {"pyproject.toml": PYPROJECT, **files}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


def pytest_run(
    repo: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """The repo's pytest with only pytest-asyncio loaded (other installed plugins cost seconds)."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "pytest_asyncio.plugin", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", **(env or {})},
    )


def order(
    category: str,
    agent: str,
    failures: list[tuple[str, str]],
    findings: list[IsolationFinding] | None = None,
    **failure_fields: str | None,
) -> WorkOrder:
    return WorkOrder(
        category=category,
        title=category,
        tests=[nodeid for nodeid, _ in failures],
        affected_files=sorted({nodeid.split("::")[0] for nodeid, _ in failures}),
        root_cause="",
        fix_strategy="",
        priority="high",
        agent=agent,
        target=len(failures),
        failures=[
            Failure(
                nodeid=nodeid,
                outcome="failed",
                category=category,
                signature=message[:40],
                message=message,
                file=nodeid.split("::")[0],
                **failure_fields,
            )
            for nodeid, message in failures
        ],
        findings=findings or [],
    )


def read(repo: Path, rel: str) -> str:
    return (repo / rel).read_text(encoding="utf-8")


# --- patch_target ----------------------------------------------------------------------------

NOT_CALLED = "AssertionError: Expected '{}' to have been called once. Called 0 times."

SHOP = {
    "src/shop/__init__.py": "",
    "src/shop/events.py": """
        def publish(event):
            return None
        """,
    "src/shop/orders.py": """
        from .events import publish


        def place(order_id):
            publish({"order": order_id})
            return order_id
        """,
}


def test_patch_target_retargets_decorator_to_the_importing_module(tmp_path: Path) -> None:
    repo = project(
        tmp_path / "p",
        {
            **SHOP,
            "tests/test_orders.py": """
                from unittest.mock import patch

                from shop.orders import place


                @patch('shop.events.publish')  # the broker is not available here
                def test_place_publishes(publish):
                    assert place(7) == 7
                    publish.assert_called_once()


                @patch("shop.events.publish")
                def test_untouched(publish):
                    from shop.events import publish as real

                    real(1)
                    publish.assert_called_once()
                """,
        },
    )
    nodeid = "tests/test_orders.py::test_place_publishes"
    assert pytest_run(repo, nodeid).returncode == 1
    proposal = PatchTarget().propose(
        order("mock_not_called", "patch_target", [(nodeid, NOT_CALLED.format("publish"))]), repo, []
    )
    assert not proposal.declined, proposal.explanation
    assert "shop.orders.publish" in proposal.explanation
    text = read(repo, "tests/test_orders.py")
    assert "@patch('shop.orders.publish')  # the broker is not available here" in text
    assert (
        '@patch("shop.events.publish")\ndef test_untouched' in text
    )  # a passing test is left alone
    assert pytest_run(repo, "tests").returncode == 0


def test_patch_target_mocker_fixture_and_patch_object(tmp_path: Path) -> None:
    repo = project(
        tmp_path / "p",
        {
            **SHOP,
            "tests/conftest.py": """
                from unittest import mock

                import pytest


                class Mocker:
                    def __init__(self):
                        self.patch = mock.patch
                """,
            "tests/test_orders.py": """
                from unittest import mock

                import pytest

                from shop import events, orders


                @pytest.fixture
                def publish():
                    with mock.patch.object(events, "publish") as fake:
                        yield fake


                def test_with_fixture(publish):
                    orders.place(1)
                    publish.assert_called_once_with({"order": 1})


                def test_with_context_manager():
                    with mock.patch("shop.events.publish") as publish:
                        orders.place(2)
                    publish.assert_called_once()
                """,
        },
    )
    ids = [
        "tests/test_orders.py::test_with_fixture",
        "tests/test_orders.py::test_with_context_manager",
    ]
    assert pytest_run(repo, *ids).returncode == 1
    work = order(
        "mock_not_called", "patch_target", [(i, NOT_CALLED.format("publish")) for i in ids]
    )
    proposal = PatchTarget().propose(work, repo, [])
    assert not proposal.declined, proposal.explanation
    text = read(repo, "tests/test_orders.py")
    assert 'with mock.patch.object(orders, "publish") as fake:' in text
    assert 'with mock.patch("shop.orders.publish") as publish:' in text
    assert pytest_run(repo, *ids).returncode == 0


def test_patch_target_picks_the_module_the_test_imports(tmp_path: Path) -> None:
    repo = project(
        tmp_path / "p",
        {
            **SHOP,
            "src/shop/refunds.py": """
                from shop.events import publish


                def refund(order_id):
                    publish({"refund": order_id})
                """,
            "tests/test_refunds.py": """
                from unittest.mock import patch

                from shop.refunds import refund


                def test_refund_publishes():
                    with patch("shop.events.publish") as publish:
                        refund(3)
                    publish.assert_called_once()
                """,
        },
    )
    nodeid = "tests/test_refunds.py::test_refund_publishes"
    assert pytest_run(repo, nodeid).returncode == 1
    proposal = PatchTarget().propose(
        order("mock_not_called", "patch_target", [(nodeid, NOT_CALLED.format("publish"))]), repo, []
    )
    assert not proposal.declined, proposal.explanation
    assert 'patch("shop.refunds.publish")' in read(repo, "tests/test_refunds.py")
    assert pytest_run(repo, nodeid).returncode == 0


def test_patch_target_declines_when_ambiguous_or_already_right(tmp_path: Path) -> None:
    repo = project(
        tmp_path / "p",
        {
            **SHOP,
            "src/shop/refunds.py": "from shop.events import publish\n",
            "tests/test_any.py": """
                from unittest.mock import patch

                import shop


                def test_something():
                    with patch("shop.events.publish") as publish:
                        pass
                    publish.assert_called_once()


                def test_hook():
                    with patch("shop.orders.place") as place:
                        pass
                    place.assert_called_once()
                """,
        },
    )
    before = read(repo, "tests/test_any.py")
    ambiguous = order(
        "mock_not_called",
        "patch_target",
        [("tests/test_any.py::test_something", NOT_CALLED.format("publish"))],
    )
    proposal = PatchTarget().propose(ambiguous, repo, [])
    assert proposal.declined
    assert "shop.orders, shop.refunds" in proposal.explanation
    nobody = order(
        "mock_not_called",
        "patch_target",
        [("tests/test_any.py::test_hook", NOT_CALLED.format("place"))],
    )
    assert PatchTarget().propose(nobody, repo, []).declined
    outside = order(
        "mock_not_called",
        "patch_target",
        [("../elsewhere/test_x.py::test_y", NOT_CALLED.format("x"))],
    )
    assert PatchTarget().propose(outside, repo, []).declined
    assert read(repo, "tests/test_any.py") == before


# --- test_pollution --------------------------------------------------------------------------


def finding(victim: str, polluter: str, leak: Leak | None) -> IsolationFinding:
    leaks = {polluter: [leak]} if leak else {}
    return IsolationFinding(
        victim=victim, kind="polluter", culprits=[polluter], leaks=leaks, runs=3
    )


def pollution(victim: str, polluter: str, leak: Leak | None) -> WorkOrder:
    work = order(
        "test_isolation",
        "test_pollution",
        [(victim, "AssertionError")],
        polluter=polluter,
        leak=leak.describe() if leak else None,
    )
    return work.model_copy(update={"findings": [finding(victim, polluter, leak)]})


APP = {
    "src/app/__init__.py": "",
    "src/app/config.py": """
        import os


        class Settings:
            def __init__(self, debug=False):
                self.debug = debug


        settings = Settings()


        def mode():
            return os.environ.get("SHOP_MODE", "readwrite")


        def enable_readonly():
            os.environ["SHOP_MODE"] = "readonly"
        """,
    "src/app/mailer.py": """
        def send(to):
            return f"sent to {to}"
        """,
}


def test_pollution_env_var_becomes_setenv(tmp_path: Path) -> None:
    repo = project(
        tmp_path / "p",
        {
            **APP,
            "tests/test_a.py": """
                import os

                from app.config import mode


                def test_readonly_mode():
                    # readonly for this test only
                    os.environ["SHOP_MODE"] = "readonly"
                    del os.environ["SHOP_REGION"]
                    assert mode() == "readonly"
                """,
            "tests/test_b.py": """
                import os

                from app.config import mode


                def test_default_mode():
                    assert mode() == "readwrite"
                    assert os.environ["SHOP_REGION"] == "eu"
                """,
        },
    )
    env = {"SHOP_REGION": "eu"}
    victim, polluter = "tests/test_b.py::test_default_mode", "tests/test_a.py::test_readonly_mode"
    assert pytest_run(repo, "tests/test_a.py", "tests/test_b.py", env=env).returncode == 1
    assert pytest_run(repo, victim, env=env).returncode == 0
    proposal = TestPollution().propose(
        pollution(victim, polluter, Leak(kind="env", key="SHOP_MODE", new="readonly")), repo, []
    )
    assert not proposal.declined, proposal.explanation
    text = read(repo, "tests/test_a.py")
    assert "def test_readonly_mode(monkeypatch):\n    # readonly for this test only\n" in text
    assert 'monkeypatch.setenv("SHOP_MODE", "readonly")' in text
    assert 'monkeypatch.delenv("SHOP_REGION", raising=False)' in text
    assert 'assert mode() == "readonly"' in text
    assert pytest_run(repo, "tests/test_a.py", "tests/test_b.py", env=env).returncode == 0


def test_pollution_singleton_rebound_in_a_test_method(tmp_path: Path) -> None:
    repo = project(
        tmp_path / "p",
        {
            **APP,
            "tests/test_a.py": """
                from app import config


                class TestDebug:
                    def test_debug_settings(self, tmp_path):
                        config.settings = config.Settings(debug=True)  # swap the singleton
                        assert config.settings.debug
                """,
            "tests/test_b.py": """
                from app import config


                def test_not_debug():
                    assert config.settings.debug is False
                """,
        },
    )
    victim, polluter = (
        "tests/test_b.py::test_not_debug",
        "tests/test_a.py::TestDebug::test_debug_settings",
    )
    assert pytest_run(repo, "tests/test_a.py", "tests/test_b.py").returncode == 1
    leak = Leak(kind="attr", key="app.config.settings", old="<Settings>", new="<Settings>")
    proposal = TestPollution().propose(pollution(victim, polluter, leak), repo, [])
    assert not proposal.declined, proposal.explanation
    text = read(repo, "tests/test_a.py")
    assert "def test_debug_settings(self, tmp_path, monkeypatch):" in text
    assert (
        'monkeypatch.setattr(config, "settings", config.Settings(debug=True))  # swap the singleton'
        in text
    )
    assert pytest_run(repo, "tests/test_a.py", "tests/test_b.py").returncode == 0


def test_pollution_mock_left_on_module_attribute_and_unstopped_patcher(tmp_path: Path) -> None:
    repo = project(
        tmp_path / "p",
        {
            **APP,
            "tests/test_a.py": """
                from unittest import mock
                from unittest.mock import Mock

                import app.mailer


                def test_mail_is_faked():
                    app.mailer.send = Mock(return_value="faked")
                    assert app.mailer.send("x") == "faked"


                def test_patcher_started():
                    patcher = mock.patch("app.config.mode", return_value="readonly")
                    patcher.start()
                    from app import config

                    assert config.mode() == "readonly"
                """,
            "tests/test_b.py": """
                from app import config, mailer


                def test_real_mailer():
                    assert mailer.send("bob") == "sent to bob"


                def test_real_mode():
                    assert config.mode() == "readwrite"
                """,
        },
    )
    runs = ("tests/test_a.py", "tests/test_b.py")
    before = pytest_run(repo, *runs)
    assert "2 failed" in before.stdout
    work = order(
        "test_isolation",
        "test_pollution",
        [
            ("tests/test_b.py::test_real_mailer", "AssertionError"),
            ("tests/test_b.py::test_real_mode", "AssertionError"),
        ],
    )
    work.findings = [
        finding(
            "tests/test_b.py::test_real_mailer",
            "tests/test_a.py::test_mail_is_faked",
            Leak(kind="attr", key="app.mailer.send", old="<function>", new="<Mock>"),
        ),
        finding(
            "tests/test_b.py::test_real_mode",
            "tests/test_a.py::test_patcher_started",
            Leak(kind="attr", key="app.config.mode", old="'prod'", new="'debug'"),
        ),
    ]
    proposal = TestPollution().propose(work, repo, [])
    assert not proposal.declined, proposal.explanation
    text = read(repo, "tests/test_a.py")
    assert 'monkeypatch.setattr(app.mailer, "send", Mock(return_value="faked"))' in text
    assert "def test_patcher_started(request):\n" in text
    assert "    patcher.start()\n    request.addfinalizer(patcher.stop)\n" in text
    assert pytest_run(repo, *runs).returncode == 0


def test_pollution_cwd_change_becomes_monkeypatch_chdir(tmp_path: Path) -> None:
    repo = project(
        tmp_path / "p",
        {
            "tests/test_a.py": """
                import os
                from os import chdir


                def test_in_scratch_dir(tmp_path):
                    chdir(tmp_path)
                    assert os.listdir(".") == []
                """,
            "tests/test_b.py": """
                from pathlib import Path


                def test_reads_project_file():
                    assert Path("pyproject.toml").is_file()
                """,
        },
    )
    victim, polluter = (
        "tests/test_b.py::test_reads_project_file",
        "tests/test_a.py::test_in_scratch_dir",
    )
    assert pytest_run(repo, "tests/test_a.py", "tests/test_b.py").returncode == 1
    proposal = TestPollution().propose(
        pollution(victim, polluter, Leak(kind="cwd", old="/work", new="/tmp/x")), repo, []
    )
    assert not proposal.declined, proposal.explanation
    text = read(repo, "tests/test_a.py")
    assert (
        "def test_in_scratch_dir(tmp_path, monkeypatch):\n    monkeypatch.chdir(tmp_path)\n" in text
    )
    assert pytest_run(repo, "tests/test_a.py", "tests/test_b.py").returncode == 0


def test_pollution_indirect_env_leak_gets_an_autouse_restore(tmp_path: Path) -> None:
    repo = project(
        tmp_path / "p",
        {
            **APP,
            "tests/test_a.py": """
                from app.config import enable_readonly, mode


                def test_enable_readonly():
                    enable_readonly()
                    assert mode() == "readonly"
                """,
            "tests/test_b.py": """
                from app.config import mode


                def test_default_mode():
                    assert mode() == "readwrite"
                """,
        },
    )
    victim, polluter = "tests/test_b.py::test_default_mode", "tests/test_a.py::test_enable_readonly"
    assert pytest_run(repo, "tests/test_a.py", "tests/test_b.py").returncode == 1
    proposal = TestPollution().propose(
        pollution(victim, polluter, Leak(kind="env", key="SHOP_MODE", new="readonly")), repo, []
    )
    assert not proposal.declined, proposal.explanation
    conftest = read(repo, "tests/conftest.py")
    assert "@pytest.fixture(autouse=True)\ndef _restore_env_shop_mode():" in conftest
    assert 'saved = os.environ.get("SHOP_MODE")' in conftest
    assert "import os" in conftest and "import pytest" in conftest
    assert pytest_run(repo, "tests/test_a.py", "tests/test_b.py").returncode == 0


def test_pollution_declines_without_a_polluter_or_a_clear_leak(tmp_path: Path) -> None:
    repo = project(
        tmp_path / "p",
        {
            "tests/test_a.py": """
                def test_writes_row():
                    assert True
                """,
        },
    )
    no_polluter = order(
        "test_isolation", "test_pollution", [("tests/test_b.py::test_x", "AssertionError")]
    )
    assert TestPollution().propose(no_polluter, repo, []).declined
    unclear = pollution("tests/test_b.py::test_x", "tests/test_a.py::test_writes_row", None)
    proposal = TestPollution().propose(unclear, repo, [])
    assert proposal.declined
    assert "unclear what to reset" in proposal.explanation
    assert not (repo / "tests" / "conftest.py").exists()
    outside = pollution(
        "tests/test_b.py::test_x",
        "../../etc/test_a.py::test_y",
        Leak(kind="cwd", old="/work", new="/tmp"),
    )
    assert TestPollution().propose(outside, repo, []).declined


# --- async_event_loop ------------------------------------------------------------------------

RUN_IN_LOOP = "RuntimeError: asyncio.run() cannot be called from a running event loop"


def test_async_await_instead_of_asyncio_run_in_tests_and_helpers(tmp_path: Path) -> None:
    repo = project(
        tmp_path / "p",
        {
            "pyproject.toml": PYPROJECT + 'asyncio_mode = "auto"\n',
            "src/bench.py": """
                import asyncio


                async def fetch(n):
                    await asyncio.sleep(0)
                    return n * 2
                """,
            "tests/test_bench.py": """
                import asyncio

                from bench import fetch


                def measure(n):
                    # wraps the coroutine for timing
                    return asyncio.run(fetch(n))


                class TestLatency:
                    async def test_direct(self):
                        result = asyncio.run(fetch(2))  # one round trip
                        assert result == 4

                    async def test_helper(self):
                        assert measure(3) == 6


                def test_sync_caller_untouched():
                    assert asyncio.run(fetch(1)) == 2
                """,
        },
    )
    ids = [
        "tests/test_bench.py::TestLatency::test_direct",
        "tests/test_bench.py::TestLatency::test_helper",
    ]
    assert "2 failed, 1 passed" in pytest_run(repo, "tests").stdout
    proposal = AsyncEventLoop().propose(
        order("async_event_loop", "async_event_loop", [(i, RUN_IN_LOOP) for i in ids]), repo, []
    )
    assert not proposal.declined, proposal.explanation
    text = read(repo, "tests/test_bench.py")
    assert (
        "async def measure(n):\n    # wraps the coroutine for timing\n    return await fetch(n)\n"
        in text
    )
    assert "result = await fetch(2)  # one round trip" in text
    assert "assert await measure(3) == 6" in text
    assert "assert asyncio.run(fetch(1)) == 2" in text  # a sync test has no running loop
    assert pytest_run(repo, "tests").returncode == 0


def test_async_declines_when_the_helper_has_sync_callers(tmp_path: Path) -> None:
    repo = project(
        tmp_path / "p",
        {
            "tests/test_x.py": """
                import asyncio


                async def work():
                    return 1


                def run_work():
                    return asyncio.run(work())


                def test_sync():
                    assert run_work() == 1


                async def test_async():
                    assert run_work() == 1
                """,
        },
    )
    before = read(repo, "tests/test_x.py")
    proposal = AsyncEventLoop().propose(
        order(
            "async_event_loop", "async_event_loop", [("tests/test_x.py::test_async", RUN_IN_LOOP)]
        ),
        repo,
        [],
    )
    assert proposal.declined
    assert "run_work" in proposal.explanation
    assert read(repo, "tests/test_x.py") == before
    other = order(
        "async_event_loop",
        "async_event_loop",
        [("tests/test_x.py::test_async", "RuntimeError: boom")],
    )
    assert AsyncEventLoop().propose(other, repo, []).declined


def test_async_aligns_loop_scope_with_a_session_fixture(tmp_path: Path) -> None:
    repo = project(
        tmp_path / "p",
        {
            "tests/conftest.py": """
                import asyncio

                import pytest_asyncio


                class Client:
                    def __init__(self):
                        self.loop = asyncio.get_running_loop()

                    async def ping(self):
                        reply = self.loop.create_future()
                        self.loop.call_soon(reply.set_result, "pong")
                        return await reply


                @pytest_asyncio.fixture(scope="session")
                async def client():
                    yield Client()
                """,
            "tests/test_c.py": """
                import pytest


                @pytest.mark.asyncio
                async def test_ping(client):
                    assert await client.ping() == "pong"


                @pytest.mark.asyncio()
                async def test_ping_twice(client, tmp_path):
                    assert [await client.ping(), await client.ping()] == ["pong", "pong"]
                """,
        },
    )
    message = (
        "RuntimeError: Task <Task pending> got Future <Future pending> attached to a different loop"
    )
    ids = ["tests/test_c.py::test_ping", "tests/test_c.py::test_ping_twice"]
    assert "2 failed" in pytest_run(repo, "tests").stdout
    proposal = AsyncEventLoop().propose(
        order("async_event_loop", "async_event_loop", [(i, message) for i in ids]), repo, []
    )
    assert not proposal.declined, proposal.explanation
    text = read(repo, "tests/test_c.py")
    assert text.count('@pytest.mark.asyncio(loop_scope="session")\nasync def test_ping') == 2
    assert pytest_run(repo, "tests").returncode == 0


# --- docker_lifecycle ------------------------------------------------------------------------


def docker_project(tmp_path: Path, test_source: str) -> tuple[Path, Path, dict[str, str]]:
    """A project whose tests drive a fake docker (on PATH) holding cos_redis."""
    from tests.helpers.fake_docker import fake_docker

    _, state = fake_docker(tmp_path, {"cos_redis": "running"})
    checks = """
        import subprocess


        def test_redis_is_up():
            out = subprocess.run(["docker", "inspect", "-f", "{{.State.Status}}", "cos_redis"], capture_output=True, text=True)
            assert out.stdout.strip() == "running", f"Container cos_redis is {out.stdout.strip()}"
        """
    repo = project(
        tmp_path / "p", {"tests/test_a_pause.py": test_source, "tests/test_b_redis.py": checks}
    )
    env = {"PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    return repo, state, env


def test_docker_restore_moves_into_finally_with_a_readiness_wait(tmp_path: Path) -> None:
    repo, state, env = docker_project(
        tmp_path,
        """
        import subprocess


        def test_degrades_without_redis():
            subprocess.run(["docker", "pause", "cos_redis"], check=True)
            # the app should notice within a second
            assert "degraded" == "ok"
            subprocess.run(["docker", "unpause", "cos_redis"], check=True)
        """,
    )
    assert "2 failed" in pytest_run(repo, "tests", env=env).stdout
    json_state = json.loads(state.read_text())
    json_state["containers"]["cos_redis"] = "running"
    state.write_text(json.dumps(json_state))
    victim = (
        "tests/test_b_redis.py::test_redis_is_up",
        "AssertionError: Container cos_redis is paused",
    )
    work = order("docker_lifecycle", "docker_lifecycle", [victim])
    work.affected_files.append("tests/test_a_pause.py")
    proposal = DockerLifecycle().propose(work, repo, [])
    assert not proposal.declined, proposal.explanation
    text = read(repo, "tests/test_a_pause.py")
    assert (
        '    subprocess.run(["docker", "pause", "cos_redis"], check=True)\n'
        "    try:\n"
        "        # the app should notice within a second\n"
        '        assert "degraded" == "ok"\n'
        "    finally:\n"
        '        subprocess.run(["docker", "unpause", "cos_redis"], check=True)\n'
        '        _wait_until_running("cos_redis")\n'
    ) in text
    assert '\n\n\ndef _wait_until_running(name, docker="docker", timeout=30.0):' in text
    assert "import time" in text
    result = pytest_run(repo, "tests", env=env)
    assert "1 failed, 1 passed" in result.stdout  # the pausing test's own assertion still fails
    assert json.loads(state.read_text())["containers"]["cos_redis"] == "running"


def test_docker_fixture_without_restore_gets_a_teardown(tmp_path: Path) -> None:
    repo, state, env = docker_project(
        tmp_path,
        """
        import subprocess

        import pytest


        @pytest.fixture
        def redis_down():
            subprocess.check_call(["docker", "stop", "cos_redis"])
            yield


        def test_fallback(redis_down):
            assert True
        """,
    )
    assert "1 failed, 1 passed" in pytest_run(repo, "tests", env=env).stdout
    json_state = json.loads(state.read_text())
    json_state["containers"]["cos_redis"] = "running"
    state.write_text(json.dumps(json_state))
    victim = (
        "tests/test_b_redis.py::test_redis_is_up",
        "AssertionError: Container cos_redis is exited",
    )
    work = order("docker_lifecycle", "docker_lifecycle", [victim])
    work.affected_files.append("tests/test_a_pause.py")
    proposal = DockerLifecycle().propose(work, repo, [])
    assert not proposal.declined, proposal.explanation
    text = read(repo, "tests/test_a_pause.py")
    assert "    try:\n        yield\n    finally:\n" in text
    assert '        subprocess.check_call(["docker", "start", "cos_redis"])\n' in text
    assert pytest_run(repo, "tests", env=env).returncode == 0


def test_docker_sdk_pause_and_decline_when_already_guarded(tmp_path: Path) -> None:
    repo = project(
        tmp_path / "p",
        {
            "tests/test_sdk.py": """
                def test_pause(redis_container):
                    redis_container.pause()
                    assert redis_container.status == "paused"
                    redis_container.unpause()
                """,
            "tests/test_guarded.py": """
                import subprocess


                def test_guarded():
                    subprocess.run(["docker", "pause", "cos_redis"], check=True)
                    try:
                        assert True
                    finally:
                        subprocess.run(["docker", "unpause", "cos_redis"], check=True)
                """,
        },
    )
    guarded = order(
        "docker_lifecycle",
        "docker_lifecycle",
        [("tests/test_guarded.py::test_guarded", "Container cos_redis is paused")],
    )
    assert DockerLifecycle().propose(guarded, repo, []).declined
    sdk = order(
        "docker_lifecycle",
        "docker_lifecycle",
        [("tests/test_sdk.py::test_pause", "Container cos_redis is paused")],
    )
    proposal = DockerLifecycle().propose(sdk, repo, [])
    assert not proposal.declined, proposal.explanation
    text = read(repo, "tests/test_sdk.py")
    assert (
        "    finally:\n        redis_container.unpause()\n        _wait_until_running_sdk(redis_container)\n"
        in text
    )
    compile(text, "test_sdk.py", "exec")
