"""test_isolation: a polluting test leaves process state behind for the tests after it."""

from tests.corpus import Shape

SETTINGS = {
    "app/__init__.py": "",
    "app/settings.py": """
        import os

        MODE = "readwrite"
        TIMEOUT = 30


        def environment():
            return os.environ.get("APP_ENV", "development")
    """,
}

UNITTEST_MONKEYPATCH = Shape(
    "test_isolation",
    "unittest-monkeypatch-made-in-setup-never-undone",
    "test_pollution",
    files={
        **SETTINGS,
        "tests/__init__.py": "",
        "tests/test_a_readonly.py": """
            import unittest

            import pytest

            from app import settings


            class ReadOnlyTest(unittest.TestCase):
                def setUp(self):
                    self.mp = pytest.MonkeyPatch()
                    self.mp.setattr(settings, "MODE", "readonly")

                def test_mode_is_readonly(self):
                    self.assertEqual(settings.MODE, "readonly")
        """,
        "tests/test_b_writes.py": """
            from app import settings


            def test_writes_are_allowed():
                assert settings.MODE == "readwrite"
        """,
    },
    fixed={
        "tests/test_a_readonly.py": """
            import unittest

            import pytest

            from app import settings


            class ReadOnlyTest(unittest.TestCase):
                def setUp(self):
                    self.mp = pytest.MonkeyPatch()
                    self.addCleanup(self.mp.undo)
                    self.mp.setattr(settings, "MODE", "readonly")

                def test_mode_is_readonly(self):
                    self.assertEqual(settings.MODE, "readonly")
        """,
    },
    failing=1,
    isolation=True,
)

MODULE_FIXTURE = Shape(
    "test_isolation",
    "module-scoped-fixture-sets-environ",
    "test_pollution",
    files={
        **SETTINGS,
        "tests/__init__.py": "",
        "tests/test_a_production.py": '''
            import os

            import pytest

            from app import settings


            @pytest.fixture(scope="module")
            def production():
                """The whole module runs as production."""
                os.environ["APP_ENV"] = "production"
                yield


            def test_environment_is_production(production):
                assert settings.environment() == "production"
        ''',
        "tests/test_b_defaults.py": """
            from app import settings


            def test_environment_defaults_to_development():
                assert settings.environment() == "development"
        """,
    },
    fixed={
        "tests/test_a_production.py": '''
            import os

            import pytest

            from app import settings


            @pytest.fixture(scope="module")
            def production():
                """The whole module runs as production."""
                with pytest.MonkeyPatch.context() as mp:
                    mp.setenv("APP_ENV", "production")
                    yield


            def test_environment_is_production(production):
                assert settings.environment() == "production"
        ''',
    },
    failing=1,
    isolation=True,
)

UNITTEST_PATCHER = Shape(
    "test_isolation",
    "unittest-patcher-started-in-setup-never-stopped",
    "test_pollution",
    files={
        **SETTINGS,
        "app/clock.py": """
            import datetime


            def today():
                return datetime.date.today()
        """,
        "tests/__init__.py": "",
        "tests/test_a_billing.py": """
            import datetime
            import unittest
            from unittest import mock

            from app import clock


            class BillingDayTest(unittest.TestCase):
                def setUp(self):
                    self.today = mock.patch.object(clock, "today", return_value=datetime.date(2024, 1, 31))
                    self.today.start()

                def test_end_of_month(self):
                    self.assertEqual(clock.today().day, 31)
        """,
        "tests/test_b_calendar.py": """
            import datetime

            from app import clock


            def test_today_is_today():
                assert clock.today() == datetime.date.today()
        """,
    },
    fixed={
        "tests/test_a_billing.py": """
            import datetime
            import unittest
            from unittest import mock

            from app import clock


            class BillingDayTest(unittest.TestCase):
                def setUp(self):
                    self.today = mock.patch.object(clock, "today", return_value=datetime.date(2024, 1, 31))
                    self.today.start()
                    self.addCleanup(self.today.stop)

                def test_end_of_month(self):
                    self.assertEqual(clock.today().day, 31)
        """,
    },
    failing=1,
    isolation=True,
)

ENVIRON_UPDATE = Shape(
    "test_isolation",
    "pytest-function-updates-environ",
    "test_pollution",
    files={
        **SETTINGS,
        "tests/__init__.py": "",
        "tests/test_a_staging.py": """
            import os

            from app import settings


            def test_staging_environment():
                os.environ.update({"APP_ENV": "staging", "APP_REGION": "eu"})
                assert settings.environment() == "staging"
        """,
        "tests/test_b_local.py": """
            from app import settings


            def test_local_environment():
                assert settings.environment() == "development"
        """,
    },
    fixed={
        "tests/test_a_staging.py": """
            import os

            from app import settings


            def test_staging_environment(monkeypatch):
                monkeypatch.setenv("APP_ENV", "staging")
                monkeypatch.setenv("APP_REGION", "eu")
                assert settings.environment() == "staging"
        """,
    },
    failing=1,
    isolation=True,
)

SHAPES = (UNITTEST_MONKEYPATCH, MODULE_FIXTURE, UNITTEST_PATCHER, ENVIRON_UPDATE)
