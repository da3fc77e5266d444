"""The model specialist: Claude edits a worktree through confined file tools until the tests pass.

Three parts kept apart: `Model` (one Messages API call, its errors and its cost), `Worktree`
(the environment, in `agents/tools.py`) and `LLMSpecialist.propose` (the loop). Every way the
loop stops is an exception raised where it is detected and caught once, in `propose`.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

from orchestrator.agents.tools import TOOL_SCHEMAS, ToolError, Worktree
from orchestrator.errors import ModelError
from orchestrator.models import Failure, Proposal, Usage, WorkOrder
from orchestrator.secrets import scrub
from orchestrator.specialists import DEFAULT_MODEL, GUESS_MODEL

__all__ = [
    "DEFAULT_MODEL",
    "GUESS_MODEL",
    "LLMSpecialist",
    "Model",
    "guess_category",
    "prompt_text",
]
MISSING_KEY = (
    "ANTHROPIC_API_KEY is not set: export it to let the model take categories no codemod fixes"
)
CACHE = {"type": "ephemeral"}

# USD per million tokens: input, output, cache write (5 minutes), cache read. Longest prefix wins;
# a model not listed is priced like the dearest one, so a budget is never overrun by guessing low.
# Haiku 5.5 is priced at its band for prompts up to 100k tokens.
PRICES: dict[str, tuple[float, float, float, float]] = {
    "claude-fable": (10.0, 50.0, 12.5, 1.0),
    "claude-mythos": (10.0, 50.0, 12.5, 1.0),
    "claude-opus-5-5": (4.0, 20.0, 5.0, 0.2),
    "claude-opus-5": (5.0, 25.0, 6.25, 0.5),
    "claude-opus-4": (5.0, 25.0, 6.25, 0.5),
    "claude-sonnet-5-5": (2.0, 10.0, 2.5, 0.1),
    "claude-sonnet-5": (2.0, 10.0, 2.5, 0.2),
    "claude-sonnet-4": (3.0, 15.0, 3.75, 0.3),
    "claude-haiku-5-5": (0.1, 0.5, 0.125, 0.01),
    "claude-haiku-4": (1.0, 5.0, 1.25, 0.1),
}

FINISH = {
    "name": "finish",
    "description": "Stop and hand your edits to the verifier. Explain the root cause and the fix; "
    "set declined=true if you found no honest fix (say why).",
    "input_schema": {
        "type": "object",
        "properties": {"explanation": {"type": "string"}, "declined": {"type": "boolean"}},
        "required": ["explanation"],
    },
}
RUN_TESTS = {
    "name": "run_tests",
    "description": "Run the work order's failing tests against your current edits and get pytest's "
    "output. Use it to check a fix before you finish.",
    "input_schema": {"type": "object", "properties": {}, "required": []},
}
EMPTY = {"type": "text", "text": "(no reply)"}
NUDGE = "Use the tools to investigate and fix the failures, then call finish(explanation)."


def prompt_text(name: str) -> str:
    """A specialist's prompt (mission, recognising the cause, fix strategy, what not to do),
    read from the installed package, as every install has it."""
    return (files("orchestrator.prompts") / f"{name}.md").read_text(encoding="utf-8")


def price(model: str) -> tuple[float, float, float, float]:
    match = max((p for p in PRICES if model.startswith(p)), key=len, default=None)
    return PRICES[match] if match else max(PRICES.values())


def usage_of(model: str, usage: Any) -> Usage:
    """Our `Usage` (with its cost) from one response's usage block."""
    tokens = (
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_creation_input_tokens or 0,
        usage.cache_read_input_tokens or 0,
    )
    cost = sum(t * p for t, p in zip(tokens, price(model), strict=True)) / 1_000_000
    return Usage(
        input_tokens=tokens[0],
        output_tokens=tokens[1],
        cache_write_tokens=tokens[2],
        cache_read_tokens=tokens[3],
        cost_usd=round(cost, 6),
        model=model,
    )


