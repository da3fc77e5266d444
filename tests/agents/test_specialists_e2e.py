"""Every deterministic specialist end to end: `orchestrate run --agents <name>` on a throwaway repo.

Each repo carries its category's real failure (run by real pytest, nothing faked), the run goes
through triage, the specialist, the verifier and integration, and the test checks what a reviewer
would: the failing tests pass on the integration branch, nothing else broke, the patch reads like
a careful engineer's, and the user's checkout is untouched. One repo holds a failure per category
whose cause no codemod can determine: every specialist must decline it with a reason. Offline
throughout: no ANTHROPIC_API_KEY.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from orchestrator.agents.uuid_type import stable_uuid
from orchestrator.cli import main
from orchestrator.git import GitRepo
from tests.helpers import git
from tests.helpers.fake_docker import fake_docker

SUFFIX = "{uuid.uuid4().hex[:8]}"


def pyproject(*, asyncio: bool = False, pytest_ini: str = "") -> str:
    """This interpreter runs the suite; only the plugins a scenario needs are loaded."""
    command = f"{sys.executable} -m pytest" + (" -p pytest_asyncio.plugin" if asyncio else "")
    text = (
        f"[tool.orchestrator]\ntest-cmd = {json.dumps(command)}\n"
        'env = { PYTEST_DISABLE_PLUGIN_AUTOLOAD = "1" }\n'
    )
    return text + (f"\n[tool.pytest.ini_options]\n{pytest_ini}" if pytest_ini else "")


def run(repo: Path, tmp_path: Path, capsys, *args: str, isolation: bool = False) -> dict:
    """`orchestrate run` with JSON output; the user's checkout must come out as it went in."""
    before = GitRepo(repo).fingerprint()
    code = main(
        [
            "run", str(repo), "--no-tui", "--json", "--timeout", "20", "--max-attempts", "1",
            "--handoff-dir", str(tmp_path / "handoffs"),
            *([] if isolation else ["--no-isolation"]), *args,
        ]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert GitRepo(repo).fingerprint() == before
    return {**json.loads(out), "_repo": repo}


def agent(report: dict, category: str) -> dict:
    found = {a["category"]: a for a in report["agents"]}
    assert category in found, f"no agent took {category}: {report['agents']}"
    return found[category]


def git_branches(report: dict) -> str:
    """The agent branches the integration branch contains."""
    repo, branch = report["_repo"], report["integration_branch"]
    return git(repo, "branch", "--list", "orchestrate/*", "--merged", branch)


def show(repo: Path, report: dict, path: str) -> str:
    return git(repo, "show", f"{report['integration_branch']}:{path}")


def assert_all_fixed(report: dict, category: str, failing: int) -> dict:
    """The category's agent was accepted and merged; after it, the whole suite passes."""
    result = agent(report, category)
    assert result["status"] == "accepted", result["reason"]
    assert result["branch"] in git_branches(report), result  # merged into the integration branch
    assert len(result["fixed"]) == failing, result["fixed"]
    before, after = report["before"], report["after"]
    assert before["failed"] + before["errors"] == failing, before
    assert (after["failed"], after["errors"], after["passed"]) == (0, 0, before["total"]), after
    return result


# --- model_defaults ----------------------------------------------------------------------------

MODEL_FILES = {
    "shop/__init__.py": "",
    "shop/db.py": """
        from sqlalchemy.orm import DeclarativeBase


        class Base(DeclarativeBase):
            pass
    """,
    "shop/models.py": '''
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

            def label(self):
                """What the shelf shows."""
                return f"{self.name} ({self.stock})"
    ''',
    "shop/legacy.py": """
        import datetime
        from uuid import uuid4

        from sqlalchemy import Column, DateTime, Integer, String
        from sqlalchemy.orm import declarative_base

        Base = declarative_base()
        DEFAULT_RETRIES = 3


        class Delivery(Base):
            __tablename__ = "deliveries"
            id = Column(String(36), primary_key=True, default=lambda: str(uuid4()))
            status = Column(String, default="pending")
            retries = Column(Integer, default=DEFAULT_RETRIES)
            created_at = Column(DateTime, default=datetime.datetime.utcnow)
    """,
    "tests/__init__.py": "",
    "tests/test_models.py": """
        from shop.models import Product


        def test_new_product_is_active():
            assert Product(name="lamp").active is True


        def test_new_product_has_an_id():
            assert Product(name="desk").id is not None


        def test_new_product_has_no_stock():
            assert Product(name="chair").stock == 0


        def test_given_values_win():
            assert Product(name="sofa", active=False).active is False
    """,
    "tests/test_legacy.py": """
        from shop.legacy import Delivery


        def test_new_delivery_is_pending():
            delivery = Delivery()
            assert delivery.status == "pending"
            assert delivery.retries == 3


        def test_new_delivery_is_stamped():
            assert Delivery().created_at is not None
    """,
}


def test_model_defaults_init_fills_declared_defaults(make_repo, tmp_path, capsys):
    repo = make_repo(MODEL_FILES)
    report = run(repo, tmp_path, capsys, "--agents", "model_defaults")
    result = assert_all_fixed(report, "model_defaults", 5)
    assert sorted(result["files_changed"]) == ["shop/legacy.py", "shop/models.py"]  # no test edit
    models = show(repo, report, "shop/models.py")
    assert (
        '''    stock: Mapped[int] = mapped_column(Integer, default=0)

    def __init__(self, **kwargs):
        """Apply the column defaults now: SQLAlchemy applies them only at flush."""
        kwargs.setdefault("id", uuid.uuid4())
        kwargs.setdefault("active", True)
        kwargs.setdefault("stock", 0)
        super().__init__(**kwargs)

    def label(self):'''
        in models
    )
    legacy = show(repo, report, "shop/legacy.py")
    assert 'kwargs.setdefault("id", str(uuid4()))' in legacy  # the lambda's body, not the lambda
    assert 'kwargs.setdefault("retries", DEFAULT_RETRIES)' in legacy  # the constant, not called
    assert 'kwargs.setdefault("created_at", datetime.datetime.utcnow())' in legacy
    assert "import uuid\n" not in legacy  # the module's own uuid4 is reused


# --- uuid_type ---------------------------------------------------------------------------------

UUID_FILES = {
    "shop/__init__.py": "",
    "shop/ids.py": '''
        import uuid


        def parse_id(value):
            """Ids arrive as strings from the API and are UUIDs everywhere inside."""
            return value if isinstance(value, uuid.UUID) else uuid.UUID(value)


        def order_key(order_id):
            return parse_id(order_id).hex[:8]
    ''',
    "shop/events.py": """
        def event_hex(event_id):
            return event_id.hex
    """,
    "tests/__init__.py": "",
    "tests/test_ids.py": """
        import pytest

        from shop.ids import order_key, parse_id


        @pytest.fixture
        def order_id():
            return "order-001"


        def test_roundtrip(order_id):
            assert parse_id(order_id) == parse_id("order-001")


        def test_order_key_is_short(order_id):
            assert len(order_key(order_id)) == 8


        def test_keys_differ():
            keys = {order_key(order_id=f"batch-{n}") for n in range(3)}
            assert len(keys) == 3
    """,
    "tests/test_events.py": """
        from shop.events import event_hex


        def test_event_hex():
            assert len(event_hex(event_id="evt-001")) == 32
    """,
}


def test_uuid_type_real_uuids_shared_stable_and_fresh(make_repo, tmp_path, capsys):
    repo = make_repo(UUID_FILES)
    report = run(repo, tmp_path, capsys, "--agents", "uuid_type")
    result = assert_all_fixed(report, "uuid_type", 4)
    assert sorted(result["files_changed"]) == ["tests/test_events.py", "tests/test_ids.py"]
    ids = show(repo, report, "tests/test_ids.py")
    order = stable_uuid("order-001")
    # `event_hex` wants uuid.UUID objects, so every replaced id is one; parse_id takes both.
    assert f'ORDER_001 = uuid.UUID("{order}")' in ids  # one id used twice: one constant
    assert "    return ORDER_001\n" in ids and "parse_id(order_id) == parse_id(ORDER_001)" in ids
    assert (
        "keys = {order_key(order_id=uuid.uuid4()) for n in range(3)}" in ids
    )  # ids built in a loop
    assert ids.startswith("import uuid\n\nimport pytest\n")
    events = show(repo, report, "tests/test_events.py")
    assert f'event_hex(event_id=uuid.UUID("{stable_uuid("evt-001")}"))' in events


# --- api_conflict ------------------------------------------------------------------------------

API_FILES = {
    ".gitignore": "*.db\n",
    "shop/__init__.py": "",
    "shop/catalog.py": '''
        import sqlite3


        def connect(path):
            conn = sqlite3.connect(path)
            conn.execute("CREATE TABLE IF NOT EXISTS items (name TEXT UNIQUE, price REAL)")
            conn.execute("CREATE TABLE IF NOT EXISTS users (username TEXT UNIQUE, email TEXT)")
            return conn


        def create_item(conn, payload):
            """The API's POST /items: 201 and the item when created, 409 when the name is taken."""
            try:
                with conn:
                    conn.execute("INSERT INTO items VALUES (:name, :price)", payload)
            except sqlite3.IntegrityError:
                return 409, {"detail": "already exists"}
            return 201, dict(payload)


        def add_user(conn, username, email):
            with conn:
                conn.execute("INSERT INTO users VALUES (?, ?)", (username, email))
    ''',
    "tests/__init__.py": "",
    "tests/conftest.py": '''
        import pytest

        from shop.catalog import connect


        @pytest.fixture
        def shared_db():
            """One seeded database for the whole suite, as against a staging server."""
            conn = connect("shared.db")
            with conn:
                conn.execute("INSERT OR IGNORE INTO items VALUES ('widget', 9.5)")
                conn.execute("INSERT OR IGNORE INTO users VALUES ('admin', 'admin@example.com')")
            yield conn
            conn.close()
    ''',
    "tests/test_items.py": """
        from shop.catalog import create_item


        def test_create_item(shared_db):
            status, body = create_item(shared_db, {"name": "widget", "price": 9.5})
            assert status == 201
            assert body["name"] == "widget"


        def test_missing_item_is_not_found(shared_db):
            assert shared_db.execute("SELECT 1 FROM items WHERE name = 'nope'").fetchone() is None
    """,
    "tests/test_users.py": """
        from shop.catalog import add_user


        def test_add_admin(shared_db):
            add_user(shared_db, username="admin", email="root@example.com")
    """,
}


def test_api_conflict_unique_values_keep_their_prefix(make_repo, tmp_path, capsys):
    repo = make_repo(API_FILES)
    report = run(repo, tmp_path, capsys, "--agents", "api_conflict")
    result = assert_all_fixed(report, "api_conflict", 2)
    assert sorted(result["files_changed"]) == ["tests/test_items.py", "tests/test_users.py"]
    items = show(repo, report, "tests/test_items.py")
    assert (
        f"""def test_create_item(shared_db):
    name = f"widget_{SUFFIX}"
    status, body = create_item(shared_db, {{"name": name, "price": 9.5}})
    assert status == 201
    assert body["name"] == name
"""
        in items
    )  # the value is created once and asserted against: what is checked did not change
    assert "WHERE name = 'nope'" in items  # a passing test is left alone
    users = show(repo, report, "tests/test_users.py")
    assert f'add_user(shared_db, username=f"admin_{SUFFIX}", email=' in users
    conftest = show(repo, report, "tests/conftest.py")
    assert "('widget', 9.5)" in conftest  # the seed data is not the test's to change


# --- async_event_loop --------------------------------------------------------------------------

ASYNC_FILES = {
    "shop/__init__.py": "",
    "shop/stock.py": """
        import asyncio


        async def fetch_count(name):
            await asyncio.sleep(0)
            return 3
    """,
    "tests/__init__.py": "",
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


        @pytest_asyncio.fixture(scope="session", loop_scope="session")
        async def client():
            yield Client()
    """,
    "tests/test_stock.py": """
        import asyncio

        from shop.stock import fetch_count


        async def total(names):
            return sum([asyncio.run(fetch_count(n)) for n in names])


        def test_total_stock():
            assert asyncio.run(total(["lamp", "desk"])) == 6
    """,
    "tests/test_latency.py": """
        import asyncio

        from shop.stock import fetch_count


        def measure(name):
            # wraps the coroutine for timing
            return asyncio.run(fetch_count(name))


        async def test_measure():
            assert measure("lamp") == 3


        def test_sync_caller():
            assert asyncio.run(fetch_count("desk")) == 3
    """,
    "tests/test_client.py": """
        import pytest


        @pytest.mark.asyncio
        async def test_ping(client):
            assert await client.ping() == "pong"
    """,
}


def test_async_event_loop_awaits_and_shares_the_fixture_loop(make_repo, tmp_path, capsys):
    repo = make_repo(
        ASYNC_FILES, pyproject=pyproject(asyncio=True, pytest_ini='asyncio_mode = "auto"\n')
    )
    report = run(repo, tmp_path, capsys, "--agents", "async_event_loop")
    assert_all_fixed(report, "async_event_loop", 3)
    stock = show(repo, report, "tests/test_stock.py")
    assert "return sum([await fetch_count(n) for n in names])" in stock
    assert "assert asyncio.run(total([" in stock  # a sync test has no running loop to reuse
    latency = show(repo, report, "tests/test_latency.py")
    assert "async def measure(name):\n    # wraps the coroutine for timing\n" in latency
    assert "    return await fetch_count(name)\n" in latency
    assert 'assert await measure("lamp") == 3' in latency
    assert 'assert asyncio.run(fetch_count("desk")) == 3' in latency
    client = show(repo, report, "tests/test_client.py")
    assert '@pytest.mark.asyncio(loop_scope="session")\nasync def test_ping(client):' in client


# --- patch_target ------------------------------------------------------------------------------

PATCH_FILES = {
    "shop/__init__.py": "",
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
    "shop/events.py": """
        def publish(event):
            return None  # sends to the broker; tests patch it out
    """,
    "shop/orders.py": """
        from .events import publish


        def place(order_id):
            publish({"order": order_id})
            return order_id
    """,
    "tests/__init__.py": "",
    "tests/test_notify.py": """
        from unittest.mock import patch

        from shop.notify import order_shipped


        def test_order_shipped_sends_mail():
            with patch("shop.mailer.send") as send:
                assert order_shipped("a@example.com") is True
            send.assert_called_once()
    """,
    "tests/test_orders.py": """
        from unittest import mock

        import pytest

        from shop import events, orders


        @pytest.fixture
        def publish():
            with mock.patch.object(events, "publish") as fake:
                yield fake


        def test_place_publishes(publish):
            orders.place(1)
            publish.assert_called_once_with({"order": 1})


        @mock.patch("shop.events.publish")  # the defining module: right for direct callers
        def test_events_direct(publish):
            events.publish({"x": 1})
            publish.assert_called_once()
    """,
}


def test_patch_target_patches_where_the_name_is_looked_up(make_repo, tmp_path, capsys):
    repo = make_repo(PATCH_FILES)
    report = run(repo, tmp_path, capsys, "--agents", "patch_target")
    assert_all_fixed(report, "mock_not_called", 2)
    notify = show(repo, report, "tests/test_notify.py")
    assert 'with patch("shop.notify.send") as send:' in notify
    orders = show(repo, report, "tests/test_orders.py")
    assert 'with mock.patch.object(orders, "publish") as fake:' in orders
    assert '@mock.patch("shop.events.publish")  # the defining module' in orders  # left alone


# --- test_pollution (needs the isolation stage: it names the polluters) -------------------------

POLLUTION_FILES = {
    "shop/__init__.py": "",
    "shop/config.py": """
        import os


        class Settings:
            def __init__(self, debug=False):
                self.debug = debug


        settings = Settings()


        def mode():
            return os.environ.get("SHOP_MODE", "readwrite")


        def can_write():
            return mode() != "readonly"
    """,
    "tests/__init__.py": "",
    "tests/test_a_settings.py": """
        import os

        from shop import config


        def test_readonly_mode():
            os.environ["SHOP_MODE"] = "readonly"
            assert config.can_write() is False


        class TestDebug:
            def test_debug_settings(self):
                config.settings = config.Settings(debug=True)  # swap the singleton
                assert config.settings.debug
    """,
    "tests/test_orders.py": """
        from shop import config


        def test_can_place_order():
            assert config.can_write() is True


        def test_not_debug():
            assert config.settings.debug is False
    """,
}


def test_pollution_polluters_use_monkeypatch(make_repo, tmp_path, capsys):
    repo = make_repo(POLLUTION_FILES)
    report = run(repo, tmp_path, capsys, "--agents", "test_pollution", isolation=True)
    result = assert_all_fixed(report, "test_isolation", 2)
    assert result["files_changed"] == ["tests/test_a_settings.py"]  # the polluter, not the victims
    settings = show(repo, report, "tests/test_a_settings.py")
    assert (
        "def test_readonly_mode(monkeypatch):\n"
        '    monkeypatch.setenv("SHOP_MODE", "readonly")\n'
        "    assert config.can_write() is False\n"
    ) in settings
    assert (
        "    def test_debug_settings(self, monkeypatch):\n"
        '        monkeypatch.setattr(config, "settings", config.Settings(debug=True))'
        "  # swap the singleton\n"
    ) in settings


# --- db_schema ---------------------------------------------------------------------------------

SCHEMA_FILES = {
    "shop/__init__.py": "",
    "shop/db.py": '''
        from sqlalchemy import create_engine
        from sqlalchemy.orm import DeclarativeBase


        class Base(DeclarativeBase):
            pass


        def engine_for(url="sqlite://"):
            return create_engine(url)


        def init_db(engine):
            """Create every table."""
            Base.metadata.create_all(engine)
            return engine
    ''',
    "shop/models.py": """
        from sqlalchemy.orm import Mapped, mapped_column

        from shop.db import Base


        class Product(Base):
            __tablename__ = "products"

            id: Mapped[int] = mapped_column(primary_key=True)
            name: Mapped[str]
    """,
    "shop/health.py": """
        from sqlalchemy.orm import Mapped, mapped_column

        from shop.db import Base


        class HealthStatus(Base):
            __tablename__ = "health_status"

            id: Mapped[int] = mapped_column(primary_key=True)
            status: Mapped[str]
    """,
    "shop/monitoring.py": '''
        from sqlalchemy import text


        def last_status(conn):
            """Raw SQL on purpose: the dashboard query is shared with the ops team."""
            row = conn.execute(text("SELECT status FROM health_status ORDER BY id DESC")).first()
            return row[0] if row else "unknown"
    ''',
    "tests/__init__.py": "",
    "tests/test_monitoring.py": """
        from shop.monitoring import last_status


        def test_no_status_yet(engine):
            with engine.connect() as conn:
                assert last_status(conn) == "unknown"
    """,
    "tests/test_products.py": """
        from sqlalchemy import text


        def test_products_table_exists(engine):
            with engine.connect() as conn:
                assert conn.execute(text("SELECT count(*) FROM products")).scalar() == 0
    """,
}

SCHEMA_CONFTEST = '''
    """Test database."""
    import pytest

    from shop import models  # noqa: F401  (registers the products table)
    from shop.db import Base, engine_for


    @pytest.fixture
    def engine():
        engine = engine_for()
        Base.metadata.create_all(engine)
        return engine
'''

INIT_DB_CONFTEST = """
    import pytest

    from shop import models  # noqa: F401  (registers the products table)
    from shop.db import engine_for, init_db


    @pytest.fixture
    def engine():
        return init_db(engine_for())
"""


def test_db_schema_imports_the_model_where_create_all_runs(make_repo, tmp_path, capsys):
    repo = make_repo({**SCHEMA_FILES, "tests/conftest.py": SCHEMA_CONFTEST})
    report = run(repo, tmp_path, capsys, "--agents", "db_schema")
    result = assert_all_fixed(report, "db_schema", 1)
    assert result["files_changed"] == ["tests/conftest.py"]
    assert show(repo, report, "tests/conftest.py").startswith(
        '"""Test database."""\nimport pytest\n\n'
        "from shop import models  # noqa: F401  (registers the products table)\n"
        "from shop.db import Base, engine_for\n"
        "import shop.health  # noqa: F401 (registers the table with the metadata before create_all)\n"
    )


def test_db_schema_imports_inside_init_db_to_avoid_a_cycle(make_repo, tmp_path, capsys):
    repo = make_repo({**SCHEMA_FILES, "tests/conftest.py": INIT_DB_CONFTEST})
    report = run(repo, tmp_path, capsys, "--agents", "db_schema")
    result = assert_all_fixed(report, "db_schema", 1)
    assert result["files_changed"] == ["shop/db.py"]
    assert '''def init_db(engine):
    """Create every table."""
    import shop.health  # noqa: F401 (registers the table with the metadata before create_all)
    Base.metadata.create_all(engine)''' in show(repo, report, "shop/db.py")


# --- docker_lifecycle --------------------------------------------------------------------------

DOCKER_FILES = {
    "tests/__init__.py": "",
    "tests/conftest.py": """
        import subprocess

        import pytest


        def container_status(name):
            out = subprocess.run(
                ["docker", "inspect", "-f", "{{.State.Status}}", name],
                capture_output=True, text=True, check=True,
            )
            return out.stdout.strip()


        @pytest.fixture
        def redis_paused():
            subprocess.run(["docker", "pause", "cos_redis"], check=True)
            yield
    """,
    "tests/test_a_degraded.py": """
        def test_degraded_mode(redis_paused):
            assert "degraded" in "service degraded: cache unavailable"
    """,
    "tests/test_b_sessions.py": """
        from tests.conftest import container_status


        def test_sessions_need_redis():
            status = container_status("cos_redis")
            assert status == "running", f"Container cos_redis is {status}"
    """,
    "tests/test_c_search.py": """
        import subprocess

        from tests.conftest import container_status


        def test_search_falls_back_without_elastic():
            subprocess.run(["docker", "stop", "cos_search"], check=True)
            assert "fallback" == "fallback"


        def test_search_index_is_up():
            status = container_status("cos_search")
            assert status == "running", f"Container cos_search is not running ({status})"
    """,
}


def test_docker_lifecycle_restores_containers_in_finally(make_repo, tmp_path, capsys, monkeypatch):
    _, state = fake_docker(tmp_path, {"cos_redis": "running", "cos_search": "running"})
    # The suite and the orchestrator's own watchdog both talk to the fake docker.
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("ORCHESTRATE_WRITABLE", str(state.parent))  # the daemon's state, shared
    repo = make_repo(DOCKER_FILES)
    report = run(repo, tmp_path, capsys, "--agents", "docker_lifecycle")
    result = assert_all_fixed(report, "docker_lifecycle", 2)
    assert sorted(result["files_changed"]) == ["tests/conftest.py", "tests/test_c_search.py"]
    conftest = show(repo, report, "tests/conftest.py")
    assert (
        '    subprocess.run(["docker", "pause", "cos_redis"], check=True)\n'
        "    try:\n"
        "        yield\n"
        "    finally:\n"
        '        subprocess.run(["docker", "unpause", "cos_redis"], check=True)\n'
        '        _wait_until_running("cos_redis")\n'
    ) in conftest
    assert "def _wait_until_running(name, docker=" in conftest and "import time\n" in conftest
    search = show(repo, report, "tests/test_c_search.py")
    assert (
        '    subprocess.run(["docker", "stop", "cos_search"], check=True)\n'
        "    try:\n"
        '        assert "fallback" == "fallback"\n'
        "    finally:\n"
        '        subprocess.run(["docker", "start", "cos_search"], check=True)\n'
        '        _wait_until_running("cos_search")\n'
    ) in search
    assert json.loads(state.read_text())["containers"] == {
        "cos_redis": "running",
        "cos_search": "running",
    }  # the final run on the integration branch left both up


# --- every specialist declines what it can't determine ----------------------------------------

DECLINE_FILES = {
    ".gitignore": "*.db\n",
    "app/__init__.py": "",
    "app/models.py": """
        from sqlalchemy import Column, Integer
        from sqlalchemy.orm import declarative_base

        Base = declarative_base()


        class Counter(Base):
            __tablename__ = "counters"
            id = Column(Integer, primary_key=True)
            value = Column(Integer)
    """,
    "app/ids.py": """
        import uuid


        def parse_ref(ref):
            return uuid.UUID(ref.removeprefix("ref:"))
    """,
    "app/store.py": """
        def create_item():
            return 409
    """,
    "app/events.py": """
        def publish(event):
            return None
    """,
    "app/orders.py": """
        from app.events import publish


        def place(order_id):
            publish({"order": order_id})
    """,
    "app/refunds.py": """
        from app.events import publish


        def refund(order_id):
            publish({"refund": order_id})
    """,
    "app/api.py": """
        from app import orders, refunds


        def checkout(order_id, refund=False):
            return refunds.refund(order_id) if refund else orders.place(order_id)
    """,
    "app/registry.py": """
        _names = []


        def register(name):
            _names.append(name)


        def names():
            return list(_names)
    """,
    "tests/__init__.py": "",
    "tests/test_model.py": """
        from app.models import Counter


        def test_counter_starts_at_zero():
            assert Counter().value == 0
    """,
    "tests/test_ids.py": """
        from app.ids import parse_ref


        def test_parse_ref():
            ref = "ref-0b9a4c1e-8a55-4d7e-9a53-0e8a4e2f8d11"
            assert parse_ref(ref).version == 4
    """,
    "tests/test_store.py": """
        from app.store import create_item


        def test_create():
            assert create_item() == 201
    """,
    "tests/test_audit.py": """
        import sqlite3


        def test_audit_log_is_empty():
            conn = sqlite3.connect(":memory:")
            assert conn.execute("SELECT count(*) FROM audit_log").fetchone() == (0,)
    """,
    "tests/test_loop.py": """
        import asyncio


        async def work():
            return 1


        def run_work():
            return asyncio.run(work())


        async def main():
            return run_work()


        def test_direct():
            assert run_work() == 1


        def test_nested():
            assert asyncio.run(main()) == 1
    """,
    "tests/test_publish.py": """
        from unittest.mock import patch

        from app.api import checkout


        def test_checkout_publishes():
            with patch("app.events.publish") as publish:
                checkout(1)
            publish.assert_called_once()
    """,
    "tests/test_registry_a.py": """
        from app import registry


        def test_register():
            registry.register("plugin")
            assert "plugin" in registry.names()
    """,
    "tests/test_registry_b.py": """
        from app import registry


        def test_starts_empty():
            assert registry.names() == []
    """,
    "tests/test_redis.py": """
        import subprocess


        def test_redis_is_up():
            out = subprocess.run(
                ["docker", "inspect", "-f", "{{.State.Status}}", "cos_cache"],
                capture_output=True, text=True,
            )
            assert out.stdout.strip() == "running", f"Container cos_cache is {out.stdout.strip()}"
    """,
}

DECLINES = {  # category -> (specialist, what its reason must say)
    "model_defaults": ("model_defaults", "declares a Python-side default"),
    "uuid_type": ("uuid_type", "No made-up id"),
    "api_conflict": ("api_conflict", "No hard-coded value for a unique field"),
    "db_schema": ("db_schema", "No model or Table() defines audit_log"),
    "async_event_loop": ("async_event_loop", "run_work runs a loop but is called from sync code"),
    "mock_not_called": ("patch_target", "imported by app.orders, app.refunds"),
    "test_isolation": ("test_pollution", "unclear what to reset"),
    "docker_lifecycle": ("docker_lifecycle", "no docker pause/stop without a guaranteed restore"),
}


def test_every_specialist_declines_what_it_cannot_determine(
    make_repo, tmp_path, capsys, monkeypatch
):
    # cos_cache was left paused by something outside the suite: no test to fix.
    _, state = fake_docker(tmp_path, {"cos_cache": "paused"})
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("ORCHESTRATE_WRITABLE", str(state.parent))  # the daemon's state, shared
    repo = make_repo(DECLINE_FILES)
    specialists = ",".join(sorted({name for name, _ in DECLINES.values()}))
    report = run(repo, tmp_path, capsys, "--agents", specialists, isolation=True)
    assert report["before"]["failed"] == len(DECLINES)
    for category, (name, reason) in DECLINES.items():
        result = agent(report, category)
        assert (result["agent"], result["status"]) == (name, "no_patch"), result
        assert reason in (result["reason"] or ""), (category, result["reason"])
        assert result["files_changed"] == [] and result["fixed"] == []
    head = git(repo, "rev-parse", "HEAD")
    branch = report["integration_branch"]
    assert branch is None or git(repo, "rev-parse", branch) == head  # nothing was merged
    # The watchdog (not an agent) unpaused the container the failure named.
    assert json.loads(state.read_text())["containers"]["cos_cache"] == "running"
