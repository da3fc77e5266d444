"""mock_not_called: a mock patched where the name is defined, not where it is looked up."""

from tests.corpus import Shape

DJANGO_MAIL = Shape(
    "mock_not_called",
    "django-send-mail-patched-at-its-source",
    "patch_target",
    files={
        "shop/__init__.py": "",
        "shop/settings.py": """
            SECRET_KEY = "tests"
            INSTALLED_APPS = ["django.contrib.contenttypes"]
            DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
            EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
            USE_TZ = True
        """,
        "shop/notifications.py": """
            from django.core.mail import send_mail


            def order_shipped(email):
                send_mail("Shipped", "Your order is on its way.", "shop@example.com", [email])
        """,
        "tests/__init__.py": "",
        "tests/test_notifications.py": """
            from unittest import mock

            from shop.notifications import order_shipped


            @mock.patch("django.core.mail.send_mail")
            def test_customer_is_told(send_mail):
                order_shipped("ann@example.com")
                send_mail.assert_called_once()
        """,
    },
    fixed={
        "tests/test_notifications.py": """
            from unittest import mock

            from shop.notifications import order_shipped


            @mock.patch("shop.notifications.send_mail")
            def test_customer_is_told(send_mail):
                order_shipped("ann@example.com")
                send_mail.assert_called_once()
        """,
    },
    failing=1,
    plugins=("pytest_django.plugin",),
    ini='DJANGO_SETTINGS_MODULE = "shop.settings"\n',
)

UNITTEST_CLASS = Shape(
    "mock_not_called",
    "unittest-class-decorator-patch",
    "patch_target",
    files={
        "billing/__init__.py": "",
        "billing/gateway.py": '''
            def charge(card, cents):
                """Talks to the payment provider (a sandbox account in development)."""
                return {"status": "sandbox"}
        ''',
        "billing/checkout.py": """
            from billing.gateway import charge


            def pay(card, cents):
                charge(card, cents)
                return "paid"
        """,
        "tests/__init__.py": "",
        "tests/test_checkout.py": """
            import unittest
            from unittest.mock import patch

            from billing.checkout import pay


            @patch("billing.gateway.charge")
            class PayTest(unittest.TestCase):
                def test_charges_the_card(self, charge):
                    pay("4242", 500)
                    charge.assert_called_once_with("4242", 500)
        """,
    },
    fixed={
        "tests/test_checkout.py": """
            import unittest
            from unittest.mock import patch

            from billing.checkout import pay


            @patch("billing.checkout.charge")
            class PayTest(unittest.TestCase):
                def test_charges_the_card(self, charge):
                    pay("4242", 500)
                    charge.assert_called_once_with("4242", 500)
        """,
    },
    failing=1,
)

ASYNC_MOCK = Shape(
    "mock_not_called",
    "async-mock-patched-on-the-defining-module",
    "patch_target",
    files={
        "feeds/__init__.py": "",
        "feeds/http.py": """
            import asyncio


            async def fetch(url):
                await asyncio.sleep(0)
                return "<rss/>"
        """,
        "feeds/sync.py": """
            from feeds.http import fetch


            async def refresh(urls):
                return [await fetch(url) for url in urls]
        """,
        "tests/__init__.py": "",
        "tests/test_sync.py": """
            from unittest.mock import AsyncMock, patch

            from feeds.sync import refresh


            async def test_refresh_fetches_each_feed():
                with patch("feeds.http.fetch", new_callable=AsyncMock) as fetch:
                    fetch.return_value = "<rss/>"
                    await refresh(["https://a.example/rss"])
                fetch.assert_awaited_once()
        """,
    },
    fixed={
        "tests/test_sync.py": """
            from unittest.mock import AsyncMock, patch

            from feeds.sync import refresh


            async def test_refresh_fetches_each_feed():
                with patch("feeds.sync.fetch", new_callable=AsyncMock) as fetch:
                    fetch.return_value = "<rss/>"
                    await refresh(["https://a.example/rss"])
                fetch.assert_awaited_once()
        """,
    },
    failing=1,
    plugins=("pytest_asyncio.plugin",),
    ini='asyncio_mode = "auto"\n',
)

SHAPES = (DJANGO_MAIL, UNITTEST_CLASS, ASYNC_MOCK)