def one_line(text: str, limit: int = 200) -> str:
    return " ".join(str(text).split())[:limit]


def api_reason(exc: Any) -> str:
    """The API's own error message, without the SDK's "Error code: ..." wrapping."""
    error = exc.body.get("error", exc.body) if isinstance(exc.body, dict) else None
    return (
        str(error["message"]) if isinstance(error, dict) and error.get("message") else exc.message
    )


class Model:
    """One Messages API client: its failures become `ModelError`s that never carry the key."""

    def __init__(
        self, model: str, *, api_key: str | None = None, client: Any = None, max_tokens: int = 8192
    ):
        if client is None:
            api_key = api_key or os.environ.get("ANTHROPIC_API_KEY")
            if not api_key:
                raise ModelError(MISSING_KEY)
            import anthropic

            client = anthropic.Anthropic(api_key=api_key, max_retries=4)
        self.client = client
        self.name = model
        self.max_tokens = max_tokens
        self.secret = api_key or getattr(client, "api_key", None)

    def query(
        self, system: list[dict], messages: list[dict], tools: list[dict] | None = None
    ) -> tuple[Any, Usage]:
        """One call (the SDK retries 429, 529 and dropped connections); the reply and its usage."""
        import anthropic

        extra = {"tools": tools} if tools else {}
        try:
            reply = self.client.messages.create(
                model=self.name,
                max_tokens=self.max_tokens,
                system=system,
                messages=messages,
                **extra,
            )
        except (anthropic.AuthenticationError, anthropic.PermissionDeniedError) as exc:
            raise ModelError(
                f"the Anthropic API refused the key ({exc.status_code}): check ANTHROPIC_API_KEY"
            ) from None
        except anthropic.APIStatusError as exc:
            reason = one_line(self.scrub(api_reason(exc)))
            raise ModelError(f"the Anthropic API failed ({exc.status_code}): {reason}") from None
        except anthropic.APIConnectionError as exc:
            reason = one_line(self.scrub(f"{exc.message} {exc.__cause__ or ''}"))
            raise ModelError(f"could not reach the Anthropic API: {reason}") from None
        return reply, usage_of(self.name, reply.usage)

    def scrub(self, text: str) -> str:
        """`text` without the API key or any other secret value (also reversed or base64),
        whatever put it there."""
        return scrub(text.replace(self.secret, "[redacted]") if self.secret else text)


class Finished(Exception):
    """The model called finish."""

    def __init__(self, explanation: str, declined: bool) -> None:
        super().__init__(explanation)
        self.explanation = explanation
        self.declined = declined


class LimitReached(Exception):
    """A turn, token, dollar or wall-time limit stopped the loop."""


