"""uuid_type: made-up string ids where the code wants UUIDs."""

from tests.corpus import Shape

CONFTEST_FIXTURE = Shape(
    "uuid_type",
    "conftest-fixture-returns-a-readable-id",
    "uuid_type",
    files={
        "accounts/__init__.py": "",
        "accounts/lookup.py": '''
            import uuid


            def account_path(account_id):
                """Storage shards by the first byte of the account's uuid."""
                key = uuid.UUID(account_id)
                return f"{key.hex[:2]}/{key}"
        ''',
        "tests/__init__.py": "",
        "tests/conftest.py": """
            import pytest


            @pytest.fixture
            def user_id():
                return "user-42"
        """,
        "tests/test_lookup.py": """
            from accounts.lookup import account_path


            def test_path_is_sharded(user_id):
                assert account_path(user_id).count("/") == 1


            def test_path_ends_with_the_id(user_id):
                assert account_path(user_id).endswith(user_id)
        """,
    },
    fixed={
        "tests/conftest.py": """
            import pytest


            @pytest.fixture
            def user_id():
                return "4243fa49-370d-5428-b122-218655763d34"
        """,
    },
    failing=2,
)

UNITTEST_CONSTANT = Shape(
    "uuid_type",
    "unittest-class-constant-id",
    "uuid_type",
    files={
        "orders/__init__.py": "",
        "orders/keys.py": """
            import uuid


            def short_key(order_id):
                return uuid.UUID(str(order_id)).hex[:8]
        """,
        "tests/__init__.py": "",
        "tests/test_keys.py": """
            import unittest

            from orders.keys import short_key


            class ShortKeyTest(unittest.TestCase):
                ORDER_ID = "order-123"

                def test_length(self):
                    self.assertEqual(len(short_key(self.ORDER_ID)), 8)

                def test_stable(self):
                    self.assertEqual(short_key(self.ORDER_ID), short_key(self.ORDER_ID))
        """,
    },
    fixed={
        "tests/test_keys.py": """
            import unittest

            from orders.keys import short_key


            class ShortKeyTest(unittest.TestCase):
                ORDER_ID = "f152a3d4-681d-537c-bb85-4a92859912d1"

                def test_length(self):
                    self.assertEqual(len(short_key(self.ORDER_ID)), 8)

                def test_stable(self):
                    self.assertEqual(short_key(self.ORDER_ID), short_key(self.ORDER_ID))
        """,
    },
    failing=2,
)

SQLALCHEMY_UUID = Shape(
    "uuid_type",
    "sqlalchemy-uuid-column-given-a-string",
    "uuid_type",
    files={
        "inventory/__init__.py": "",
        "inventory/models.py": """
            import uuid

            from sqlalchemy import String, Uuid
            from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


            class Base(DeclarativeBase):
                pass


            class Part(Base):
                __tablename__ = "parts"

                id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
                name: Mapped[str] = mapped_column(String(40))
        """,
        "tests/__init__.py": "",
        "tests/test_parts.py": """
            import pytest
            from sqlalchemy import create_engine
            from sqlalchemy.orm import Session

            from inventory.models import Base, Part


            @pytest.fixture
            def session():
                engine = create_engine("sqlite://")
                Base.metadata.create_all(engine)
                with Session(engine) as session:
                    yield session


            def test_part_is_saved(session):
                session.add(Part(id="part-001", name="bolt"))
                session.flush()
                assert session.get(Part, "part-001").name == "bolt"
        """,
    },
    fixed={
        "tests/test_parts.py": """
            import uuid

            import pytest
            from sqlalchemy import create_engine
            from sqlalchemy.orm import Session

            from inventory.models import Base, Part

            # Real UUIDs for the ids these tests share.
            PART_001 = uuid.UUID("f2361a1b-ba40-5f52-ac3c-03736e5e5cb3")


            @pytest.fixture
            def session():
                engine = create_engine("sqlite://")
                Base.metadata.create_all(engine)
                with Session(engine) as session:
                    yield session


            def test_part_is_saved(session):
                session.add(Part(id=PART_001, name="bolt"))
                session.flush()
                assert session.get(Part, PART_001).name == "bolt"
        """,
    },
    failing=1,
)

SHAPES = (CONFTEST_FIXTURE, UNITTEST_CONSTANT, SQLALCHEMY_UUID)
