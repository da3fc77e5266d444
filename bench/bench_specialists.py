"""Benchmark the deterministic specialists on a mixed red suite, offline (no ANTHROPIC_API_KEY).

Run: .venv/bin/python bench/bench_specialists.py [--keep]

Builds a shop repo like `orchestrate demo`, bigger: 5 model-default failures, 6 uuid, 4 unique
conflicts, 3 async, 3 patch-target, 3 pollution victims, 2 missing tables, 3 plain logic bugs and
one hang. Then:

1. times each specialist's propose() per failure: the baseline is run and triaged (with isolation)
   as `orchestrate run` would, `orchestrator.plan` makes the work orders, and every order's
   specialist (`load_specialist`) proposes on a fresh copy of the repo;
2. runs `orchestrate run` once and reports the share of failures fixed and the total time.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from contextlib import redirect_stderr, redirect_stdout
from io import StringIO
from pathlib import Path

from orchestrator.cli import main
from orchestrator.isolation import diagnose
from orchestrator.run.plan import plan
from orchestrator.specialists import load_specialist
from orchestrator.suite.config import run_spec
from orchestrator.suite.runner import run_suite
from orchestrator.triage import triage

TIMEOUT_S = 3  # the hang costs this much per suite run


def files() -> dict[str, str]:
    f: dict[str, str] = {
        "pyproject.toml": f"""
            [tool.orchestrator]
            test-cmd = "{sys.executable} -m pytest"
            env = {{ PYTEST_DISABLE_PLUGIN_AUTOLOAD = "1" }}

            [tool.pytest.ini_options]
            testpaths = ["tests"]
        """,
        ".gitignore": "__pycache__/\n*.db\n",
        "shop/__init__.py": "",
        "tests/__init__.py": "",
        "shop/db.py": """
            from sqlalchemy import create_engine
            from sqlalchemy.orm import DeclarativeBase


            class Base(DeclarativeBase):
                pass


            def engine_for(url="sqlite://"):
                return create_engine(url)
        """,
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
                currency: Mapped[str] = mapped_column(String(3), default="EUR")


            class Delivery(Base):
                __tablename__ = "deliveries"

                id: Mapped[int] = mapped_column(Integer, primary_key=True)
                status: Mapped[str] = mapped_column(String(20), default="pending")
        """,
        "tests/test_models.py": """
            from shop.models import Delivery, Product


            def test_new_product_is_active():
                assert Product(name="lamp").active is True


            def test_new_product_has_an_id():
                assert Product(name="desk").id is not None


            def test_new_product_has_no_stock():
                assert Product(name="chair").stock == 0


            def test_new_product_is_priced_in_euro():
                assert Product(name="rug").currency == "EUR"


            def test_new_delivery_is_pending():
                assert Delivery().status == "pending"
        """,
        "shop/ids.py": """
            import uuid


            def parse_id(value):
                return value if isinstance(value, uuid.UUID) else uuid.UUID(value)


            def order_key(order_id):
                return parse_id(order_id).hex[:8]
        """,
        "tests/test_ids.py": "from shop.ids import order_key, parse_id\n"
        + "".join(
            f'\n\ndef test_order_key_{i}():\n    assert len(order_key(order_id="order-00{i}")) == 8\n'
            for i in range(4)
        )
        + '\n\ndef test_roundtrip():\n    order_id = "test-id"\n'
        "    assert parse_id(order_id) == parse_id(order_id)\n"
        '\n\ndef test_keys_differ():\n    keys = {order_key(order_id=f"batch-{n}") for n in range(3)}\n'
        "    assert len(keys) == 3\n",
        "shop/catalog.py": """
            import sqlite3


            def connect(path):
                conn = sqlite3.connect(path)
                conn.execute("CREATE TABLE IF NOT EXISTS items (name TEXT UNIQUE, price REAL)")
                return conn


            def create_item(conn, payload):
                try:
                    with conn:
                        conn.execute("INSERT INTO items VALUES (:name, :price)", payload)
                except sqlite3.IntegrityError:
                    return 409
                return 201
        """,
        "shop/mailer.py": "def send(to, subject):\n    return None\n",
        "shop/config.py": """
            import os


            def flag(name):
                return os.environ.get(name, "off")
        """,
        "shop/health.py": """
            from sqlalchemy.orm import Mapped, mapped_column

            from shop.db import Base


            class HealthStatus(Base):
                __tablename__ = "health_status"

                id: Mapped[int] = mapped_column(primary_key=True)
                status: Mapped[str]
        """,
        "shop/audit.py": """
            from sqlalchemy.orm import Mapped, mapped_column

            from shop.db import Base


            class AuditEntry(Base):
                __tablename__ = "audit_log"

                id: Mapped[int] = mapped_column(primary_key=True)
                action: Mapped[str]
        """,
        "tests/conftest.py": """
            import pytest

            from shop import models  # noqa: F401  (registers the products table)
            from shop.catalog import connect
            from shop.db import Base, engine_for


            @pytest.fixture
            def engine():
                engine = engine_for()
                Base.metadata.create_all(engine)
                return engine


            @pytest.fixture
            def shared_db():
                conn = connect("shared.db")
                with conn:
                    for n in range(4):
                        conn.execute("INSERT OR IGNORE INTO items VALUES (?, 1.0)", (f"widget_{n}",))
                yield conn
                conn.close()
        """,
        "tests/test_catalog.py": "from shop.catalog import create_item\n"
        + "".join(
            f"\n\ndef test_create_widget_{i}(shared_db):\n"
            f'    assert create_item(shared_db, {{"name": "widget_{i}", "price": 1.0}}) == 201\n'
            for i in range(4)
        ),
        "tests/test_schema.py": """
            from sqlalchemy import text


            def test_health_table(engine):
                with engine.connect() as conn:
                    assert conn.execute(text("SELECT count(*) FROM health_status")).scalar() == 0


            def test_audit_table(engine):
                with engine.connect() as conn:
                    assert conn.execute(text("SELECT count(*) FROM audit_log")).scalar() == 0
        """,
        "tests/test_a_flags.py": "import os\n\nfrom shop import config\n"
        + "".join(
            f'\n\ndef test_enable_feature_{i}():\n    os.environ["SHOP_FEATURE_{i}"] = "on"\n'
            f'    assert config.flag("SHOP_FEATURE_{i}") == "on"\n'
            for i in range(3)
        ),
        "tests/test_b_defaults.py": "from shop import config\n"
        + "".join(
            f'\n\ndef test_feature_{i}_off_by_default():\n    assert config.flag("SHOP_FEATURE_{i}") == "off"\n'
            for i in range(3)
        ),
        "shop/pricing.py": """
            def discounted(price, percent):
                return round(price * percent / 100, 2)


            def with_vat(price):
                return round(price * 0.2, 2)


            def total(prices):
                return sum(prices[1:])
        """,
        "tests/test_pricing.py": """
            from shop.pricing import discounted, total, with_vat


            def test_ten_percent_off():
                assert discounted(100.0, 10) == 90.0


            def test_vat():
                assert with_vat(100.0) == 120.0


            def test_total():
                assert total([1, 2, 3]) == 6
        """,
        "tests/test_warehouse.py": """
            import time


            def test_warehouse_sync():
                time.sleep(60)
        """,
        "shop/stock.py": """
            import asyncio


            async def fetch_count(name):
                await asyncio.sleep(0)
                return 3
        """,
    }
    for i in range(3):
        f[f"shop/notify{i}.py"] = (
            "from shop.mailer import send\n\n\n"
            f"def event_{i}(email):\n    send(email, 'event {i}')\n    return True\n"
        )
        f[f"tests/test_notify{i}.py"] = (
            f"from unittest.mock import patch\n\nfrom shop.notify{i} import event_{i}\n\n\n"
            f"def test_event_{i}_sends_mail():\n"
            '    with patch("shop.mailer.send") as send:\n'
            f'        assert event_{i}("a@example.com") is True\n'
            "    send.assert_called_once()\n"
        )
        f[f"tests/test_stock{i}.py"] = (
            "import asyncio\n\nfrom shop.stock import fetch_count\n\n\n"
            f"async def total_{i}(names):\n"
            "    return sum([asyncio.run(fetch_count(n)) for n in names])\n\n\n"
            f"def test_total_stock_{i}():\n"
            f'    assert asyncio.run(total_{i}(["lamp"] * {i + 1})) == {3 * (i + 1)}\n'
        )
    return f