class LLMSpecialist:
    """Claude, for the categories no codemod fixes (and the ones a codemod tried and failed)."""

    def __init__(
        self,
        name: str = "llm",
        *,
        prompt: str = "unknown",
        model: str | None = None,
        api_key: str | None = None,
        client: Any = None,
        max_turns: int = 30,
        max_tokens_total: int = 3_000_000,
        budget_usd: float = 2.0,
        wall_time_s: float = 900.0,
        run_tests: Callable[[], str] | None = None,
        emit: Callable[[str], None] | None = None,
    ) -> None:
        self.name = name
        self.prompt = prompt
        self.model = model or os.environ.get("ORCHESTRATOR_MODEL") or DEFAULT_MODEL
        self.api_key = api_key
        self.client = client
        self.max_turns = max_turns
        self.max_tokens_total = max_tokens_total
        self.budget_usd = budget_usd
        self.wall_time_s = wall_time_s
        self.run_tests = run_tests
        self.emit = emit or (lambda line: None)

    def propose(self, order: WorkOrder, worktree: Path, feedback: list[str]) -> Proposal:
        model = Model(self.model, api_key=self.api_key, client=self.client)
        env = Worktree(worktree)
        text = model.scrub(self.system_prompt(order, feedback))
        system = [{"type": "text", "text": text, "cache_control": CACHE}]
        messages: list[dict] = [{"role": "user", "content": NUDGE}]
        usage, started = Usage(model=model.name), time.monotonic()
        try:
            for _ in range(self.max_turns):
                self.check_limits(usage, started)
                reply, spent = model.query(system, messages, self.tools())
                usage += spent
                content = [block.to_dict() for block in reply.content] or [EMPTY]
                messages.append({"role": "assistant", "content": content})
                messages.append({"role": "user", "content": self.act(env, model, reply.content)})
            raise LimitReached(f"the turn limit ({self.max_turns} turns)")
        except Finished as done:
            explanation = model.scrub(done.explanation)
            self.emit(f"{self.name}: finished: {one_line(explanation)}")
            return Proposal(
                explanation=explanation,
                declined=done.declined,
                usage=usage,
                files=sorted(env.changed),
            )
        except LimitReached as stop:
            self.emit(f"{self.name}: stopped by {stop}")
            edits = ", ".join(sorted(env.changed)) or "none"
            explanation = (
                f"stopped by {stop} before finishing; edits left for the verifier: {edits}"
            )
            return Proposal(explanation=explanation, declined=True, usage=usage)

    def check_limits(self, usage: Usage, started: float) -> None:
        tokens = usage.input_tokens + usage.output_tokens
        tokens += usage.cache_read_tokens + usage.cache_write_tokens
        if tokens >= self.max_tokens_total:
            raise LimitReached(f"the token limit ({tokens} of {self.max_tokens_total} tokens)")
        if usage.cost_usd >= self.budget_usd:
            spent = f"${usage.cost_usd:.4f} of ${self.budget_usd:.2f}"
            raise LimitReached(f"the budget limit ({spent})")
        if time.monotonic() - started >= self.wall_time_s:
            raise LimitReached(f"the wall-time limit ({self.wall_time_s:.0f} s)")

    def act(self, env: Worktree, model: Model, blocks: list[Any]) -> list[dict] | str:
        """Run the reply's tool calls; their results (errors marked) are the next user message."""
        results, finish = [], None
        for block in (b for b in blocks if b.type == "tool_use"):
            args = block.input if isinstance(block.input, dict) else {}
            self.emit(f"{self.name}: {block.name} {one_line(model.scrub(json.dumps(args)), 120)}")
            result = {"type": "tool_result", "tool_use_id": block.id}
            try:
                if block.name == "finish":
                    finish = Finished(str(args.get("explanation", "")), bool(args.get("declined")))
                    output = "finishing"
                elif block.name == "run_tests" and self.run_tests is not None:
                    output = self.run_tests()[-20_000:]
                else:
                    output = env.call(block.name, args)
            except ToolError as exc:
                output, result["is_error"] = str(exc), True
            results.append({**result, "content": model.scrub(output)})
        if finish is not None:
            raise finish
        return results or NUDGE

    def tools(self) -> list[dict]:
        tools = [*TOOL_SCHEMAS, *([RUN_TESTS] if self.run_tests else []), FINISH]
        return [*tools[:-1], {**tools[-1], "cache_control": CACHE}]

    def system_prompt(self, order: WorkOrder, feedback: list[str]) -> str:
        return f"{prompt_text(self.prompt).rstrip()}\n\n{render_order(order, feedback)}"


