"""api_routing: requests the app does not route (prefixes, trailing slashes, overrides)."""

from tests.corpus import Shape

ROUTER_PREFIX = Shape(
    "api_routing",
    "fastapi-router-mounted-without-its-prefix",
    "api_routing",
    files={
        "app/__init__.py": "",
        "app/routers/__init__.py": "",
        "app/routers/items.py": """
            from fastapi import APIRouter

            router = APIRouter(tags=["items"])
            ITEMS: dict[int, dict] = {}


            @router.post("/", status_code=201)
            def create_item(item: dict) -> dict:
                ITEMS[len(ITEMS) + 1] = item
                return {"id": len(ITEMS), **item}


            @router.get("/{item_id}")
            def read_item(item_id: int) -> dict:
                return ITEMS[item_id]
        """,
        "app/routers/health.py": """
            from fastapi import APIRouter

            router = APIRouter()


            @router.get("/health")
            def health() -> dict:
                return {"ok": True}
        """,
        "app/main.py": """
            from fastapi import FastAPI

            from app.routers import health, items

            app = FastAPI()
            app.include_router(health.router)
            app.include_router(items.router)
        """,
        "tests/__init__.py": "",
        "tests/test_items.py": """
            from fastapi.testclient import TestClient

            from app.main import app

            client = TestClient(app)


            def test_health():
                assert client.get("/health").json() == {"ok": True}


            def test_create_item():
                response = client.post("/items/", json={"name": "lamp"})
                assert response.status_code == 201


            def test_read_item():
                created = client.post("/items/", json={"name": "desk"})
                assert created.status_code == 201
                assert client.get(f"/items/{created.json()['id']}").json() == {"name": "desk"}
        """,
    },
    fixed={
        "app/main.py": """
            from fastapi import FastAPI

            from app.routers import health, items

            app = FastAPI()
            app.include_router(health.router)
            app.include_router(items.router, prefix="/items")
        """,
    },
    failing=2,
)

FLASK_SLASH = Shape(
    "api_routing",
    "flask-blueprint-rule-without-the-trailing-slash",
    "api_routing",
    files={
        "app/__init__.py": """
            from flask import Flask


            def create_app():
                app = Flask(__name__)
                from app.users import bp

                app.register_blueprint(bp, url_prefix="/api")
                return app
        """,
        "app/users.py": """
            from flask import Blueprint

            bp = Blueprint("users", __name__)


            @bp.get("/users")
            def list_users():
                return {"users": ["ann", "bob"]}


            @bp.get("/users/<name>")
            def get_user(name):
                return {"name": name}
        """,
        "tests/__init__.py": "",
        "tests/conftest.py": """
            import pytest

            from app import create_app


            @pytest.fixture
            def client():
                return create_app().test_client()
        """,
        "tests/test_users.py": """
            def test_list_users(client):
                response = client.get("/api/users/")
                assert response.status_code == 200
                assert response.get_json()["users"] == ["ann", "bob"]


            def test_get_user(client):
                assert client.get("/api/users/ann").get_json() == {"name": "ann"}
        """,
    },
    fixed={
        "app/users.py": """
            from flask import Blueprint

            bp = Blueprint("users", __name__)


            @bp.get("/users", strict_slashes=False)
            def list_users():
                return {"users": ["ann", "bob"]}


            @bp.get("/users/<name>")
            def get_user(name):
                return {"name": name}
        """,
    },
    failing=1,
)

OVERRIDE = Shape(
    "api_routing",
    "fastapi-override-keyed-on-the-wrapper",
    "api_routing",
    files={
        "app/__init__.py": "",
        "app/auth.py": '''
            from fastapi import Depends, Header, HTTPException


            def get_token_user(authorization: str | None = Header(None)) -> dict:
                """The user the bearer token names."""
                if authorization is None:
                    raise HTTPException(401, "not authenticated")
                return {"name": authorization.removeprefix("Bearer ")}


            def get_current_user(user: dict = Depends(get_token_user)) -> dict:
                """Kept for the admin views, which used to depend on it."""
                return user
        ''',
        "app/main.py": """
            from fastapi import Depends, FastAPI

            from app.auth import get_token_user

            app = FastAPI()


            @app.get("/me")
            def me(user: dict = Depends(get_token_user)) -> dict:
                return user


            @app.get("/ping")
            def ping() -> dict:
                return {"pong": True}
        """,
        "tests/__init__.py": "",
        "tests/conftest.py": """
            import pytest
            from fastapi.testclient import TestClient

            from app.auth import get_current_user
            from app.main import app


            @pytest.fixture
            def client():
                app.dependency_overrides[get_current_user] = lambda: {"name": "ann"}
                yield TestClient(app)
                app.dependency_overrides.clear()
        """,
        "tests/test_me.py": """
            def test_me(client):
                response = client.get("/me")
                assert response.status_code == 200
                assert response.json() == {"name": "ann"}


            def test_ping(client):
                assert client.get("/ping").json() == {"pong": True}
        """,
    },
    fixed={
        "tests/conftest.py": """
            import pytest
            from fastapi.testclient import TestClient

            from app.auth import get_token_user
            from app.main import app


            @pytest.fixture
            def client():
                app.dependency_overrides[get_token_user] = lambda: {"name": "ann"}
                yield TestClient(app)
                app.dependency_overrides.clear()
        """,
    },
    failing=1,
)

SHAPES = (ROUTER_PREFIX, FLASK_SLASH, OVERRIDE)