EXPECTED = {  # category -> failing tests planted
    "model_defaults": 5, "uuid_type": 6, "api_conflict": 4, "async_event_loop": 3,
    "mock_not_called": 3, "test_isolation": 3, "db_schema": 2, "unknown": 3, "timeout": 1,
}  # fmt: skip


def build(root: Path) -> Path:
    repo = root / "shop"
    for rel, text in files().items():
        path = repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@localhost",
        "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@localhost",
    }  # fmt: skip
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "initial"]):
        subprocess.run(["git", *args], cwd=repo, check=True, env=env)
    return repo


def time_specialists(repo: Path, scratch: Path) -> list[dict]:
    """Triage the baseline as `orchestrate run` does, then time each order's propose()."""
    spec = run_spec(repo, timeout_s=TIMEOUT_S, record_leaks=True)
    baseline = run_suite(spec, label="baseline")
    isolation = diagnose(spec, baseline)
    report = triage(baseline, repo, spec.command_line(), isolation=isolation)
    got = {c.id: c.count for c in report.categories}
    if got != EXPECTED:
        print(f"warning: triage found {got}, planted {EXPECTED}", file=sys.stderr)
    rows = []
    for order in plan(report).orders:
        copy = scratch / order.category
        shutil.copytree(repo, copy, ignore=shutil.ignore_patterns(".git", "*.db"))
        specialist = load_specialist(order.agent)
        started = time.perf_counter()
        proposal = specialist.propose(order, copy, [])
        elapsed = time.perf_counter() - started
        rows.append(
            {
                "category": order.category,
                "agent": order.agent,
                "failures": order.target,
                "propose_s": elapsed,
                "declined": proposal.declined,
            }
        )
    return rows


