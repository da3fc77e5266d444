"""Time `triage()` on 10,000 realistic failures across every category (target: under 1 s).

Run: .venv/bin/python bench/bench_grouping.py
"""

from __future__ import annotations

import random
import time
import uuid
from pathlib import Path

from orchestrator.categories import _first_text_match
from orchestrator.models import Frame, SuiteRun, TestResult
from orchestrator.triage import is_repo_path, normalise, triage
from orchestrator.triage.signature import _parsed

N = 10_000
TARGET_S = 1.0
SITE = "/home/dev/app/.venv/lib/python3.11/site-packages"


def _templates(i: int, rng: random.Random) -> list[tuple[str, str, str]]:
    """(exc_type, message, source line) for one failure of each kind, with volatile details."""
    addr = f"0x{rng.getrandbits(40):x}"
    tmp = f"/tmp/pytest-of-dev/pytest-{i % 50}/test_case{i}0"
    return [
        (
            "AssertionError",
            f"assert None is True\n +  where None = <app.models.Module object at {addr}>.active",
            "assert module.active is True",
        ),
        (
            "sqlalchemy.exc.IntegrityError",
            f"(sqlite3.IntegrityError) NOT NULL constraint failed: modules.id\n[SQL: INSERT INTO modules (id, name) VALUES (?, ?)]\n[parameters: (None, 'mod-{i}')]",
            "db.commit()",
        ),
        (
            "ValueError",
            "badly formed hexadecimal UUID string",
            f'crud.get_module(db, "test-id-{i % 7}")',
        ),
        (
            "AssertionError",
            "assert 409 == 201\n +  where 409 = <Response [409]>.status_code",
            f'client.post("/api/modules", json={{"name": "test_module_{i % 3}"}})',
        ),
        (
            "AssertionError",
            "assert 404 == 200\n +  where 404 = <Response [404]>.status_code",
            'client.get("/api/v1/health")',
        ),
        (
            "AssertionError",
            f'{{"detail":[{{"type":"uuid_parsing","loc":["body","event_id"],"input":"evt-{i}"}}]}}\nassert 422 == 201',
            f'client.post("/events", json={{"event_id": "evt-{i}"}})',
        ),
        (
            "subprocess.CalledProcessError",
            "Command '['/usr/local/bin/docker', 'unpause', 'cos_redis']' returned non-zero exit status 1.",
            "subprocess.run(cmd, check=True)",
        ),
        (
            "RuntimeError",
            "asyncio.run() cannot be called from a running event loop",
            "asyncio.run(bench())",
        ),
        (
            "AssertionError",
            "Expected '_publish_l1_event' to have been called once. Called 0 times.",
            '@patch("app.events._publish_l1_event")',
        ),
        (
            "sqlalchemy.exc.OperationalError",
            f"(sqlite3.OperationalError) no such table: health_status\n[SQL: SELECT * FROM health_status WHERE id = {i}]",
            "db.query(HealthStatus).all()",
        ),
        (
            "sqlalchemy.exc.InvalidRequestError",
            'Multiple classes found for path "Module" in the registry of this declarative base.',
            "Module.query",
        ),
        (
            "sqlalchemy.exc.InvalidRequestError",
            "Can't operate on closed transaction inside context manager.",
            "await processor.process_batch()",
        ),
        ("KeyError", f"'{uuid.UUID(int=rng.getrandbits(128))}' in {tmp}/cache.json", "cache[key]"),
    ]


def build_results(n: int = N, seed: int = 7) -> list[TestResult]:
    """n failing results, cycling through the templates, in 40 test files and 12 source files."""
    rng = random.Random(seed)
    results = []
    for i in range(n):
        templates = _templates(i, rng)
        exc, message, source = templates[i % len(templates)]
        test_file = f"tests/unit/test_area{i % 40}.py"
        frames = [
            Frame(path=test_file, line=10 + i % 300, func=f"test_case_{i}"),
            Frame(path=f"src/app/service{i % len(templates)}.py", line=50 + i % 9, func="handle"),
            Frame(path=f"{SITE}/sqlalchemy/engine/base.py", line=1960, func="_exec_single_context"),
        ]
        longrepr = (
            f"    def test_case_{i}(client, db):\n        payload = build()\n>       {source}\n"
            + "\n".join(f"{SITE}/lib.py:{k}: in call\n    return f(*a)" for k in range(15))
            + f"\nE       {exc.rsplit('.', 1)[-1]}: {message.splitlines()[0]}\n{test_file}:{10 + i % 300}: {exc}"
        )
        results.append(
            TestResult(
                nodeid=f"{test_file}::TestThing::test_case_{i}[param{i % 4}]",
                outcome="timeout" if i % 997 == 0 else ("error" if i % 11 == 0 else "failed"),
                when="setup" if i % 11 == 0 else "call",
                duration_s=rng.uniform(0.001, 3.0),
                exc_type=exc,
                message=message,
                frames=frames,
                longrepr=longrepr,
            )
        )
    return results


def main() -> None:
    run = SuiteRun(command=["pytest"], cwd="/repo", results=build_results(), duration_s=240.0)
    walls, cpus = [], []
    for _ in range(3):
        for cached in (_first_text_match, _parsed, is_repo_path, normalise):
            cached.cache_clear()  # time a cold start, as the CLI sees it
        wall, cpu = time.perf_counter(), time.process_time()
        report = triage(run, Path("/repo"), "uv run pytest")
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    best = min(walls)
    print(
        f"triage() on {len(run.results)} failures: best of 3 = {best:.3f} s wall, "
        f"{min(cpus):.3f} s CPU ({best / TARGET_S:.2f}x the {TARGET_S:.0f} s target)"
    )
    print(
        f"{len(report.categories)} categories, "
        f"{sum(len(c.signatures) for c in report.categories)} signatures:"
    )
    for c in report.categories:
        print(f"  {c.id:18} {c.count:5}  {c.priority:8}  {len(c.signatures)} signature(s)")


if __name__ == "__main__":
    main()
