"""validation_error: payloads the schema rejects (made-up ids where it wants UUIDs)."""

from tests.corpus import Shape

TASKS_APP = {
    "app/__init__.py": "",
    "app/main.py": """
        from uuid import UUID

        from fastapi import FastAPI
        from pydantic import BaseModel

        app = FastAPI()


        class TaskIn(BaseModel):
            title: str
            owner_id: UUID


        @app.post("/tasks", status_code=201)
        def create_task(task: TaskIn) -> dict:
            return {"title": task.title, "owner": str(task.owner_id)}
    """,
}

FASTAPI_PAYLOAD = Shape(
    "validation_error",
    "fastapi-payload-with-a-readable-id",
    "uuid_type",
    files={
        **TASKS_APP,
        "tests/__init__.py": "",
        "tests/test_tasks.py": """
            from fastapi.testclient import TestClient

            from app.main import app

            client = TestClient(app)


            def test_create_task():
                response = client.post("/tasks", json={"title": "Write docs", "owner_id": "owner-1"})
                assert response.status_code == 201
                assert response.json()["title"] == "Write docs"
        """,
    },
    fixed={
        "tests/test_tasks.py": """
            import uuid

            from fastapi.testclient import TestClient

            from app.main import app

            client = TestClient(app)


            def test_create_task():
                response = client.post("/tasks", json={"title": "Write docs", "owner_id": str(uuid.uuid4())})
                assert response.status_code == 201
                assert response.json()["title"] == "Write docs"
        """,
    },
    failing=1,
)

PYDANTIC_MODEL = Shape(
    "validation_error",
    "pydantic-model-validate-in-a-unit-test",
    "uuid_type",
    files={
        "events/__init__.py": "",
        "events/schema.py": """
            from uuid import UUID

            from pydantic import BaseModel


            class Event(BaseModel):
                id: UUID
                kind: str
        """,
        "tests/__init__.py": "",
        "tests/test_schema.py": """
            from events.schema import Event


            def test_click_event():
                event = Event.model_validate({"id": "evt-1", "kind": "click"})
                assert event.kind == "click"


            def test_events_compare_by_id():
                first = Event.model_validate({"id": "evt-2", "kind": "view"})
                assert first == Event(id=first.id, kind="view")
        """,
    },
    fixed={
        "tests/test_schema.py": """
            import uuid

            from events.schema import Event


            def test_click_event():
                event = Event.model_validate({"id": str(uuid.uuid4()), "kind": "click"})
                assert event.kind == "click"


            def test_events_compare_by_id():
                first = Event.model_validate({"id": str(uuid.uuid4()), "kind": "view"})
                assert first == Event(id=first.id, kind="view")
        """,
    },
    failing=2,
)

PAYLOAD_FACTORY = Shape(
    "validation_error",
    "payload-factory-in-conftest",
    "uuid_type",
    files={
        "billing/__init__.py": "",
        "billing/api.py": """
            from uuid import UUID

            from fastapi import FastAPI
            from pydantic import BaseModel

            app = FastAPI()


            class InvoiceIn(BaseModel):
                customer_id: UUID
                cents: int


            @app.post("/invoices", status_code=201)
            def create_invoice(invoice: InvoiceIn) -> dict:
                return {"cents": invoice.cents}
        """,
        "tests/__init__.py": "",
        "tests/conftest.py": """
            import pytest
            from fastapi.testclient import TestClient

            from billing.api import app


            def invoice_payload(**overrides):
                return {"customer_id": "cust-7", "cents": 1000, **overrides}


            @pytest.fixture(scope="session")
            def client():
                return TestClient(app)
        """,
        "tests/test_invoices.py": """
            from tests.conftest import invoice_payload


            def test_create_invoice(client):
                assert client.post("/invoices", json=invoice_payload()).status_code == 201


            def test_create_small_invoice(client):
                response = client.post("/invoices", json=invoice_payload(cents=5))
                assert response.status_code == 201
                assert response.json() == {"cents": 5}
        """,
    },
    fixed={
        "tests/conftest.py": """
            import uuid

            import pytest
            from fastapi.testclient import TestClient

            from billing.api import app


            def invoice_payload(**overrides):
                return {"customer_id": str(uuid.uuid4()), "cents": 1000, **overrides}


            @pytest.fixture(scope="session")
            def client():
                return TestClient(app)
        """,
    },
    failing=2,
)

SHAPES = (FASTAPI_PAYLOAD, PYDANTIC_MODEL, PAYLOAD_FACTORY)
