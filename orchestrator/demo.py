"""The bundled demo: a small shop whose suite is red in the ways real suites are.

Every failure is real (nothing is faked): ORM defaults that only apply at flush, string ids where
UUIDs are expected, duplicate names in a shared database, a table never registered before
`create_all`, a patch in the wrong module, `asyncio.run` inside a running loop, an environment
variable leaked by an earlier test, a test that hangs, and one plain logic bug that only a model
(or a person) can fix.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from orchestrator.errors import UsageError

FILES: dict[str, str] = {
    "pyproject.toml": """
        [project]
        name = "shop"
        version = "0.1.0"

        [tool.orchestrator]
        test-cmd = "{python} -m pytest"
        timeout = 5
        env = { PYTEST_DISABLE_PLUGIN_AUTOLOAD = "1" }

        [tool.pytest.ini_options]
        testpaths = ["tests"]
    """,
    ".gitignore": """
        __pycache__/
        *.db
    """,
    "shop/__init__.py": "",
    "shop/db.py": '''
        """Database setup: one declarative base, one engine per database file."""

        from sqlalchemy import create_engine
        from sqlalchemy.orm import DeclarativeBase


        class Base(DeclarativeBase):
            pass


        def engine_for(url="sqlite://"):
            return create_engine(url)
    ''',
    "shop/models.py": """
        import uuid

        from sqlalchemy import Boolean, Integer, String, Uuid
        from sqlalchemy.orm import Mapped, mapped_column

        from shop.db import Base


        class Product(Base):
            __tablename__ = "products"

            id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
            name: Mapped[str] = mapped_column(String(80), unique=True)
            active: Mapped[bool] = mapped_column(Boolean, default=True)
            stock: Mapped[int] = mapped_column(Integer, default=0)
    """,
    "shop/health.py": """
        from sqlalchemy import Integer, String
        from sqlalchemy.orm import Mapped, mapped_column

        from shop.db import Base


        class HealthStatus(Base):
            __tablename__ = "health_status"

            id: Mapped[int] = mapped_column(Integer, primary_key=True)
            service: Mapped[str] = mapped_column(String(40))
            status: Mapped[str] = mapped_column(String(20))
    """,
    "shop/ids.py": '''
        import uuid


        def parse_id(value):
            """Ids arrive as strings from the API and are UUIDs everywhere inside."""
            return value if isinstance(value, uuid.UUID) else uuid.UUID(value)


        def order_key(order_id):
            return parse_id(order_id).hex[:8]
    ''',
    "shop/catalog.py": '''
        import sqlite3


        def connect(path):
            conn = sqlite3.connect(path)
            conn.execute("CREATE TABLE IF NOT EXISTS items (name TEXT UNIQUE, price REAL)")
            return conn


        def create_item(conn, name, price):
            """The API's POST /items: 201 when created, 409 when the name is taken."""
            try:
                with conn:
                    conn.execute("INSERT INTO items VALUES (?, ?)", (name, price))
            except sqlite3.IntegrityError:
                return 409
            return 201
    ''',
    "shop/mailer.py": '''
        def send(to, subject):
            """Talks to the mail server; tests patch it out."""
            return None
    ''',
    "shop/notify.py": """
        from shop.mailer import send


        def order_shipped(email):
            send(email, "Your order has shipped")
            return True
    """,
    "shop/config.py": """
        import os


        def mode():
            return os.environ.get("SHOP_MODE", "readwrite")


        def can_write():
            return mode() != "readonly"
    """,
    "shop/pricing.py": '''
        def discounted(price, percent):
            """The price after a discount of `percent` per cent."""
            return round(price * percent / 100, 2)
    ''',
    "shop/stock.py": """
        import asyncio


        async def fetch_count(name):
            await asyncio.sleep(0)
            return 3
    """,
    "tests/__init__.py": "",
    "tests/conftest.py": '''
        import pytest

        from shop import models  # noqa: F401  (registers the products table)
        from shop.db import Base, engine_for


        @pytest.fixture
        def engine():
            engine = engine_for()
            Base.metadata.create_all(engine)
            return engine


        @pytest.fixture
        def shared_db():
            """The API tests share one seeded database, as they do against a staging server."""
            from shop.catalog import connect

            conn = connect("shared.db")
            with conn:
                conn.execute("INSERT OR IGNORE INTO items VALUES ('widget', 9.5), ('gadget', 1.0)")
            return conn
    ''',
    "tests/test_models.py": """
        from shop.models import Product


        def test_new_product_is_active():
            product = Product(name="lamp")
            assert product.active is True


        def test_new_product_has_an_id():
            product = Product(name="desk")
            assert product.id is not None


        def test_new_product_has_no_stock():
            assert Product(name="chair").stock == 0
    """,
    "tests/test_health.py": """
        from sqlalchemy import text


        def test_record_health(engine):
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO health_status (service, status) VALUES ('api', 'ok')"))
                assert conn.execute(text("SELECT count(*) FROM health_status")).scalar() == 1
    """,
    "tests/test_ids.py": """
        from shop.ids import order_key, parse_id


        def test_parse_id_roundtrip():
            order_id = "order-001"
            assert str(parse_id(order_id)) == str(parse_id(order_id))


        def test_order_key_is_short():
            assert len(order_key("test-id")) == 8
    """,
    "tests/test_catalog.py": """
        from shop.catalog import create_item


        def test_create_item(shared_db):
            status = create_item(shared_db, name="widget", price=9.5)
            assert status == 201


        def test_create_cheap_item(shared_db):
            assert create_item(shared_db, name="gadget", price=1.0) == 201
    """,
    "tests/test_notify.py": """
        from unittest.mock import patch

        from shop.notify import order_shipped


        def test_order_shipped_sends_mail():
            with patch("shop.mailer.send") as send:
                assert order_shipped("a@example.com") is True
            send.assert_called_once()
    """,
    "tests/test_a_settings.py": """
        import os

        from shop import config


        def test_readonly_mode():
            os.environ["SHOP_MODE"] = "readonly"
            assert config.can_write() is False
    """,
    "tests/test_orders.py": """
        from shop import config


        def test_can_place_order():
            assert config.can_write() is True
    """,
    "tests/test_pricing.py": """
        from shop.pricing import discounted


        def test_ten_percent_off():
            assert discounted(100.0, 10) == 90.0
    """,
    "tests/test_stock.py": """
        import asyncio

        from shop.stock import fetch_count


        async def total(names):
            return sum([asyncio.run(fetch_count(n)) for n in names])


        def test_total_stock():
            assert asyncio.run(total(["lamp", "desk"])) == 6
    """,
    "tests/test_warehouse.py": '''
        import time


        def test_warehouse_sync():
            """Waits for a warehouse service that is not running in tests."""
            time.sleep(60)
    ''',
    "tests/test_passing.py": """
        import pytest

        from shop.pricing import discounted


        @pytest.mark.parametrize("price", [0.0, 10.0, 99.99])
        def test_zero_discount_keeps_price_type(price):
            assert isinstance(discounted(price, 0), float)


        def test_free_is_zero():
            assert discounted(0.0, 50) == 0.0
    """,
}


def build_demo(directory: Path | None = None) -> Path:
    """Write the demo repository (a fresh git repo with one commit) and return its path."""
    try:
        import sqlalchemy  # noqa: F401
    except ImportError:
        raise UsageError(
            "the demo needs SQLAlchemy and pytest: install them with `pip install 'orchestrate[demo]'`"
        ) from None
    root = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="orchestrate-demo-"))
    repo = root / "shop"
    if repo.exists():
        raise UsageError(f"{repo} already exists: pass another --dir")
    for rel, text in FILES.items():
        path = repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        body = textwrap.dedent(text).lstrip("\n")
        path.write_text(body.replace("{python}", sys.executable), encoding="utf-8")
    env = {
        "GIT_AUTHOR_NAME": "demo",
        "GIT_AUTHOR_EMAIL": "demo@localhost",
        "GIT_COMMITTER_NAME": "demo",
        "GIT_COMMITTER_EMAIL": "demo@localhost",
        "HOME": str(root),
    }
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "-A"],
        ["commit", "-q", "-m", "shop: initial"],
    ):
        subprocess.run(["git", *args], cwd=repo, check=True, env={**_path_env(), **env})
    return repo


def _path_env() -> dict[str, str]:
    import os

    return {"PATH": os.environ.get("PATH", "")}
