"""docker_lifecycle: tests that pause or stop service containers and leave them so."""

import textwrap

from tests.corpus import Shape

WAIT = '''

def _wait_until_running(name, docker="docker", timeout=30.0):
    """Poll `docker inspect` until the container runs again, so later tests don't hit it paused."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = subprocess.run(
            [docker, "inspect", "-f", "{{.State.Running}}", name],
            capture_output=True,
            text=True,
            check=False,
        )
        if state.stdout.strip() == "true":
            return
        time.sleep(0.2)
    raise RuntimeError(f"container {name} not running {timeout}s after it was restored")
'''

STATUS = """
    import subprocess


    def status(name):
        out = subprocess.run(
            ["docker", "inspect", "-f", "{{.State.Status}}", name],
            capture_output=True, text=True, check=True,
        )
        return out.stdout.strip()
"""

FIXTURE_STOP = Shape(
    "docker_lifecycle",
    "conftest-fixture-stops-without-teardown",
    "docker_lifecycle",
    files={
        "tests/__init__.py": "",
        "tests/status.py": STATUS,
        "tests/conftest.py": """
            import subprocess

            import pytest


            @pytest.fixture
            def search_down():
                subprocess.check_call(["docker", "stop", "cos_search"])
                yield
        """,
        "tests/test_a_fallback.py": """
            def test_search_falls_back_to_sql(search_down):
                assert "sql" in "fallback: sql LIKE"
        """,
        "tests/test_b_search.py": """
            from tests.status import status


            def test_search_is_up():
                assert status("cos_search") == "running", "Container cos_search is not running"
        """,
    },
    fixed={
        "tests/conftest.py": textwrap.dedent(
            """
            import subprocess
            import time

            import pytest


            @pytest.fixture
            def search_down():
                subprocess.check_call(["docker", "stop", "cos_search"])
                try:
                    yield
                finally:
                    subprocess.check_call(["docker", "start", "cos_search"])
                    _wait_until_running("cos_search")
        """
        ).lstrip("\n")
        + WAIT,
    },
    failing=1,
    docker={"cos_search": "running"},
)

UNITTEST_HELPER = Shape(
    "docker_lifecycle",
    "unittest-helper-method-pauses-a-constant",
    "docker_lifecycle",
    files={
        "tests/__init__.py": "",
        "tests/status.py": STATUS,
        "tests/test_a_cache.py": '''
            import subprocess
            import unittest

            REDIS = "cos_redis"


            class CacheOutageTest(unittest.TestCase):
                def docker(self, *args):
                    """The compose stack's containers, by name."""
                    subprocess.run(["docker", *args], check=True, capture_output=True)

                def test_pages_render_without_the_cache(self):
                    self.docker("pause", REDIS)
                    self.assertIn("render", "render without cache")
        ''',
        "tests/test_b_sessions.py": """
            import unittest

            from tests.status import status


            class SessionsTest(unittest.TestCase):
                def test_sessions_need_redis(self):
                    self.assertEqual(status("cos_redis"), "running", "Container cos_redis is paused")
        """,
    },
    fixed={
        "tests/test_a_cache.py": textwrap.dedent(
            '''
            import subprocess
            import time
            import unittest

            REDIS = "cos_redis"


            class CacheOutageTest(unittest.TestCase):
                def docker(self, *args):
                    """The compose stack's containers, by name."""
                    subprocess.run(["docker", *args], check=True, capture_output=True)

                def test_pages_render_without_the_cache(self):
                    self.docker("pause", REDIS)
                    try:
                        self.assertIn("render", "render without cache")
                    finally:
                        self.docker("unpause", REDIS)
                        _wait_until_running(REDIS)
        '''
        ).lstrip("\n")
        + WAIT,
    },
    failing=1,
    docker={"cos_redis": "running"},
)

NO_CONTAINER = Shape(
    "docker_lifecycle",
    "shell-string-helper-and-no-container-to-pause",
    "docker_lifecycle",
    files={
        "app/__init__.py": "",
        "app/cache.py": '''
            import os
            import socket
            from urllib.parse import urlsplit


            def _connect():
                url = urlsplit(os.environ.get("REDIS_URL", "redis://localhost:6379/0"))
                return socket.create_connection((url.hostname, url.port), timeout=0.5)


            def cached_greeting(name):
                """The greeting from the cache; made afresh when the cache is down."""
                try:
                    with _connect() as conn:
                        conn.sendall(f"GET greet:{name}\\r\\n".encode())
                        return conn.recv(64).decode() or f"hello {name}"
                except OSError:
                    return f"hello {name}"
        ''',
        "tests/__init__.py": "",
        "tests/conftest.py": '''
            import subprocess

            import pytest

            REDIS = "cos_redis"


            def docker(command):
                """A docker command, as the Makefile runs it."""
                subprocess.run(f"docker {command}", shell=True, check=True, capture_output=True)


            @pytest.fixture
            def redis_outage():
                docker(f"pause {REDIS}")
                try:
                    yield
                finally:
                    docker(f"unpause {REDIS}")
        ''',
        "tests/test_greetings.py": """
            from app.cache import cached_greeting


            def test_greeting_survives_a_cache_outage(redis_outage):
                assert cached_greeting("ann") == "hello ann"
        """,
    },
    fixed={
        "tests/conftest.py": '''
            import subprocess

            import pytest

            REDIS = "cos_redis"


            def docker(command):
                """A docker command, as the Makefile runs it."""
                subprocess.run(f"docker {command}", shell=True, check=True, capture_output=True)


            @pytest.fixture
            def redis_outage(monkeypatch):
                # The outage without the container: the client points at an address nothing listens on.
                monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
                yield
        ''',
    },
    failing=1,
    docker={"cos_db": "running"},  # the stack here has no cos_redis
)

SHAPES = (FIXTURE_STOP, UNITTEST_HELPER, NO_CONTAINER)
