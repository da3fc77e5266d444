"""model_defaults: column defaults that apply only at flush, read before it."""

from tests.corpus import Shape

FASTAPI = Shape(
    "model_defaults",
    "fastapi-mapped-column-response",
    "model_defaults",
    files={
        "app/__init__.py": "",
        "app/models.py": """
            from sqlalchemy import String
            from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


            class Base(DeclarativeBase):
                pass


            class Draft(Base):
                __tablename__ = "drafts"

                id: Mapped[int] = mapped_column(primary_key=True)
                title: Mapped[str] = mapped_column(String(200))
                status: Mapped[str] = mapped_column(String(20), default="draft")
                votes: Mapped[int] = mapped_column(default=0)
        """,
        "app/main.py": """
            from fastapi import FastAPI
            from pydantic import BaseModel

            from app.models import Draft

            app = FastAPI()


            class DraftIn(BaseModel):
                title: str


            @app.post("/drafts", status_code=201)
            def create_draft(payload: DraftIn) -> dict:
                draft = Draft(**payload.model_dump())  # preview: saved later by the editor
                return {"title": draft.title, "status": draft.status, "votes": draft.votes}
        """,
        "tests/__init__.py": "",
        "tests/test_drafts.py": """
            from fastapi.testclient import TestClient

            from app.main import app

            client = TestClient(app)


            def test_new_draft_is_a_draft():
                response = client.post("/drafts", json={"title": "Hello"})
                assert response.status_code == 201
                assert response.json()["status"] == "draft"


            def test_new_draft_has_no_votes():
                assert client.post("/drafts", json={"title": "Hi"}).json()["votes"] == 0
        """,
    },
    fixed={
        "app/models.py": '''
            from sqlalchemy import String
            from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


            class Base(DeclarativeBase):
                pass


            class Draft(Base):
                __tablename__ = "drafts"

                id: Mapped[int] = mapped_column(primary_key=True)
                title: Mapped[str] = mapped_column(String(200))
                status: Mapped[str] = mapped_column(String(20), default="draft")
                votes: Mapped[int] = mapped_column(default=0)

                def __init__(self, **kwargs):
                    """Apply the column defaults now: SQLAlchemy applies them only at flush."""
                    kwargs.setdefault("status", "draft")
                    kwargs.setdefault("votes", 0)
                    super().__init__(**kwargs)
        ''',
    },
    failing=2,
)

MIXIN_FACTORY = Shape(
    "model_defaults",
    "declarative-mixin-factory-fixture",
    "model_defaults",
    files={
        "app/__init__.py": "",
        "app/models.py": """
            from uuid import uuid4

            from sqlalchemy import Boolean, Column, Integer, String
            from sqlalchemy.orm import declarative_base

            Base = declarative_base()


            class SoftDelete:
                deleted = Column(Boolean, default=False)
                revision = Column(Integer, default=1)


            class Tag(Base, SoftDelete):
                __tablename__ = "tags"
                id = Column(String(36), primary_key=True, default=lambda: str(uuid4()))
                label = Column(String, nullable=False)
        """,
        "tests/__init__.py": "",
        "tests/conftest.py": """
            import pytest

            from app.models import Tag


            @pytest.fixture
            def make_tag():
                def make(**fields):
                    return Tag(**{"label": "misc", **fields})

                return make
        """,
        "tests/test_tags.py": """
            def test_new_tag_is_not_deleted(make_tag):
                assert make_tag().deleted is False


            def test_new_tag_has_an_id(make_tag):
                assert make_tag(label="red").id is not None


            def test_new_tag_is_revision_one(make_tag):
                assert make_tag().revision == 1
        """,
    },
    fixed={
        "app/models.py": '''
            from uuid import uuid4

            from sqlalchemy import Boolean, Column, Integer, String
            from sqlalchemy.orm import declarative_base

            Base = declarative_base()


            class SoftDelete:
                deleted = Column(Boolean, default=False)
                revision = Column(Integer, default=1)


            class Tag(Base, SoftDelete):
                __tablename__ = "tags"
                id = Column(String(36), primary_key=True, default=lambda: str(uuid4()))
                label = Column(String, nullable=False)

                def __init__(self, **kwargs):
                    """Apply the column defaults now: SQLAlchemy applies them only at flush."""
                    kwargs.setdefault("id", str(uuid4()))
                    kwargs.setdefault("deleted", False)
                    kwargs.setdefault("revision", 1)
                    super().__init__(**kwargs)
        ''',
    },
    failing=3,
)

OWN_INIT = Shape(
    "model_defaults",
    "own-init-test-class",
    "model_defaults",
    files={
        "shop/__init__.py": "",
        "shop/orders.py": '''
            import re

            from sqlalchemy import Column, Integer, Numeric, String
            from sqlalchemy.orm import declarative_base

            Base = declarative_base()


            class Order(Base):
                __tablename__ = "orders"
                id = Column(Integer, primary_key=True)
                reference = Column(String(40))
                status = Column(String(20), default="new")
                total = Column(Numeric(10, 2), default=0)

                def __init__(self, **kwargs):
                    """Orders get a readable reference from their customer."""
                    customer = kwargs.pop("customer", "guest")
                    kwargs.setdefault("reference", re.sub(r"\\W+", "-", customer).lower())
                    super().__init__(**kwargs)
        ''',
        "tests/__init__.py": "",
        "tests/test_orders.py": """
            from shop.orders import Order


            class TestNewOrder:
                def test_reference_from_customer(self):
                    assert Order(customer="Ann Lee").reference == "ann-lee"

                def test_status_is_new(self):
                    assert Order(customer="Bo").status == "new"

                def test_total_starts_at_zero(self):
                    assert Order().total == 0
        """,
    },
    fixed={
        "shop/orders.py": '''
            import re

            from sqlalchemy import Column, Integer, Numeric, String
            from sqlalchemy.orm import declarative_base

            Base = declarative_base()


            class Order(Base):
                __tablename__ = "orders"
                id = Column(Integer, primary_key=True)
                reference = Column(String(40))
                status = Column(String(20), default="new")
                total = Column(Numeric(10, 2), default=0)

                def __init__(self, **kwargs):
                    """Orders get a readable reference from their customer."""
                    kwargs.setdefault("status", "new")
                    kwargs.setdefault("total", 0)
                    customer = kwargs.pop("customer", "guest")
                    kwargs.setdefault("reference", re.sub(r"\\W+", "-", customer).lower())
                    super().__init__(**kwargs)
        ''',
    },
    failing=2,
)

SHAPES = (FASTAPI, MIXIN_FACTORY, OWN_INIT)