def run_once(repo: Path, handoffs: Path) -> tuple[dict, float]:
    argv = ["run", str(repo), "--no-tui", "--json", "--timeout", str(TIMEOUT_S),
            "--max-attempts", "1", "--handoff-dir", str(handoffs)]  # fmt: skip
    out, err = StringIO(), StringIO()
    started = time.perf_counter()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(argv)
    elapsed = time.perf_counter() - started
    if code != 0:
        sys.exit(f"orchestrate run failed ({code}):\n{err.getvalue()[-2000:]}")
    return json.loads(out.getvalue()), elapsed


def main_bench() -> None:
    os.environ.pop("ANTHROPIC_API_KEY", None)  # offline: only the deterministic specialists
    keep = "--keep" in sys.argv
    root = Path(tempfile.mkdtemp(prefix="bench-specialists-"))
    try:
        repo = build(root)
        rows = time_specialists(repo, root / "scratch")
        report, total_s = run_once(repo, root / "handoffs")
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    results = {a["category"]: a for a in report["agents"]}
    print(f"{'specialist':<18} {'category':<18} {'fails':>5} {'propose ms':>10} "
          f"{'ms/failure':>10} {'fixed':>6}  status")  # fmt: skip
    for row in rows:
        result = results.get(row["category"], {})
        fixed = len(result.get("fixed", []))
        print(
            f"{row['agent']:<18} {row['category']:<18} {row['failures']:>5} "
            f"{row['propose_s'] * 1000:>10.1f} {row['propose_s'] * 1000 / row['failures']:>10.1f} "
            f"{fixed:>6}  {result.get('status', '-')}{' (declined)' if row['declined'] else ''}"
        )
    before, after = report["before"], report["after"]
    failing_before = before["failed"] + before["errors"]
    failing_after = after["failed"] + after["errors"]
    fixed = failing_before - failing_after
    print()
    print(f"tests:          {before['total']}")
    print(f"failing before: {failing_before}  after: {failing_after}")
    print(f"fixed:          {fixed}/{failing_before} ({fixed / failing_before:.0%}); "
          f"the deterministic share is {failing_before - 4}/{failing_before} "
          "(3 logic bugs and 1 hang need a model)")  # fmt: skip
    print(f"total run time: {total_s:.1f} s (orchestrate run, isolation on, --timeout {TIMEOUT_S})")
    if keep:
        print(f"repo kept at {repo}")


if __name__ == "__main__":
    main_bench()
