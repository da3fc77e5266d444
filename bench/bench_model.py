"""Benchmark the model agent's spend: requests, dollars per fixed test and cache hit ratio.

Run: .venv/bin/python bench/bench_model.py [--before REV] [--min-cache-tokens 4096]

Scripted trajectories (what a model replies is fixed, so this measures what the product sends
and does, not how well a model reasons) run through the real SDK against the local scripted
Messages API of tests/helpers/fake_anthropic.py, whose prompt cache bills each request the way
the API does (tokens estimated at 4 characters; a prefix is cached at a breakpoint once it is
`--min-cache-tokens` long). The same trajectories run with the loop of `--before` (by default the
commit before the model agent was rebuilt: two breakpoints, stop reasons never read, a fix
without `finish` dropped) and with the current one, printed side by side. A fix counts when the
agent hands its edits on (not declined) and the test then passes under real pytest.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import anthropic

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orchestrator.agents import llm as after  # noqa: E402
from orchestrator.models import Failure, Usage, WorkOrder  # noqa: E402
from tests.helpers.fake_anthropic import FakeAnthropic, PromptCache, call, reply  # noqa: E402

BEFORE = "70a4a12"  # main before issue 13: the loop as the issue measured it
NODE = "tests/test_calc.py::test_add"
FILLER = "\n\n".join(
    f'def helper_{n}(values):\n    """Helper {n}: sums the values it is given, times {n}."""\n'
    f"    total = 0\n    for value in values:\n        total += value * {n}\n    return total"
    for n in range(40)
)  # about 8 kB: each read of calc.py is a large tool result
CALC = f"def add(a, b):\n    return a - b\n\n\n{FILLER}\n"
TEST = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
OUT = {"input_tokens": 0, "output_tokens": 150}
FIX = call("replace_in_file", path="calc.py", old="return a - b", new="return a + b")
BROKEN = call(
    "create_file", path="calc.py", content="def add(a, b):\n    return a +", overwrite=True
)


def r(*calls, **kw) -> dict:
    return reply(*calls, usage=OUT, **kw)


def trajectories() -> dict[str, tuple[list, int]]:
    """name -> (the script, turn by turn; max turns)."""
    reads = [
        r(call("read_file", path="calc.py", start_line=1 + (n % 3)), text=f"Reading, step {n}.")
        for n in range(18)
    ]
    return {
        "investigate, fix, finish (21 turns, 8 kB reads)": (
            [*reads, r(FIX), r(call("run_tests")), r(call("finish", explanation="add adds"))],
            30,
        ),
        "fix without finish (turn limit 12)": (
            [r(call("read_file", path="calc.py")), r(FIX), r(call("run_tests"))]
            + [r(call("list_files"))] * 30,
            12,
        ),
        "create_file cut by max_tokens": (
            [
                [r(BROKEN, stop_reason="max_tokens"), r(FIX)],
                r(call("run_tests")),
                r(call("finish", explanation="add adds")),
            ],
            30,
        ),
        "refusal": ([r(text="I can't help with that.", stop_reason="refusal")] * 40, 30),
        "prose only": ([r(text="The code looks fine to me.")] * 40, 30),
    }


@dataclass
class Outcome:
    requests: int = 0
    usage: Usage | None = None
    fixed: int = 0

    def add(self, other: Outcome) -> None:
        self.requests += other.requests
        self.fixed += other.fixed
        self.usage = other.usage if self.usage is None else self.usage + (other.usage or Usage())


def load_before(rev: str) -> ModuleType:
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:agents/llm.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp(prefix="bench-model-")) / "llm_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("orchestrator.agents.llm_before", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def repo(where: Path) -> Path:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "b",
        "GIT_AUTHOR_EMAIL": "b@b",
        "GIT_COMMITTER_NAME": "b",
        "GIT_COMMITTER_EMAIL": "b@b",
    }
    (where / "tests").mkdir(parents=True)
    (where / "calc.py").write_text(CALC)
    (where / "tests" / "test_calc.py").write_text(TEST)
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "init"]):
        subprocess.run(["git", *args], cwd=where, check=True, env=env)
    return where


def pytest_passes(where: Path) -> tuple[bool, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", NODE],
        cwd=where,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        timeout=60,
    )
    return proc.returncode == 0, proc.stdout[-3000:]


def order() -> WorkOrder:
    failure = Failure(
        nodeid=NODE,
        outcome="failed",
        category="unknown",
        signature="AssertionError",
        message="assert -1 == 5",
        file="tests/test_calc.py",
        line=5,
        exc_type="AssertionError",
        longrepr="    def test_add():\n>       assert add(2, 3) == 5\nE       assert -1 == 5",
    )
    return WorkOrder(
        category="unknown",
        title="add returns the wrong sum",
        tests=[NODE],
        affected_files=["tests/test_calc.py"],
        root_cause="calc.add subtracts",
        fix_strategy="make add add",
        priority="high",
        agent="llm",
        target=1,
        failures=[failure],
    )


def run_one(module: ModuleType, script: list, max_turns: int, min_tokens: int) -> Outcome:
    with tempfile.TemporaryDirectory() as tmp, FakeAnthropic(cache=PromptCache(min_tokens)) as api:
        where = repo(Path(tmp) / "repo")
        api.scripts["unknown"] = script
        client = anthropic.Anthropic(api_key="sk-bench-key-0000", base_url=api.url, max_retries=0)

        def run_tests(tests=None, k=None) -> str:
            return pytest_passes(where)[1]

        agent = module.LLMSpecialist(client=client, max_turns=max_turns, run_tests=run_tests)
        try:
            proposal = agent.propose(order(), where, [])
        except Exception as exc:  # noqa: BLE001 (the old loop's errors are part of its result)
            print(f"  ({module.__name__}: {type(exc).__name__}: {exc})", file=sys.stderr)
            proposal = None
        fixed = proposal is not None and not proposal.declined and pytest_passes(where)[0]
        usage = sum((after.usage_of("claude-sonnet-5-5", _U(q)) for q in api.usages), Usage())
        return Outcome(requests=len(api.requests), usage=usage, fixed=int(fixed))


class _U:
    def __init__(self, d: dict) -> None:
        self.input_tokens = d["input_tokens"]
        self.output_tokens = d["output_tokens"]
        self.cache_creation_input_tokens = d["cache_creation_input_tokens"]
        self.cache_read_input_tokens = d["cache_read_input_tokens"]


def ratio(u: Usage | None) -> float:
    if u is None:
        return 0.0
    total = u.input_tokens + u.cache_write_tokens + u.cache_read_tokens
    return u.cache_read_tokens / total if total else 0.0


def row(name: str, o: Outcome) -> str:
    cost = o.usage.cost_usd if o.usage else 0.0
    per = f"${cost / o.fixed:.4f}" if o.fixed else "-"
    return f"{name:<9} {o.requests:>4} req  ${cost:.4f}  fixed {o.fixed}  {per:>8}/fix  cache hit {ratio(o.usage):5.1%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--before", default=BEFORE, help=f"the old loop's commit (default {BEFORE})"
    )
    parser.add_argument("--min-cache-tokens", type=int, default=4096)
    args = parser.parse_args()
    before = load_before(args.before)
    totals = {"before": Outcome(), "after": Outcome()}
    print(
        f"model: claude-sonnet-5-5 prices; minimum cacheable prefix {args.min_cache_tokens} tokens"
    )
    for name, (script, turns) in trajectories().items():
        print(f"\n{name}")
        for label, module in (("before", before), ("after", after)):
            outcome = run_one(module, script, turns, args.min_cache_tokens)
            totals[label].add(outcome)
            print("  " + row(label, outcome))
    print("\nall trajectories")
    for label, outcome in totals.items():
        print("  " + row(label, outcome))
    b, a = totals["before"], totals["after"]
    if b.usage and a.usage and a.usage.cost_usd:
        print(
            f"\nafter/before: requests {a.requests / b.requests:.2f}x, "
            f"spend {a.usage.cost_usd / b.usage.cost_usd:.2f}x, fixed {b.fixed} -> {a.fixed}"
        )


if __name__ == "__main__":
    main()
