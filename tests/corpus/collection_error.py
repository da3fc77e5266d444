"""collection_error: a test module imports a name that was renamed or moved."""

from tests.corpus import Shape

RENAMED_FUNCTION = Shape(
    "collection_error",
    "function-renamed-in-its-module",
    "renamed_import",
    files={
        "shop/__init__.py": "",
        "shop/pricing.py": '''
            def calculate_total(prices, discount=0.0):
                """The basket's total after the discount (renamed from compute_total)."""
                return round(sum(prices) * (1 - discount), 2)


            def calculate_tax(total):
                return round(total * 0.2, 2)
        ''',
        "tests/__init__.py": "",
        "tests/test_pricing.py": """
            from shop.pricing import calculate_tax, compute_total


            def test_total():
                assert compute_total([1.0, 2.0]) == 3.0


            def test_discounted_total():
                assert compute_total([10.0], discount=0.5) == 5.0


            def test_tax():
                assert calculate_tax(10.0) == 2.0
        """,
    },
    fixed={
        "tests/test_pricing.py": """
            from shop.pricing import calculate_tax, calculate_total


            def test_total():
                assert calculate_total([1.0, 2.0]) == 3.0


            def test_discounted_total():
                assert calculate_total([10.0], discount=0.5) == 5.0


            def test_tax():
                assert calculate_tax(10.0) == 2.0
        """,
    },
    failing=1,  # the module's collection error
)

MOVED_MODULE = Shape(
    "collection_error",
    "helper-moved-to-another-module",
    "renamed_import",
    files={
        "blog/__init__.py": "",
        "blog/text.py": '''
            import re


            def slugify(title):
                """`Hello, World!` -> `hello-world`."""
                return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
        ''',
        "blog/posts.py": """
            from blog.text import slugify


            def permalink(title):
                return f"/posts/{slugify(title)}"
        """,
        "tests/__init__.py": "",
        "tests/test_posts.py": """
            import unittest

            from blog.posts import permalink
            from blog.utils import slugify


            class PermalinkTest(unittest.TestCase):
                def test_slug(self):
                    self.assertEqual(slugify("Hello, World!"), "hello-world")

                def test_permalink(self):
                    self.assertEqual(permalink("Hi there"), "/posts/hi-there")
        """,
    },
    fixed={
        "tests/test_posts.py": """
            import unittest

            from blog.posts import permalink
            from blog.text import slugify


            class PermalinkTest(unittest.TestCase):
                def test_slug(self):
                    self.assertEqual(slugify("Hello, World!"), "hello-world")

                def test_permalink(self):
                    self.assertEqual(permalink("Hi there"), "/posts/hi-there")
        """,
    },
    failing=1,
)

RENAMED_CLASS = Shape(
    "collection_error",
    "class-renamed-used-as-module-attribute",
    "renamed_import",
    files={
        "crm/__init__.py": "",
        "crm/models.py": """
            from dataclasses import dataclass


            @dataclass
            class Account:
                email: str
                active: bool = True


            @dataclass
            class AccountGroup:
                name: str
        """,
        "tests/__init__.py": "",
        "tests/test_accounts.py": """
            import pytest

            from crm import models

            USER_MODEL = models.UserAccount


            @pytest.fixture
            def account():
                return USER_MODEL(email="ann@example.com")


            def test_new_accounts_are_active(account):
                assert account.active
        """,
    },
    fixed={
        "tests/test_accounts.py": """
            import pytest

            from crm import models

            USER_MODEL = models.Account


            @pytest.fixture
            def account():
                return USER_MODEL(email="ann@example.com")


            def test_new_accounts_are_active(account):
                assert account.active
        """,
    },
    failing=1,
)

SHAPES = (RENAMED_FUNCTION, MOVED_MODULE, RENAMED_CLASS)
