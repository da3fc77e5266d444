"""The libcst specialists on tiny real projects: the test fails, propose() edits, the test passes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.agents.api_conflict import ApiConflict
from orchestrator.agents.codemod import Files, OutsideWorktree, module_name
from orchestrator.agents.db_schema import DbSchema
from orchestrator.agents.llm import prompt_text
from orchestrator.agents.model_defaults import ModelDefaults
from orchestrator.agents.syntax import with_import
from orchestrator.agents.uuid_type import UuidType, stable_uuid
from orchestrator.models import Failure, WorkOrder
from orchestrator.specialists import load_specialist


def pytest_run(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=repo, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},  # our plugins cost 2 s a run
    )  # fmt: skip


def failing_order(repo: Path, agent: str, *nodeids: str) -> WorkOrder:
    """Run the tests, check they fail, and build the work order from what pytest printed."""
    run = pytest_run(repo, "-rf", "--tb=short", *nodeids)
    assert run.returncode == 1, run.stdout + run.stderr
    failures = [
        Failure(
            nodeid=nodeid, outcome="failed", category=agent, signature=agent,
            message=run.stdout, longrepr=run.stdout,
        )
        for nodeid in nodeids
    ]  # fmt: skip
    return WorkOrder(
        category=agent, title=agent, tests=list(nodeids), affected_files=[], root_cause="",
        fix_strategy="", priority="high", agent=agent, target=len(nodeids), failures=failures,
    )  # fmt: skip


def propose_and_pass(specialist, repo: Path, order: WorkOrder, *nodeids: str) -> str:
    started = time.perf_counter()
    proposal = specialist.propose(order, repo, [])
    elapsed = time.perf_counter() - started
    assert not proposal.declined, proposal.explanation
    assert elapsed < 2, f"{specialist.name} took {elapsed:.2f}s"
    run = pytest_run(repo, *nodeids)
    assert run.returncode == 0, run.stdout + run.stderr
    return proposal.explanation


def assert_declines(specialist, repo: Path, order: WorkOrder) -> None:
    before = {p: p.read_text() for p in repo.rglob("*.py")}
    proposal = specialist.propose(order, repo, [])
    assert proposal.declined and proposal.explanation
    assert {p: p.read_text() for p in repo.rglob("*.py")} == before


# --- shared helpers --------------------------------------------------------------------------------


def test_files_refuse_paths_outside_the_worktree(tmp_path: Path) -> None:
    (tmp_path / "wt").mkdir()
    (tmp_path / "secret.py").write_text("x = 1\n")
    (tmp_path / "wt" / "link.py").symlink_to(tmp_path / "secret.py")
    files = Files(tmp_path / "wt")
    for bad in ("../secret.py", str(tmp_path / "secret.py"), "link.py", ".git/config"):
        with pytest.raises(OutsideWorktree):
            files.path(bad)
    assert files.parse("../secret.py") is None
    assert not files.exists("link.py")


def test_with_import_places_uuid_like_isort() -> None:
    import libcst as cst

    code = '"""Doc."""\nimport os\nimport sys\n\nimport pytest\n\nx = 1\n'
    assert with_import(cst.parse_module(code), "uuid").code == (
        '"""Doc."""\nimport os\nimport sys\nimport uuid\n\nimport pytest\n\nx = 1\n'
    )
    code = '"""Doc."""\n\nimport pytest\n'
    assert with_import(cst.parse_module(code), "uuid").code == (
        '"""Doc."""\n\nimport uuid\n\nimport pytest\n'
    )
    code = "import uuid\n"
    assert with_import(cst.parse_module(code), "uuid").code == code


def test_module_name_follows_the_package_layout(tmp_path: Path) -> None:
    for rel in ("src/app/__init__.py", "src/app/models/__init__.py", "src/app/models/health.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    (tmp_path / "conftest.py").write_text("from src.app import models\n")
    (tmp_path / "other.py").write_text("from app import models\n")
    files = Files(tmp_path)
    assert module_name(files, "src/app/models/health.py") == "app.models.health"
    assert (
        module_name(files, "src/app/models/health.py", style_from="other.py") == "app.models.health"
    )
    assert module_name(files, "src/app/models/health.py", style_from="conftest.py") == (
        "src.app.models.health"
    )


def test_every_specialist_loads_by_name_and_has_its_prompt() -> None:
    for name in ("model_defaults", "uuid_type", "api_conflict", "db_schema"):
        specialist = load_specialist(name, model="ignored")
        assert specialist.name == name
        text = prompt_text(name)
        assert "## Mission" in text and "## What not to do" in text


# --- model_defaults --------------------------------------------------------------------------------

MODELS_2X = '''
"""Models."""
import uuid

from sqlalchemy import Boolean, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Module(Base):
    __tablename__ = "modules"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)  # set by the service
    name: Mapped[str] = mapped_column(String(50), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[str] = mapped_column(default="1.0")
    tags: Mapped[str] = mapped_column(server_default="")

    def __repr__(self):
        return f"Module({self.name})"
'''

MODELS_TEST = """
from app.models import Module


