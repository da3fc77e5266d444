"""api_conflict: unique values created twice in a shared database."""

from tests.corpus import Shape

SUFFIX = "{uuid.uuid4().hex[:8]}"

FASTAPI_APP = {
    "app/__init__.py": "",
    "app/db.py": """
        from sqlalchemy import create_engine
        from sqlalchemy.orm import DeclarativeBase, sessionmaker
        from sqlalchemy.pool import StaticPool

        engine = create_engine(
            "sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool
        )
        Session = sessionmaker(engine)


        class Base(DeclarativeBase):
            pass
    """,
    "app/main.py": """
        from fastapi import FastAPI, HTTPException
        from pydantic import BaseModel
        from sqlalchemy import String, select
        from sqlalchemy.exc import IntegrityError
        from sqlalchemy.orm import Mapped, mapped_column

        from app.db import Base, Session, engine


        class Item(Base):
            __tablename__ = "items"

            id: Mapped[int] = mapped_column(primary_key=True)
            name: Mapped[str] = mapped_column(String(80), unique=True)
            price: Mapped[float]


        class ItemIn(BaseModel):
            name: str
            price: float


        Base.metadata.create_all(engine)
        app = FastAPI()


        @app.post("/items", status_code=201)
        def create_item(payload: ItemIn) -> dict:
            with Session() as session:
                session.add(Item(**payload.model_dump()))
                try:
                    session.commit()
                except IntegrityError:
                    raise HTTPException(409, "an item with that name exists") from None
            return payload.model_dump()


        @app.get("/items/{name}")
        def read_item(name: str) -> dict:
            with Session() as session:
                item = session.scalars(select(Item).where(Item.name == name)).one()
                return {"name": item.name, "price": item.price}
    """,
}

MODULE_CONSTANT = Shape(
    "api_conflict",
    "fastapi-module-constant-seeded-by-module-fixture",
    "api_conflict",
    files={
        **FASTAPI_APP,
        "tests/__init__.py": "",
        "tests/test_items.py": """
            import pytest
            from fastapi.testclient import TestClient

            from app.main import app

            WIDGET = {"name": "widget", "price": 9.5}


            @pytest.fixture(scope="module")
            def client():
                with TestClient(app) as client:
                    client.post("/items", json=WIDGET)  # the catalogue the read tests expect
                    yield client


            def test_read_item(client):
                assert client.get("/items/widget").json()["price"] == 9.5


            def test_create_item(client):
                response = client.post("/items", json=WIDGET)
                assert response.status_code == 201
                assert response.json()["name"] == WIDGET["name"]


            def test_create_discounted_item(client):
                response = client.post("/items", json={**WIDGET, "price": 5.0})
                assert response.status_code == 201
        """,
    },
    fixed={
        "tests/test_items.py": f"""
            import uuid

            import pytest
            from fastapi.testclient import TestClient

            from app.main import app

            WIDGET = {{"name": "widget", "price": 9.5}}


            @pytest.fixture(scope="module")
            def client():
                with TestClient(app) as client:
                    client.post("/items", json=WIDGET)  # the catalogue the read tests expect
                    yield client


            def test_read_item(client):
                assert client.get("/items/widget").json()["price"] == 9.5


            def test_create_item(client):
                widget = {{**WIDGET, "name": f"widget_{SUFFIX}"}}
                response = client.post("/items", json=widget)
                assert response.status_code == 201
                assert response.json()["name"] == widget["name"]


            def test_create_discounted_item(client):
                widget = {{**WIDGET, "name": f"widget_{SUFFIX}"}}
                response = client.post("/items", json={{**widget, "price": 5.0}})
                assert response.status_code == 201
        """,
    },
    failing=2,
)

FLASK_DICT_COPY = Shape(
    "api_conflict",
    "flask-conftest-constant-dict-copy",
    "api_conflict",
    files={
        "app/__init__.py": """
            import sqlite3

            from flask import Flask, request


            def create_app():
                app = Flask(__name__)
                db = sqlite3.connect(":memory:", check_same_thread=False)
                db.execute("CREATE TABLE users (email TEXT NOT NULL UNIQUE, name TEXT)")

                @app.post("/users")
                def signup():
                    user = request.get_json()
                    try:
                        with db:
                            db.execute("INSERT INTO users VALUES (:email, :name)", user)
                    except sqlite3.IntegrityError:
                        return {"error": "already registered"}, 409
                    return user, 201

                return app
        """,
        "tests/__init__.py": "",
        "tests/conftest.py": """
            import pytest

            from app import create_app

            ANN = {"email": "ann@example.com", "name": "Ann"}


            @pytest.fixture(scope="session")
            def app():
                return create_app()


            @pytest.fixture
            def client(app):
                return app.test_client()
        """,
        "tests/test_signup.py": """
            from tests.conftest import ANN


            def test_signup(client):
                assert client.post("/users", json=ANN).status_code == 201


            def test_signup_with_a_nickname(client):
                response = client.post("/users", json=dict(ANN, name="Annie"))
                assert response.status_code == 201
                assert response.get_json()["name"] == "Annie"
        """,
    },
    fixed={
        "tests/test_signup.py": f"""
            import uuid

            from tests.conftest import ANN


            def test_signup(client):
                assert client.post("/users", json=ANN).status_code == 201


            def test_signup_with_a_nickname(client):
                ann = {{**ANN, "email": f"ann_{SUFFIX}@example.com"}}
                response = client.post("/users", json=dict(ann, name="Annie"))
                assert response.status_code == 201
                assert response.get_json()["name"] == "Annie"
        """,
    },
    failing=1,
)

FACTORY_HELPER = Shape(
    "api_conflict",
    "sqlalchemy-factory-in-test-helpers-module-session",
    "api_conflict",
    files={
        "crm/__init__.py": "",
        "crm/models.py": """
            from sqlalchemy import Column, Integer, String
            from sqlalchemy.orm import declarative_base

            Base = declarative_base()


            class Customer(Base):
                __tablename__ = "customers"
                id = Column(Integer, primary_key=True)
                email = Column(String(120), unique=True, nullable=False)
                name = Column(String(80))
        """,
        "tests/__init__.py": "",
        "tests/factories.py": '''
            from crm.models import Customer


            def make_customer(session, **fields):
                """A saved customer; override any field."""
                customer = Customer(**{"email": "customer@example.com", "name": "Customer", **fields})
                session.add(customer)
                session.flush()
                return customer
        ''',
        "tests/test_customers.py": """
            import pytest
            from sqlalchemy import create_engine
            from sqlalchemy.orm import Session

            from crm.models import Base
            from tests.factories import make_customer


            @pytest.fixture(scope="module")
            def session():
                engine = create_engine("sqlite://")
                Base.metadata.create_all(engine)
                with Session(engine) as session:
                    yield session


            def test_customer_gets_an_id(session):
                assert make_customer(session).id is not None


            def test_two_customers_differ(session):
                first = make_customer(session, name="First")
                second = make_customer(session, name="Second")
                assert first.id != second.id
        """,
    },
    fixed={
        "tests/factories.py": f'''
            import uuid

            from crm.models import Customer


            def make_customer(session, **fields):
                """A saved customer; override any field."""
                customer = Customer(**{{"email": f"customer_{SUFFIX}@example.com", "name": "Customer", **fields}})
                session.add(customer)
                session.flush()
                return customer
        ''',
    },
    failing=1,
)

SHAPES = (MODULE_CONSTANT, FLASK_DICT_COPY, FACTORY_HELPER)
