"""Our handoffs: the markdown people read and the state block the next run resumes from."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from orchestrator.errors import UsageError
from orchestrator.handoff import (
    HandoffState,
    PlannedAgent,
    read_handoff,
    render_handoff,
    staleness,
    write_handoff,
)
from orchestrator.models import (
    AgentResult,
    Category,
    Counts,
    IsolationFinding,
    Leak,
    SlowTest,
    Usage,
)

DEFAULTS = "tests/test_models.py::test_defaults[a|b]"
UUID_TEST = "tests/test_crud.py::TestCrud::test_get"


def rich_state(**changes) -> HandoffState:
    usage = Usage(input_tokens=1200, output_tokens=300, cost_usd=0.0123, model="claude-x")
    state = HandoffState(
        session="3",
        date=dt.date(2025, 11, 13),
        repo="/src/cos",
        base_commit="0123456789abcdef0123456789abcdef01234567",
        integration_branch="orchestrate/3/integration",
        agent_branches=["orchestrate/3/model_defaults", "orchestrate/3/uuid_type"],
        test_command="uv run pytest",
        ignores=["tests/common/test_pubsub.py"],
        deselect=["tests/test_slow.py::test_big"],
        before=Counts(total=1433, passed=1209, failed=113, errors=4, skipped=56, duration_s=265.5),
        after=Counts(total=1322, passed=1269, failed=53, errors=0, skipped=0, duration_s=240.25),
        previous=Counts(total=1433, passed=1200, failed=120, errors=4, skipped=56),
        agents=[
            AgentResult(
                agent="model_defaults",
                category="model_defaults",
                branch="orchestrate/3/md",
                status="accepted",
                fixed=["tests/a.py::t1", "tests/a.py::t2"],
                files_changed=["src/models.py"],
                target=2,
                usage=None,
                merged=True,
            ),
            AgentResult(
                agent="llm",
                category="uuid_type",
                branch="orchestrate/3/uuid",
                status="rejected",
                reason="regressed tests/b.py::t3",
                target=15,
                usage=usage,
                diff="--- a/x.py\n+++ b/x.py\n+```not a fence end```\n",
            ),
        ],
        remaining=[
            Category(
                id="uuid_type",
                title="UUID type",
                count=1,
                tests=[UUID_TEST],
                affected_files=["tests/test_crud.py"],
                root_cause="string ids | not UUIDs",
                fix_strategy="use uuid4()",
                agent="llm",
                priority="high",
                pattern="ValueError: badly formed hexadecimal UUID string `x`",
            ),
            Category(
                id="model_defaults",
                title="Defaults",
                count=1,
                tests=[DEFAULTS],
                affected_files=[],
                root_cause="",
                fix_strategy="",
                agent=None,
                priority="medium",
            ),
        ],
        isolation=[
            IsolationFinding(
                victim=UUID_TEST,
                kind="polluter",
                culprits=["tests/test_env.py::test_sets"],
                leaks={
                    "tests/test_env.py::test_sets": [
                        Leak(kind="env", key="DATABASE_URL", new="sqlite://")
                    ]
                },
                runs=4,
            )
        ],
        flaky=["tests/test_net.py::test_retry"],
        slow_tests=[SlowTest(nodeid="tests/test_slow.py::test_big", duration_s=31.5)],
        usage=usage,
        next_plan=[
            PlannedAgent(
                agent="llm", category="uuid_type", target=1, priority="high", tests=[UUID_TEST]
            ),
            PlannedAgent(
                agent="model_defaults", category="model_defaults", target=1, priority="medium"
            ),
        ],
        notes="Notes with <!-- orchestrate:state --> and ```json fences``` and “quotes” ✅.",
    )
    return state.model_copy(update=changes)


def test_round_trip_is_exact(tmp_path: Path) -> None:
    state = rich_state()
    path = write_handoff(state, tmp_path / "handoffs")
    view = read_handoff(path)
    assert view.source == "orchestrate"
    assert view.state == state
    assert view.ignores == ["tests/common/test_pubsub.py"]
    assert view.deselect == ["tests/test_slow.py::test_big"]
    assert view.previous.failed == 53 and view.previous.total == 1322
    assert [(c.category, c.tests) for c in view.categories] == [
        ("uuid_type", [UUID_TEST]),
        ("model_defaults", [DEFAULTS]),
    ]
    assert view.test_command.startswith("uv run pytest --ignore=tests/common/test_pubsub.py")
    assert view.commands[1] == f"uv run pytest {UUID_TEST}"
    assert view.commands[2] == f"uv run pytest '{DEFAULTS}'"


def test_markdown_reads_like_a_handoff(tmp_path: Path) -> None:
    path = write_handoff(rich_state(), tmp_path)
    text = path.read_text(encoding="utf-8")
    for heading in (
        "## Where things stand",
        "## Test status",
        "## What each agent did",
        "## Remaining failures by category",
        "## Isolation findings",
        "## Flaky tests",
        "## Slow tests",
        "## Commands",
        "## Next plan",
        "## Notes",
    ):
        assert heading in text
    assert "Failures since the previous handoff: 124 → 53" in text
    assert "- Failures this session: 117 → 53" in text
    assert "### 1. UUID type (1 failure) - HIGH" in text
    assert "| Pass rate | 84.4% | 96.0% |" in text
    assert "rejected: regressed tests/b.py::t3" in text
    assert "1,500 tokens, $0.0123 (claude-x)" in text
    assert "- **Root Cause**: string ids | not UUIDs" in text
    assert (
        f"`{UUID_TEST}` ← `tests/test_env.py::test_sets` [polluter]; leaks `DATABASE_URL='sqlite://' left in os.environ`"
        in text
    )
    assert "| `tests/test_slow.py::test_big` | 31.5 s |" in text
    assert f"orchestrate run /src/cos --from-handoff {path}" in text
    assert "1. `llm` on `uuid_type`: target 1 test (high)" in text
    assert text.index("`llm` on `uuid_type`") < text.index("`model_defaults` on `model_defaults`")


def test_pipes_in_test_ids_are_escaped_in_tables(tmp_path: Path) -> None:
    state = rich_state(slow_tests=[SlowTest(nodeid="tests/t.py::test[a|b]", duration_s=2)])
    text = render_handoff(state)
    assert "| `tests/t.py::test[a\\|b]` | 2.0 s |" in text


def test_session_numbers_continue_from_the_highest(tmp_path: Path) -> None:
    (tmp_path / "2025-01-01-session-7.md").write_text("old", encoding="utf-8")
    (tmp_path / "2025-01-01-session-2.md").write_text("old", encoding="utf-8")
    (tmp_path / "notes-session-99.md").write_text("not ours", encoding="utf-8")
    first = write_handoff(rich_state(), tmp_path)
    second = write_handoff(rich_state(), tmp_path)
    assert first.name == "2025-11-13-session-8.md"
    assert second.name == "2025-11-13-session-9.md"
    assert (tmp_path / "2025-01-01-session-7.md").read_text(encoding="utf-8") == "old"


def test_creates_the_directory(tmp_path: Path) -> None:
    path = write_handoff(rich_state(), tmp_path / "a" / "b")
    assert path.parent == tmp_path / "a" / "b"
    assert path.name == "2025-11-13-session-1.md"


def test_interrupted_run_says_so(tmp_path: Path) -> None:
    state = rich_state(interrupted=True, interrupted_reason="stopped by the user")
    text = render_handoff(state)
    assert text.startswith("# Handoff: session 3 (2025-11-13) - INTERRUPTED")
    assert "**Interrupted**: stopped by the user" in text
    assert read_handoff(write_handoff(state, tmp_path)).state == state


def test_damaged_state_block_falls_back_to_prose(tmp_path: Path) -> None:
    path = write_handoff(rich_state(), tmp_path)
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('"session": "3"', '"session": 3,,'), encoding="utf-8")
    view = read_handoff(path)
    assert view.source == "free-form"
    assert view.state is None
    assert "damaged" in view.warnings[0]
    assert (
        view.test_command is not None
        and "--ignore=tests/common/test_pubsub.py" in view.test_command
    )


def test_missing_handoff_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not found"):
        read_handoff(tmp_path / "nope.md")


def test_staleness_names_new_commits_fixed_and_new_failures(tmp_path: Path) -> None:
    view = read_handoff(write_handoff(rich_state(), tmp_path))
    lines = staleness(
        view,
        repo_head="fedcba9876543210",
        commits_since=4,
        failing_now={DEFAULTS, "tests/test_new.py::test_broke"},
    )
    assert lines[0] == "HEAD is fedcba9876, the handoff was written at 0123456789 (4 commits since)"
    assert lines[1] == f"fixed since: 1 tests the handoff lists as failing pass now: {UUID_TEST}"
    assert lines[2].startswith("new failures: 1 tests fail now")
    assert lines[2].endswith("tests/test_new.py::test_broke")


def test_staleness_is_quiet_when_nothing_changed(tmp_path: Path) -> None:
    state = rich_state()
    view = read_handoff(write_handoff(state, tmp_path))
    assert (
        staleness(
            view, repo_head=state.base_commit, commits_since=0, failing_now={DEFAULTS, UUID_TEST}
        )
        == []
    )