def test_defaults():
    module = Module(name="x")
    assert module.active is True
    assert module.id is not None
    assert module.version == "1.0"


def test_passed_values_win():
    module = Module(name="x", active=False)
    assert module.active is False
"""


def test_model_defaults_sqlalchemy_2_mapped_column(make_repo) -> None:
    repo = make_repo(
        {"app/__init__.py": "", "app/models.py": MODELS_2X, "tests/test_models.py": MODELS_TEST}
    )
    order = failing_order(repo, "model_defaults", "tests/test_models.py::test_defaults")
    explanation = propose_and_pass(ModelDefaults(), repo, order, "tests/test_models.py")
    code = (repo / "app/models.py").read_text()
    assert (
        '''    version: Mapped[str] = mapped_column(default="1.0")
    tags: Mapped[str] = mapped_column(server_default="")

    def __init__(self, **kwargs):
        """Apply the column defaults now: SQLAlchemy applies them only at flush."""
        kwargs.setdefault("id", uuid.uuid4())
        kwargs.setdefault("active", True)
        kwargs.setdefault("version", "1.0")
        super().__init__(**kwargs)

    def __repr__(self):'''
        in code
    )
    assert "# set by the service" in code and '"tags"' not in code
    assert code.count("import uuid") == 1
    assert "Module (id, active, version)" in explanation
    assert ModelDefaults().propose(order, repo, []).declined  # a second pass has nothing to add


MODELS_14 = """
import datetime
from uuid import uuid4

from sqlalchemy import Column, DateTime, Integer, String
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.declarative import declarative_base

Base = declarative_base()
DEFAULT_RETRIES = 3


class HealthStatus(Base):
    __tablename__ = "health_status"
    id = Column(UUID(as_uuid=True), primary_key=True, default=uuid4)
    status = Column(String, default="unknown")
    retries = Column(Integer, default=DEFAULT_RETRIES)
    checked_at = Column(DateTime, default=datetime.datetime.utcnow)


class Counter(Base):
    __tablename__ = "counters"
    id = Column(Integer, primary_key=True)
    value = Column(Integer)
"""

MODELS_14_TEST = """
from app.models import Counter, HealthStatus


def test_health_defaults():
    health = HealthStatus()
    assert health.status == "unknown"
    assert health.retries == 3
    assert health.id is not None and health.checked_at is not None


def test_counter():
    assert Counter(value=1).value == 1
"""


def test_model_defaults_14_style_columns_and_callables(make_repo) -> None:
    repo = make_repo(
        {"app/__init__.py": "", "app/models.py": MODELS_14, "tests/test_h.py": MODELS_14_TEST}
    )
    order = failing_order(repo, "model_defaults", "tests/test_h.py::test_health_defaults")
    propose_and_pass(ModelDefaults(), repo, order, "tests/test_h.py")
    code = (repo / "app/models.py").read_text()
    assert (
        '''    checked_at = Column(DateTime, default=datetime.datetime.utcnow)

    def __init__(self, **kwargs):
        """Apply the column defaults now: SQLAlchemy applies them only at flush."""
        kwargs.setdefault("id", uuid4())
        kwargs.setdefault("status", "unknown")
        kwargs.setdefault("retries", DEFAULT_RETRIES)
        kwargs.setdefault("checked_at", datetime.datetime.utcnow())
        super().__init__(**kwargs)


class Counter(Base):'''
        in code
    )
    assert "import uuid\n" not in code  # the model's own uuid4 is reused
    assert code.count("def __init__") == 1  # Counter has no default to apply


MIXIN_MODELS = '''
import uuid

from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    def __init__(self, **kwargs):
        """Our base: unknown keys are an error, as usual."""
        for key, value in kwargs.items():
            setattr(self, key, value)


class UUIDMixin:
    id: Mapped[str] = mapped_column(String(36), primary_key=True)


class Event(UUIDMixin, Base):
    __tablename__ = "events"

    kind: Mapped[str] = mapped_column(default="info")

    def __init__(self, kind=None, **kw):
        super().__init__(**kw)
        if kind is not None:
            self.kind = kind
'''

MIXIN_TEST = """
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import Base, Event


