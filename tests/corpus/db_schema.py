"""db_schema: a model whose module nobody imports before create_all."""

from tests.corpus import Shape

NOTE = "  # noqa: F401 (registers the table with the metadata before create_all)"

PACKAGE_MODELS = Shape(
    "db_schema",
    "models-package-misses-a-module-session-engine",
    "db_schema",
    files={
        "app/__init__.py": "",
        "app/db.py": """
            from sqlalchemy.orm import DeclarativeBase


            class Base(DeclarativeBase):
                pass
        """,
        "app/models/__init__.py": """
            from app.models.user import User

            __all__ = ["User"]
        """,
        "app/models/user.py": """
            from sqlalchemy.orm import Mapped, mapped_column

            from app.db import Base


            class User(Base):
                __tablename__ = "users"

                id: Mapped[int] = mapped_column(primary_key=True)
                email: Mapped[str]
        """,
        "app/models/audit.py": """
            from sqlalchemy.orm import Mapped, mapped_column

            from app.db import Base


            class AuditEntry(Base):
                __tablename__ = "audit_entries"

                id: Mapped[int] = mapped_column(primary_key=True)
                action: Mapped[str]
        """,
        "app/audit.py": '''
            from sqlalchemy import text


            def record(conn, action):
                """Raw SQL: the audit trail is written by triggers in production too."""
                conn.execute(text("INSERT INTO audit_entries (action) VALUES (:a)"), {"a": action})
        ''',
        "tests/__init__.py": "",
        "tests/conftest.py": """
            import pytest
            from sqlalchemy import create_engine

            import app.models  # noqa: F401
            from app.db import Base


            @pytest.fixture(scope="session")
            def engine():
                engine = create_engine("sqlite://")
                Base.metadata.create_all(engine)
                return engine
        """,
        "tests/test_audit.py": """
            from app.audit import record


            def test_login_is_audited(engine):
                with engine.begin() as conn:
                    record(conn, "login")
        """,
    },
    fixed={
        "tests/conftest.py": f"""
            import pytest
            from sqlalchemy import create_engine

            import app.models  # noqa: F401
            from app.db import Base
            import app.models.audit{NOTE}


            @pytest.fixture(scope="session")
            def engine():
                engine = create_engine("sqlite://")
                Base.metadata.create_all(engine)
                return engine
        """,
    },
    failing=1,
)

UNITTEST_SETUP_CLASS = Shape(
    "db_schema",
    "unittest-setup-class-creates-the-tables",
    "db_schema",
    files={
        "library/__init__.py": "",
        "library/models.py": """
            from sqlalchemy import Column, Integer, String
            from sqlalchemy.orm import declarative_base

            Base = declarative_base()


            class Book(Base):
                __tablename__ = "books"
                id = Column(Integer, primary_key=True)
                title = Column(String)
        """,
        "library/loans.py": """
            from sqlalchemy import Column, ForeignKey, Integer

            from library.models import Base


            class Loan(Base):
                __tablename__ = "loans"
                id = Column(Integer, primary_key=True)
                book_id = Column(Integer, ForeignKey("books.id"))
        """,
        "tests/__init__.py": "",
        "tests/test_loans.py": """
            import unittest

            from sqlalchemy import create_engine, text

            from library.models import Base


            class LoansTest(unittest.TestCase):
                @classmethod
                def setUpClass(cls):
                    cls.engine = create_engine("sqlite://")
                    Base.metadata.create_all(cls.engine)

                def test_no_loans_yet(self):
                    with self.engine.connect() as conn:
                        count = conn.execute(text("SELECT count(*) FROM loans")).scalar()
                    self.assertEqual(count, 0)
        """,
    },
    fixed={
        "tests/test_loans.py": f"""
            import unittest

            from sqlalchemy import create_engine, text

            from library.models import Base
            import library.loans{NOTE}


            class LoansTest(unittest.TestCase):
                @classmethod
                def setUpClass(cls):
                    cls.engine = create_engine("sqlite://")
                    Base.metadata.create_all(cls.engine)

                def test_no_loans_yet(self):
                    with self.engine.connect() as conn:
                        count = conn.execute(text("SELECT count(*) FROM loans")).scalar()
                    self.assertEqual(count, 0)
        """,
    },
    failing=1,
)

APP_FACTORY = Shape(
    "db_schema",
    "flask-app-factory-creates-the-tables",
    "db_schema",
    files={
        "web/__init__.py": '''
            from flask import Flask
            from sqlalchemy import create_engine, text

            from web.db import Base


            def create_app(url="sqlite://"):
                """The app, with its tables created (no migrations in this project)."""
                app = Flask(__name__)
                app.engine = create_engine(url)
                Base.metadata.create_all(app.engine)

                @app.get("/comments")
                def comments():
                    with app.engine.connect() as conn:
                        return {"count": conn.execute(text("SELECT count(*) FROM comments")).scalar()}

                return app
        ''',
        "web/db.py": """
            from sqlalchemy.orm import DeclarativeBase


            class Base(DeclarativeBase):
                pass
        """,
        "web/comments.py": """
            from sqlalchemy.orm import Mapped, mapped_column

            from web.db import Base


            class Comment(Base):
                __tablename__ = "comments"

                id: Mapped[int] = mapped_column(primary_key=True)
                body: Mapped[str]
        """,
        "tests/__init__.py": "",
        "tests/conftest.py": """
            import pytest

            from web import create_app


            @pytest.fixture
            def client():
                app = create_app()
                app.config["TESTING"] = True  # errors reach the test instead of a 500 page
                return app.test_client()
        """,
        "tests/test_comments.py": """
            def test_no_comments_yet(client):
                assert client.get("/comments").get_json() == {"count": 0}
        """,
    },
    fixed={
        "web/__init__.py": f'''
            from flask import Flask
            from sqlalchemy import create_engine, text

            from web.db import Base


            def create_app(url="sqlite://"):
                """The app, with its tables created (no migrations in this project)."""
                import web.comments{NOTE}
                app = Flask(__name__)
                app.engine = create_engine(url)
                Base.metadata.create_all(app.engine)

                @app.get("/comments")
                def comments():
                    with app.engine.connect() as conn:
                        return {{"count": conn.execute(text("SELECT count(*) FROM comments")).scalar()}}

                return app
        ''',
    },
    failing=1,
)

SHAPES = (PACKAGE_MODELS, UNITTEST_SETUP_CLASS, APP_FACTORY)
