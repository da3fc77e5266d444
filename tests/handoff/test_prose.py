"""Handoffs people wrote: what we take from them, and what we refuse to take."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import UsageError
from orchestrator.handoff import read_handoff
from orchestrator.handoff.prose import decode, duration_seconds, parse_handoff
from tests.helpers import HANDOFFS  # noqa: E402

MODEL_SCHEMA_IGNORES = [
    "tests/common/test_base_subscriber.py",
    "tests/common/test_pubsub.py",
    "tests/common/test_pubsub_circuit_breaker.py",
    "tests/integration/test_redis_foundation.py",
    "tests/integration/test_redis_pubsub.py",
    "tests/integration/test_redis_performance.py",
    "tests/performance/test_failure_scenarios.py",
    "tests/unit/common/test_redis_pubsub_comprehensive.py",
]


def test_model_schema_fixes() -> None:
    view = read_handoff(HANDOFFS / "model-schema-fixes-handoff.md")
    assert view.source == "free-form"
    assert view.ignores == MODEL_SCHEMA_IGNORES
    assert view.test_command == "uv run pytest tests/ --tb=short -q " + " ".join(
        f"--ignore={p}" for p in MODEL_SCHEMA_IGNORES
    )
    assert view.commands[:4] == [
        "uv run pytest tests/backend/cc/test_models_coverage.py -v",
        "uv run pytest tests/backend/cc/test_crud.py::TestModuleCRUD::test_create_module_success -v",
        "uv run pytest tests/backend/cc/test_router.py::TestModuleRouterEndpoints"
        "::test_create_module_success -v",
        "uv run pytest tests/unit/backend/cc/test_database_schema.py -v",
    ]
    assert view.commands[4] == view.test_command and len(view.commands) == 5
    p = view.previous
    assert (p.total, p.passed, p.failed, p.skipped, p.errors) == (1433, 1209, 113, 56, 4)
    assert p.duration_s == 265
    assert [(c.title, c.category, c.count) for c in view.categories] == [
        ("Model Default Values", "model_defaults", 23),
        ("UUID Type Issues", "uuid_type", 15),
        ("API 409 Conflicts", "api_conflict", 16),
        ("Redis/Circuit Breaker", None, 28),
        ("Database Schema", "db_schema", 8),
    ]
    assert view.categories[0].affected_files[0] == "tests/backend/cc/test_models_coverage.py"
    assert len(view.categories[0].affected_files) == 6
    assert view.working_directory == "/Users/kevinmba/dev/cos"
    assert view.branch == "feature/db-config-unification"
    assert view.slow_tests == MODEL_SCHEMA_IGNORES  # the run is labelled "excluding slow tests"
    assert view.unread == [] and view.warnings == []


def test_infrastructure_stability() -> None:
    view = read_handoff(HANDOFFS / "infrastructure-stability-handoff.md")
    full = (
        "uv run pytest tests/ --tb=short -q --ignore=tests/common/test_pubsub.py "
        "--ignore=tests/unit/common/test_redis_pubsub_comprehensive.py"
    )
    assert view.test_command == full  # labelled full and carrying ignores beats "entire suite"
    assert view.ignores == [
        "tests/common/test_pubsub.py",
        "tests/unit/common/test_redis_pubsub_comprehensive.py",
    ]
    assert view.commands[4:] == [full, "uv run pytest tests/ --tb=short -q"]
    assert len(view.commands) == 6
    p = view.previous
    assert (p.total, p.passed, p.failed) == (1322, 1269, 53)
    assert p.duration_s == 240
    assert view.pass_rate == pytest.approx(0.958)
    assert [(c.category, c.count) for c in view.categories] == [
        ("async_event_loop", 12),
        ("docker_lifecycle", 8),
        ("api_routing", 10),
        ("mock_not_called", 12),
        (None, 5),
    ]
    assert view.categories[1].affected_files == [
        "tests/performance/test_failure_scenarios.py",
        "tests/performance/test_production_readiness.py",
    ]
    assert len(view.slow_tests) == 7 and view.slow_tests[0] == "tests/common/test_pubsub.py"
    assert any("12-15" in w and "lower bound" in w for w in view.warnings)


def test_session_9() -> None:
    view = read_handoff(HANDOFFS / "session-9-handoff.md")
    assert view.commands[:2] == ["pytest tests/test_telemetry_ingestion.py -v", "pytest -v"]
    assert view.test_command == "pytest -v"
    assert view.command_dir == "backend"  # `cd backend && source venv/bin/activate` before it
    assert view.ignores == []
    p = view.previous
    assert (p.total, p.passed, p.failed) == (78, 74, 4)
    assert view.pass_rate == pytest.approx(0.95)
    assert view.branch == "taskmaster-branch"
    assert view.categories == []  # numbered "lessons" and "files" headings are not categories


def test_mojibake_is_repaired() -> None:
    text = (HANDOFFS / "session-9-handoff.md").read_bytes()
    assert "## ✅ Session 9 Achievements" in decode(text)
    infra = decode((HANDOFFS / "infrastructure-stability-handoff.md").read_bytes())
    assert "MASSIVE SUCCESS! 🚀" in infra and "113 → 53" in infra
    assert decode("café ✅".encode()) == "café ✅"  # correct UTF-8 is left alone


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("4 minutes 25 seconds", 265), ("~4 minutes", 240), ("1h 2m", 3720), ("12.5s", 12.5)],
)
def test_durations(text: str, seconds: float) -> None:
    assert duration_seconds(text) == seconds


def test_continuations_comments_and_prefixes() -> None:
    view = parse_handoff(
        "## Full suite\n```bash\n"
        "cd backend && poetry run pytest tests \\\n  --ignore=tests/slow.py \\\n"
        "  --deselect tests/x.py::test_y  # the usual run\n"
        "```\nThen run `python -m pytest tests/a.py::test_b -x` to check.\n"
        "=== 3 failed, 10 passed, 1 skipped in 12.50s ===\n"
    )
    assert view.commands == [
        "poetry run pytest tests --ignore=tests/slow.py --deselect tests/x.py::test_y",
        "python -m pytest tests/a.py::test_b -x",
    ]
    assert view.ignores == ["tests/slow.py"] and view.deselect == ["tests/x.py::test_y"]
    assert view.command_dir == "backend"
    assert (view.previous.total, view.previous.failed, view.previous.duration_s) == (14, 3, 12.5)


def test_shell_chains_are_cut_and_nothing_runs(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    handoff = tmp_path / "evil.md"
    handoff.write_text(
        "# Full suite\n```bash\n"
        f"pytest tests; touch {canary}\n"
        f"pytest tests/b.py | tee {canary}\n"
        f"touch {canary} && pytest tests/c.py\n"
        f'pytest -k "$(touch {canary})"\n'
        f"pytest `touch {canary}`\n"
        "```\n",
        encoding="utf-8",
    )
    view = read_handoff(handoff)
    assert view.commands == ["pytest tests", "pytest tests/b.py", "pytest tests/c.py", "pytest"]
    assert any(f"dropped `; touch {canary}`" in w for w in view.warnings)
    assert any(f"dropped `touch {canary}` before a pytest command" in w for w in view.warnings)
    assert sum("dropped" in w for w in view.warnings) == 4
    assert view.unread == [f'unbalanced quoting in a pytest command: pytest -k "$(touch {canary})"']
    assert not canary.exists()


def test_unbalanced_quotes_are_unread() -> None:
    view = parse_handoff("```bash\npytest -k 'oops\n```\n")
    assert view.commands == []
    assert view.unread == ["unbalanced quoting in a pytest command: pytest -k 'oops"]
    assert "no full-suite pytest command found" in view.warnings


def test_ignores_outside_the_repo_are_dropped() -> None:
    view = parse_handoff(
        "## Full run\n```bash\npytest tests --ignore=/etc --ignore=../x --ignore tests/ok.py\n```\n"
    )
    assert view.ignores == ["tests/ok.py"]
    assert view.test_command == "pytest tests --ignore tests/ok.py"
    assert view.commands == ["pytest tests --ignore=/etc --ignore=../x --ignore tests/ok.py"]
    assert sum("outside the repository" in w for w in view.warnings) == 2


def test_category_heading_without_count_is_unread() -> None:
    view = parse_handoff(
        "## Remaining failures\n### 1. Strange things\n**Pattern**: `Called 0 times`\n"
        "See `tests/test_a.py::test_b`.\n"
    )
    assert [(c.title, c.category, c.count, c.tests) for c in view.categories] == [
        ("Strange things", "mock_not_called", None, ["tests/test_a.py::test_b"])
    ]
    assert view.unread == ["category heading without a count: 1. Strange things"]


def test_targets_and_projections_are_not_counts() -> None:
    view = parse_handoff(
        "## Success Metrics\n- Reduce failures from 113 to ~50\n"
        "## Status\n- Expected: 78/78 passing\n- 12 failures remaining\n"
    )
    assert view.previous.failed == 12
    assert view.previous.passed is None and view.previous.total is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"# h\x00\x01\x02", "binary"),
        (b"x" * 2_000_001, "too large"),
    ],
)
def test_hostile_files_are_usage_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "h.md"
    path.write_bytes(content)
    with pytest.raises(UsageError, match=message) as info:
        read_handoff(path)
    assert "\n" not in str(info.value)


def test_setext_headings_are_headings() -> None:
    view = parse_handoff(
        "Remaining failures\n==================\n\n### 1. Strange things\n"
        "**Pattern**: `Called 0 times`\n\n"
        "Slow tests\n----------\n- `tests/test_slow.py` hangs\n"
    )
    assert [(c.title, c.category) for c in view.categories] == [
        ("Strange things", "mock_not_called")  # found under the setext "Remaining failures"
    ]
    assert view.slow_tests == ["tests/test_slow.py"]


def test_fence_inside_a_block_quote_is_code() -> None:
    view = parse_handoff(
        "## Full suite\n> Run it like this:\n>\n"
        "> ```bash\n> pytest tests --ignore=tests/slow.py  # the usual run\n> ```\n"
    )
    assert view.commands == ["pytest tests --ignore=tests/slow.py"]
    assert view.test_command == "pytest tests --ignore=tests/slow.py"
    assert view.ignores == ["tests/slow.py"] and view.warnings == []


def test_fence_inside_a_list_in_a_block_quote_is_code() -> None:
    view = parse_handoff("## Full suite\n> - Run:\n>   ```sh\n>   pytest tests -x\n>   ```\n")
    assert view.test_command == "pytest tests -x"


def test_indented_code_starting_with_hash_is_not_a_heading() -> None:
    view = parse_handoff(
        "## Remaining failures\n### 1. Strange things (2 failures)\nRun:\n\n"
        "    # not a heading\n    pytest tests/test_a.py::test_b\n\n"
        "Also `tests/test_c.py::test_d`.\n"
    )
    assert [(c.title, c.count, c.tests) for c in view.categories] == [
        ("Strange things", 2, ["tests/test_a.py::test_b", "tests/test_c.py::test_d"])
    ]
    assert view.commands == ["pytest tests/test_a.py::test_b"]


@pytest.mark.parametrize(
    "text",
    ["Maß–Zahl", "Grüße – „zitiert“ “quoted” ½ ﬁ ｗｉｄｅ", "## ✅ done\r\nnaïve café\n"],
)
def test_correct_utf8_is_kept_byte_for_byte(text: str) -> None:
    assert decode(text.encode()).encode() == text.encode()
    assert decode(b"\xef\xbb\xbf" + text.encode()) == text  # a BOM is dropped, nothing else


def test_brace_expanded_node_ids_are_each_a_test() -> None:
    view = parse_handoff(
        "## Remaining failures\n### 1. Mock targets (5 failures)\n**Pattern**: `Called 0 times`\n"
        "- `tests/unit/test_mail.py::{test_send, test_retry}`\n"
        "- tests/unit/test_hooks.py::TestHooks::{test_a,test_b[x-1]}\n"
        "- `tests/unit/test_one.py::test_alone`\n"
    )
    [category] = view.categories
    assert category.tests == [
        "tests/unit/test_mail.py::test_send",
        "tests/unit/test_mail.py::test_retry",
        "tests/unit/test_hooks.py::TestHooks::test_a",
        "tests/unit/test_hooks.py::TestHooks::test_b[x-1]",
        "tests/unit/test_one.py::test_alone",
    ]