def test_event_is_stored():
    engine = sa.create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add(Event())
        session.commit()
        assert session.scalars(sa.select(Event)).one().kind == "info"
"""


def test_model_defaults_extends_the_models_own_init_and_generates_string_ids(make_repo) -> None:
    repo = make_repo(
        {"app/__init__.py": "", "app/models.py": MIXIN_MODELS, "tests/test_e.py": MIXIN_TEST}
    )
    order = failing_order(repo, "model_defaults", "tests/test_e.py::test_event_is_stored")
    assert "NOT NULL constraint failed: events.id" in order.failures[0].message
    propose_and_pass(ModelDefaults(), repo, order, "tests/test_e.py")
    code = (repo / "app/models.py").read_text()
    assert (
        """    def __init__(self, kind=None, **kw):
        kw.setdefault("id", str(uuid.uuid4()))
        super().__init__(**kw)"""
        in code
    )
    assert "for key, value in kwargs.items():" in code  # the shared base is left as it was
    assert code.count("def __init__") == 2


def test_model_defaults_declines_without_defaults(make_repo) -> None:
    repo = make_repo({
        "app/__init__.py": "",
        "app/models.py": MODELS_14.replace(", default=uuid4", "").replace("UUID(as_uuid=True)", "Integer")
        .replace(', default="unknown"', "").replace(", default=DEFAULT_RETRIES", "")
        .replace(", default=datetime.datetime.utcnow", ""),
        "tests/test_h.py": MODELS_14_TEST,
    })  # fmt: skip
    order = failing_order(repo, "model_defaults", "tests/test_h.py::test_health_defaults")
    assert_declines(ModelDefaults(), repo, order)


# --- uuid_type -------------------------------------------------------------------------------------

CRUD = """
import uuid


def get_module(module_id):
    return uuid.UUID(module_id).hex


def event_hex(event_id):
    return event_id.hex
"""

UUID_TESTS = '''
"""CRUD tests."""
import pytest

from app.crud import get_module


@pytest.fixture
def module_id():
    return "test-id"


def test_get(module_id):
    assert get_module(module_id) == get_module("test-id")  # same id


def test_other():
    other_id = "mod-002"
    assert len(get_module(other_id)) == 32


def test_load():
    ids = []
    for n in range(3):
        payload = {"event_id": f"load-test-{n}", "name": "batch-api-001"}
        ids.append(get_module(payload["event_id"]))
    assert len(set(ids)) == 3


def test_parse():
    assert uuid_hex("batch-api-001")


def uuid_hex(value):
    import uuid

    return uuid.UUID(value).hex
'''


def test_uuid_type_uuid_strings_constants_and_loops(make_repo) -> None:
    repo = make_repo({"app/__init__.py": "", "app/crud.py": CRUD, "tests/test_crud.py": UUID_TESTS})
    nodeids = [f"tests/test_crud.py::{t}" for t in ("test_get", "test_other", "test_load")]
    order = failing_order(repo, "uuid_type", *nodeids)
    assert "badly formed hexadecimal UUID string" in order.failures[0].message
    explanation = propose_and_pass(UuidType(), repo, order, *nodeids)
    code = (repo / "tests/test_crud.py").read_text()
    test_id = stable_uuid("test-id")
    assert code.startswith(f'''"""CRUD tests."""
import uuid

import pytest

from app.crud import get_module

# Real UUIDs for the ids these tests share.
TEST_ID = "{test_id}"


@pytest.fixture
def module_id():
    return TEST_ID


def test_get(module_id):
    assert get_module(module_id) == get_module(TEST_ID)  # same id
''')
    assert f'other_id = "{stable_uuid("mod-002")}"' in code
    assert '{"event_id": str(uuid.uuid4()), "name": "batch-api-001"}' in code  # name is no id
    assert 'payload["event_id"]' in code  # keys stay keys
    assert "TEST_ID" in explanation


def test_uuid_type_makes_uuid_objects_when_the_code_wants_them(make_repo) -> None:
    tests = """
    from app.crud import event_hex


    def test_event():
        assert len(event_hex(event_id="evt-001")) == 32


    def test_events():
        for n in range(2):
            assert event_hex(event_id=f"evt-{n}")
    """
    repo = make_repo({"app/__init__.py": "", "app/crud.py": CRUD, "tests/test_ev.py": tests})
    nodeids = ["tests/test_ev.py::test_event", "tests/test_ev.py::test_events"]
    order = failing_order(repo, "uuid_type", *nodeids)
    assert "'str' object has no attribute 'hex'" in order.failures[0].message
    propose_and_pass(UuidType(), repo, order, *nodeids)
    code = (repo / "tests/test_ev.py").read_text()
    assert f'event_hex(event_id=uuid.UUID("{stable_uuid("evt-001")}"))' in code
    assert "event_hex(event_id=uuid.uuid4())" in code
    assert code.startswith("import uuid\n\nfrom app.crud import event_hex\n")


def test_uuid_type_declines_when_ids_are_already_uuids(make_repo) -> None:
    tests = """
    import uuid

    from app.crud import get_module


    def test_get():
        module_id = "0b9a4c1e-8a55-4d7e-9a53-0e8a4e2f8d11"
        assert get_module(module_id) is None
    """
    repo = make_repo({"app/__init__.py": "", "app/crud.py": CRUD, "tests/test_g.py": tests})
    order = failing_order(repo, "uuid_type", "tests/test_g.py::test_get")
    assert_declines(UuidType(), repo, order)


# --- api_conflict ----------------------------------------------------------------------------------

API_CONFTEST = """
import sqlite3

