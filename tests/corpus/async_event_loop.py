"""async_event_loop: a loop started inside a running one, or a fixture on another loop."""

from tests.corpus import Shape

ASYNCIO = ("pytest_asyncio.plugin",)
AUTO = 'asyncio_mode = "auto"\n'

RATES = {
    "rates/__init__.py": "",
    "rates/client.py": '''
        import asyncio

        TABLE = {"EUR": 1.0, "USD": 1.1, "GBP": 0.9}


        async def fetch_rate(currency):
            await asyncio.sleep(0)  # the rates service
            return TABLE[currency]


        def get_rate(currency):
            """For scripts and the CLI."""
            return asyncio.run(fetch_rate(currency))
    ''',
}

SYNC_WRAPPER = Shape(
    "async_event_loop",
    "sync-wrapper-over-a-public-coroutine",
    "async_event_loop",
    files={
        **RATES,
        "tests/__init__.py": "",
        "tests/test_rates.py": """
            from rates.client import get_rate


            async def test_euro_is_the_base():
                assert get_rate("EUR") == 1.0


            async def test_all_rates():
                rates = [get_rate(c) for c in ("USD", "GBP")]
                assert rates == [1.1, 0.9]


            def test_from_a_script():
                assert get_rate("USD") == 1.1
        """,
    },
    fixed={
        "tests/test_rates.py": """
            import asyncio

            from rates.client import fetch_rate, get_rate


            async def test_euro_is_the_base():
                assert await fetch_rate("EUR") == 1.0


            async def test_all_rates():
                rates = list(await asyncio.gather(*(fetch_rate(c) for c in ("USD", "GBP"))))
                assert rates == [1.1, 0.9]


            def test_from_a_script():
                assert get_rate("USD") == 1.1
        """,
    },
    failing=2,
    plugins=ASYNCIO,
    ini=AUTO,
)

METHOD_WRAPPER = Shape(
    "async_event_loop",
    "unittest-async-case-calls-a-sync-method",
    "async_event_loop",
    files={
        "stock/__init__.py": "",
        "stock/inventory.py": '''
            import asyncio


            class Inventory:
                def __init__(self, counts):
                    self.counts = dict(counts)

                async def count(self, sku):
                    await asyncio.sleep(0)  # the warehouse API
                    return self.counts.get(sku, 0)

                def count_now(self, sku):
                    """Blocking variant for the admin shell."""
                    return asyncio.run(self.count(sku))
        ''',
        "tests/__init__.py": "",
        "tests/test_inventory.py": """
            import unittest

            from stock.inventory import Inventory


            class InventoryTest(unittest.IsolatedAsyncioTestCase):
                async def asyncSetUp(self):
                    self.inventory = Inventory({"A1": 3})

                async def test_known_sku(self):
                    self.assertEqual(self.inventory.count_now("A1"), 3)

                async def test_unknown_sku(self):
                    self.assertEqual(self.inventory.count_now(sku="Z9"), 0)
        """,
    },
    fixed={
        "tests/test_inventory.py": """
            import unittest

            from stock.inventory import Inventory


            class InventoryTest(unittest.IsolatedAsyncioTestCase):
                async def asyncSetUp(self):
                    self.inventory = Inventory({"A1": 3})

                async def test_known_sku(self):
                    self.assertEqual(await self.inventory.count("A1"), 3)

                async def test_unknown_sku(self):
                    self.assertEqual(await self.inventory.count("Z9"), 0)
        """,
    },
    failing=2,
)

POOL = Shape(
    "async_event_loop",
    "module-scoped-pool-fixture-in-the-test-module",
    "async_event_loop",
    files={
        "app/__init__.py": "",
        "app/pool.py": '''
            import asyncio


            class Pool:
                """Connections bound to the loop that opened them, like asyncpg's."""

                async def open(self):
                    self.loop = asyncio.get_running_loop()
                    return self

                async def fetchval(self, query):
                    reply = self.loop.create_future()
                    self.loop.call_soon(reply.set_result, 1)
                    return await reply
        ''',
        "tests/__init__.py": "",
        "tests/test_queries.py": """
            import pytest
            import pytest_asyncio

            from app.pool import Pool


            @pytest_asyncio.fixture(scope="module", loop_scope="module")
            async def pool():
                yield await Pool().open()


            async def test_select_one(pool):
                assert await pool.fetchval("SELECT 1") == 1


            @pytest.mark.asyncio
            async def test_select_again(pool):
                assert await pool.fetchval("SELECT 1") == 1
        """,
    },
    fixed={
        "tests/test_queries.py": """
            import pytest
            import pytest_asyncio

            from app.pool import Pool


            @pytest_asyncio.fixture(scope="module", loop_scope="module")
            async def pool():
                yield await Pool().open()


            @pytest.mark.asyncio(loop_scope="module")
            async def test_select_one(pool):
                assert await pool.fetchval("SELECT 1") == 1


            @pytest.mark.asyncio(loop_scope="module")
            async def test_select_again(pool):
                assert await pool.fetchval("SELECT 1") == 1
        """,
    },
    failing=2,
    plugins=ASYNCIO,
    ini=AUTO,
)

SHAPES = (SYNC_WRAPPER, METHOD_WRAPPER, POOL)
