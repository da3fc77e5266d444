"""Codemods on one-line bodies (`def f(): a(); b()`, `class C(Base): pass`): libcst cannot write a
statement into such a body, so each codemod first turns it into an indented block."""

from __future__ import annotations

from pathlib import Path

from orchestrator.agents.db_schema import DbSchema
from orchestrator.agents.docker_lifecycle import DockerLifecycle
from orchestrator.agents.model_defaults import ModelDefaults
from orchestrator.agents.test_pollution import TestPollution
from orchestrator.models import Leak
from tests.agents.test_codemods_b import order, pollution, project, pytest_run, read


def test_pollution_unstopped_patcher_on_one_line(tmp_path: Path) -> None:
    repo = project(
        tmp_path / "p",
        {
            "src/app/__init__.py": "",
            "src/app/config.py": "def mode():\n    return 'readwrite'\n",
            "tests/test_a.py": """
                from unittest import mock

                from app import config


                def test_patched(): p = mock.patch("app.config.mode", return_value="ro"); p.start()
                """,
            "tests/test_b.py": """
                from app import config


                def test_real_mode():
                    assert config.mode() == "readwrite"
                """,
        },
    )
    assert pytest_run(repo, "tests/test_a.py", "tests/test_b.py").returncode == 1
    leak = Leak(kind="attr", key="app.config.mode", old="<function>", new="<MagicMock>")
    work = pollution("tests/test_b.py::test_real_mode", "tests/test_a.py::test_patched", leak)
    proposal = TestPollution().propose(work, repo, [])
    assert not proposal.declined, proposal.explanation
    assert read(repo, "tests/test_a.py").endswith(
        "def test_patched(request):\n"
        '    p = mock.patch("app.config.mode", return_value="ro")\n'
        "    p.start()\n"
        "    request.addfinalizer(p.stop)\n"
    )
    assert pytest_run(repo, "tests/test_a.py", "tests/test_b.py").returncode == 0


def test_model_defaults_class_that_only_inherits_its_columns(tmp_path: Path) -> None:
    repo = project(
        tmp_path / "p",
        {
            "src/app/__init__.py": "",
            "src/app/models.py": """
                from sqlalchemy import Boolean, Column, Integer
                from sqlalchemy.orm import declarative_base

                Base = declarative_base()


                class Flags:
                    active = Column(Boolean, default=True)


                class Feature(Base, Flags): __tablename__ = "features"; id = Column(Integer, primary_key=True)


                class Plain(Flags): pass
                """,
            "tests/test_models.py": """
                from app.models import Feature


                def test_active_by_default():
                    assert Feature().active is True
                """,
        },
    )
    work = order(
        "model_defaults",
        "model_defaults",
        [("tests/test_models.py::test_active_by_default", "assert None is True\n Feature")],
    )
    proposal = ModelDefaults().propose(work, repo, [])
    assert not proposal.declined, proposal.explanation
    assert (
        "class Feature(Base, Flags):\n"
        '    __tablename__ = "features"\n'
        "    id = Column(Integer, primary_key=True)\n"
        "\n"
        "    def __init__(self, **kwargs):\n"
    ) in read(repo, "src/app/models.py")
    assert "class Plain(Flags): pass\n" in read(repo, "src/app/models.py")  # not a model: left
    assert pytest_run(repo, "tests/test_models.py").returncode == 0


def test_db_schema_import_into_a_one_line_init_db(tmp_path: Path) -> None:
    repo = project(
        tmp_path / "p",
        {
            "src/app/__init__.py": "",
            "src/app/db.py": """
                from sqlalchemy import create_engine
                from sqlalchemy.orm import declarative_base

                Base = declarative_base()


                def init_db(): engine = create_engine("sqlite://"); Base.metadata.create_all(engine); return engine
                """,
            "src/app/audit.py": """
                from sqlalchemy import Column, Integer

                from app.db import Base


                class Entry(Base):
                    __tablename__ = "audit_log"
                    id = Column(Integer, primary_key=True)
                """,
            "tests/test_audit.py": """
                from sqlalchemy import text

                from app.db import init_db


                def test_empty():
                    with init_db().connect() as conn:
                        assert conn.execute(text("SELECT count(*) FROM audit_log")).scalar() == 0
                """,
        },
    )
    work = order(
        "db_schema", "db_schema", [("tests/test_audit.py::test_empty", "no such table: audit_log")]
    )
    proposal = DbSchema().propose(work, repo, [])
    assert not proposal.declined, proposal.explanation
    assert (
        "def init_db():\n"
        "    import app.audit  # noqa: F401 (registers the table with the metadata before create_all)\n"
        '    engine = create_engine("sqlite://")\n'
        "    Base.metadata.create_all(engine)\n"
        "    return engine\n"
    ) in read(repo, "src/app/db.py")
    assert pytest_run(repo, "tests/test_audit.py").returncode == 0


def test_docker_pause_on_one_line_gets_its_finally(tmp_path: Path) -> None:
    repo = project(
        tmp_path / "p",
        {
            "tests/test_outage.py": """
                import subprocess


                def test_outage(): subprocess.run(["docker", "pause", "cos_redis"], check=True); assert 1
                """
        },
    )
    work = order(
        "docker_lifecycle",
        "docker_lifecycle",
        [("tests/test_outage.py::test_outage", "Container cos_redis is paused")],
    )
    proposal = DockerLifecycle().propose(work, repo, [])
    assert not proposal.declined, proposal.explanation
    assert (
        "def test_outage():\n"
        '    subprocess.run(["docker", "pause", "cos_redis"], check=True)\n'
        "    try:\n"
        "        assert 1\n"
        "    finally:\n"
        '        subprocess.run(["docker", "unpause", "cos_redis"], check=True)\n'
        '        _wait_until_running("cos_redis")\n'
    ) in read(repo, "tests/test_outage.py")