import pytest

from app.api import create_module


@pytest.fixture
def client(tmp_path_factory):
    conn = sqlite3.connect("shared.db")  # one database for the whole suite, like the real one
    conn.execute("CREATE TABLE IF NOT EXISTS modules (name TEXT UNIQUE, email TEXT UNIQUE)")
    yield lambda payload: create_module(conn, payload)
    conn.close()
"""

API = """
import sqlite3


def create_module(conn, payload):
    try:
        conn.execute("INSERT INTO modules VALUES (:name, :email)", payload)
    except sqlite3.IntegrityError:
        return 409, {"detail": "already exists"}
    conn.commit()
    return 201, dict(payload)
"""

API_TESTS = """
class TestModuleRouter:
    def test_create_module_success(self, client):
        status, body = client({"name": "test_module", "email": "a@example.com"})
        assert status == 201
        assert body["name"] == "test_module"

    def test_create_other(self, client):
        status, _ = client(dict(name='test_module', email="b@example.com"))  # same name
        assert status == 201


def test_duplicate_is_refused(client):
    payload = {"name": "dup", "email": "dup@example.com"}
    assert client(payload)[0] == 201
    assert client({"name": "dup", "email": "dup@example.com"})[0] == 409
"""


def test_api_conflict_unique_values_hoisted_where_reused(make_repo) -> None:
    repo = make_repo({
        "app/__init__.py": "", "app/api.py": API, "tests/conftest.py": API_CONFTEST,
        "tests/test_router.py": API_TESTS,
    })  # fmt: skip
    nodeids = [
        "tests/test_router.py::TestModuleRouter::test_create_module_success",
        "tests/test_router.py::TestModuleRouter::test_create_other",
        "tests/test_router.py::test_duplicate_is_refused",
    ]
    pytest_run(repo)  # an earlier run left its rows in the shared database
    order = failing_order(repo, "api_conflict", *nodeids)
    assert "assert 409 == 201" in order.failures[0].message
    propose_and_pass(ApiConflict(), repo, order, *nodeids)
    propose_and_pass_again = pytest_run(repo, *nodeids)  # and again: no leftovers collide
    assert propose_and_pass_again.returncode == 0, propose_and_pass_again.stdout
    code = (repo / "tests/test_router.py").read_text()
    suffix = "{uuid.uuid4().hex[:8]}"
    assert code.startswith("import uuid\n\n\nclass TestModuleRouter:\n")
    assert (
        f"""    def test_create_module_success(self, client):
        name = f"test_module_{suffix}"
        status, body = client({{"name": name, "email": f"a_{suffix}@example.com"}})
        assert status == 201
        assert body["name"] == name
"""
        in code
    )
    assert (
        f"client(dict(name=f'test_module_{suffix}', email=f\"b_{suffix}@example.com\"))  # same name"
        in code
    )
    assert (
        f"""def test_duplicate_is_refused(client):
    name = f"dup_{suffix}"
    email = f"dup_{suffix}@example.com"
    payload = {{"name": name, "email": email}}
    assert client(payload)[0] == 201
    assert client({{"name": name, "email": email}})[0] == 409