def render_order(order: WorkOrder, feedback: list[str], max_failures: int = 20) -> str:
    """The work order as the model reads it: what fails, where, what we know, what was tried."""
    out = [
        f"# Work order: {order.title}",
        f"Category: {order.category} (priority {order.priority})",
        f"Root cause, as triage read it: {order.root_cause or 'not known'}",
        f"Fix strategy: {order.fix_strategy or 'find the root cause first'}",
        f"Goal: make these {len(order.tests)} tests pass (at least {order.target}) without breaking others:",
        *[f"- {t}" for t in order.tests],
    ]
    if order.failures:
        out.append("\n## Failures")
    for failure in order.failures[:max_failures]:
        where = f" at {failure.file}:{failure.line}" if failure.file else ""
        out.append(
            f"\n### {failure.nodeid}\n{failure.outcome}{where}: {failure.exc_type or ''} {failure.message}"
        )
        if failure.polluter:
            out.append(
                f"Fails only after {failure.polluter}"
                + (f", which leaks {failure.leak}" if failure.leak else "")
            )
        if failure.longrepr:
            out.append(f"```\n{failure.longrepr[-3000:]}\n```")
    if len(order.failures) > max_failures:
        out.append(f"\n({len(order.failures) - max_failures} more failures like these left out)")
    if order.affected_files:
        out += ["\n## Files the failures point at", *[f"- {f}" for f in order.affected_files]]
    out += _environment(order)
    if order.findings:
        out.append("\n## What re-running the tests showed")
        for f in order.findings:
            culprits = f" after {', '.join(f.culprits)}" if f.culprits else ""
            leak = f"; leaks {f.leak}" if f.leak else ""
            out.append(f"- {f.victim}: {f.kind}{culprits}{leak}. {f.note}".rstrip())
    if feedback:
        out.append("\n## Earlier attempts, rejected by the verifier (do not repeat them)")
        for number, text in enumerate(feedback, 1):
            out.append(f"\n### Attempt {number}\n```\n{text[-4000:]}\n```")
    if order.notes:
        out += ["\n## Notes from the last handoff", order.notes]
    return "\n".join(out)


def _environment(order: WorkOrder) -> list[str]:
    """The packages involved and what changed: an upgrade's fix depends on the versions."""
    env = order.environment
    if env is None:
        return []
    out = ["\n## Environment (the target's own interpreter)"]
    if order.cause and order.cause != order.category:
        out.append(f"Cause named by triage: {order.cause}")
    if env.python:
        out.append(f"Python {env.python}")
    out += [f"- changed: {c.describe()}" for c in env.changes]
    out += [f"- installed: {name} {version}" for name, version in sorted(env.packages.items())]
    if order.cause and env.version(order.cause):
        out.append(
            f"The failures involve {env.describe(order.cause)}: read that package's installed "
            "source for its current API before changing the calls."
        )
    return out


def guess_category(
    failures: list[Failure],
    client: Any = None,
    model: str | None = None,
    api_key: str | None = None,
) -> dict[str, str]:
    """One cheap call naming what an `unknown` group has in common; the caller marks it a guess."""
    llm = Model(model or GUESS_MODEL, api_key=api_key, client=client, max_tokens=1024)
    listing = "\n\n".join(
        f"{f.nodeid}\n{f.exc_type or ''}: {f.message}\n{(f.longrepr or '')[-1500:]}"
        for f in failures[:10]
    )
    ask = (
        "These pytest failures were grouped together. Reply with one JSON object only: "
        '{"title": "<a short name for the problem>", "root_cause": "<one or two sentences>"}\n\n'
        + listing
    )
    reply, _ = llm.query(
        [{"type": "text", "text": "You triage failing Python test suites."}],
        [{"role": "user", "content": ask}],
    )
    text = "".join(block.text for block in reply.content if block.type == "text")
    found = re.search(r"\{.*\}", text, re.DOTALL)
    try:
        guess = json.loads(found.group(0)) if found else None
    except json.JSONDecodeError:
        guess = None
    if not isinstance(guess, dict) or not guess.get("title") or not guess.get("root_cause"):
        raise ModelError(
            f"the model's guess was not the JSON asked for: {one_line(llm.scrub(text))}"
        )
    return {key: llm.scrub(str(guess[key])) for key in ("title", "root_cause")}