"""
        in code
    )


def test_api_conflict_uses_the_column_the_error_names(make_repo) -> None:
    tests = """
    import sqlite3


    def test_users():
        db = sqlite3.connect("users.db")
        db.execute("CREATE TABLE IF NOT EXISTS users (username TEXT UNIQUE, title TEXT)")
        db.execute("INSERT INTO users VALUES (:username, :title)", dict(username="ann", title="Dr"))
        db.commit()
    """
    repo = make_repo({"tests/test_users.py": tests})
    pytest_run(repo)
    order = failing_order(repo, "api_conflict", "tests/test_users.py::test_users")
    assert "UNIQUE constraint failed: users.username" in order.failures[0].message
    propose_and_pass(ApiConflict(), repo, order, "tests/test_users.py")
    code = (repo / "tests/test_users.py").read_text()
    assert 'dict(username=f"ann_{uuid.uuid4().hex[:8]}", title="Dr")' in code


def test_api_conflict_declines_without_unique_literals(make_repo) -> None:
    tests = """
    def test_create():
        status = 409
        assert status == 201
    """
    repo = make_repo({"tests/test_c.py": tests})
    order = failing_order(repo, "api_conflict", "tests/test_c.py::test_create")
    assert_declines(ApiConflict(), repo, order)


# --- db_schema -------------------------------------------------------------------------------------

DB = """
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass
"""

HEALTH = """
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class HealthStatus(Base):
    __tablename__ = "health_status"

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str]
"""

SCHEMA_CONFTEST = '''
"""Test database."""
import pytest
import sqlalchemy as sa

from app.db import Base


@pytest.fixture
def engine():
    engine = sa.create_engine("sqlite://")
    Base.metadata.create_all(engine)
    return engine
'''

SCHEMA_TEST = """
import sqlalchemy as sa


def test_health_table(engine):
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM health_status")).scalar() == 0
"""


def test_db_schema_imports_the_model_in_the_conftest(make_repo) -> None:
    repo = make_repo({
        "app/__init__.py": "", "app/db.py": DB, "app/models/__init__.py": "",
        "app/models/health.py": HEALTH, "tests/conftest.py": SCHEMA_CONFTEST,
        "tests/test_schema.py": SCHEMA_TEST,
    })  # fmt: skip
    order = failing_order(repo, "db_schema", "tests/test_schema.py::test_health_table")
    assert "no such table: health_status" in order.failures[0].message
    explanation = propose_and_pass(DbSchema(), repo, order, "tests/test_schema.py")
    assert (repo / "tests/conftest.py").read_text() == SCHEMA_CONFTEST.lstrip("\n").replace(
        "from app.db import Base\n",
        "from app.db import Base\nimport app.models.health  # noqa: F401 "
        "(registers the table with the metadata before create_all)\n",
    )
    assert "health_status" in explanation and "tests/conftest.py" in explanation


def test_db_schema_imports_inside_the_init_function_to_avoid_a_cycle(make_repo) -> None:
    db = (
        DB
        + '''

def init_db(engine):
    """Create every table."""
    Base.metadata.create_all(engine)
'''
    )
    conftest = """
    import pytest
    import sqlalchemy as sa

    from app.db import init_db


    @pytest.fixture
    def engine():
        engine = sa.create_engine("sqlite://")
        init_db(engine)
        return engine
    """
    repo = make_repo({
        "app/__init__.py": "", "app/db.py": db, "app/models/__init__.py": "",
        "app/models/health.py": HEALTH, "tests/conftest.py": conftest,
        "tests/test_schema.py": SCHEMA_TEST,
    })  # fmt: skip
    order = failing_order(repo, "db_schema", "tests/test_schema.py::test_health_table")
    propose_and_pass(DbSchema(), repo, order, "tests/test_schema.py")
    assert '''def init_db(engine):
    """Create every table."""
    import app.models.health  # noqa: F401 (registers the table with the metadata before create_all)
    Base.metadata.create_all(engine)''' in (repo / "app/db.py").read_text()


def test_db_schema_declines_when_no_model_defines_the_table(make_repo) -> None:
    repo = make_repo({
        "app/__init__.py": "", "app/db.py": DB, "tests/conftest.py": SCHEMA_CONFTEST,
        "tests/test_schema.py": SCHEMA_TEST,
    })  # fmt: skip
    order = failing_order(repo, "db_schema", "tests/test_schema.py::test_health_table")
    assert_declines(DbSchema(), repo, order)
