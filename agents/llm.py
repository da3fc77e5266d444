"""The model specialist: Claude edits a worktree through confined tools until the tests pass.

Three parts kept apart: `Model` (one Messages API call, its errors and its cost), `Worktree`
(the environment, in `agents/tools.py`) and `LLMSpecialist.propose` (the loop). Every way the
loop stops is an exception raised where it is detected and caught once, in `propose`.

One `LLMSpecialist` serves one work order for all of its attempts: its budget covers them all and
a retry continues the same conversation (the verifier's verdict and the rejected diff are the
next user turn), so the cached prefix survives. The cache follows the conversation: the tools and
the common rules carry explicit breakpoints (shared by every lane), and the request's top-level
`cache_control` puts a rolling breakpoint on its last block.
"""

from __future__ import annotations

import ast
import json
import os
import re
import time
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

from orchestrator.agents.tools import TOOL_SCHEMAS, ToolError, Worktree, check_args, schema
from orchestrator.errors import ModelBusy, ModelError
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
    "system_blocks",
]
MISSING_KEY = (
    "ANTHROPIC_API_KEY is not set: export it to let the model take categories no codemod fixes"
)
CACHE = {"type": "ephemeral"}
STATIC_PROMPTS = ("common", "tools", "anti_cheat")  # every lane's prompt starts with these
OUTPUT_TOKENS = 8192  # a reply's room; doubled (up to the cap) when a tool call is cut off
OUTPUT_TOKENS_CAP = 20_000  # the SDK wants streaming past ~21k tokens without a timeout
MAX_NUDGES = 3  # replies without a tool call before the attempt ends
TOOL_OUTPUT_CHARS = 20_000

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

FINISH = schema(
    "finish",
    "Stop and hand your edits to the verifier. Explain the root cause and the fix; "
    "set declined=true if you found no honest fix (say why).",
    ["explanation"],
    explanation={"type": "string"},
    declined={"type": "boolean"},
)
RUN_TESTS = schema(
    "run_tests",
    "Run tests against your current edits and get pytest's own report of each failure "
    "(paths relative to the repository). Default: the work order's failing tests.",
    [],
    tests={
        "type": "array",
        "items": {"type": "string"},
        "description": "node ids or paths, e.g. 'tests/test_app.py::test_x' or 'tests/api'",
    },
    k={"type": "string", "description": "a pytest -k expression to select tests by name"},
)
RUN = schema(
    "run",
    "Run a shell command in the repository, inside a sandbox (no network, no secrets, only the "
    "repository writable): the project's python and scripts, e.g. `python -c 'import app'`. "
    "Output is capped; the command is killed at its timeout.",
    ["command"],
    command={"type": "string"},
    timeout_s={"type": "integer", "minimum": 1, "maximum": 300, "description": "default 60"},
)
EMPTY = {"type": "text", "text": "(no reply)"}
KICKOFF = "Investigate and fix the failures in the work order with the tools, then call finish."
NUDGE = "Use the tools to investigate and fix the failures, then call finish(explanation)."


def prompt_text(name: str) -> str:
    """A prompt part, read from the installed package, as every install has it."""
    return (files("orchestrator.prompts") / f"{name}.md").read_text(encoding="utf-8")


def has_prompt(name: str) -> bool:
    return (files("orchestrator.prompts") / f"{name}.md").is_file()


def static_prompt() -> str:
    """The common rules, the tools and the anti-cheat rules: the same for every lane."""
    return "\n\n".join(prompt_text(name).rstrip() for name in STATIC_PROMPTS)


def category_notes(*names: str) -> str:
    """The first category prompt that exists among `names` (the category's, its codemod's)."""
    name = next((n for n in names if n and has_prompt(n)), "unknown")
    return prompt_text(name).rstrip()


def system_blocks(order: WorkOrder, worktree: Path | None, *notes: str) -> list[dict]:
    """The static part (cached, shared by every lane), then the category's notes and the order."""
    return [
        {"type": "text", "text": static_prompt(), "cache_control": CACHE},
        {
            "type": "text",
            "text": f"{category_notes(*notes)}\n\n{render_order(order, worktree)}",
        },
    ]


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
        requests=1,
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
        self,
        model: str,
        *,
        api_key: str | None = None,
        client: Any = None,
        max_tokens: int = OUTPUT_TOKENS,
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
        self,
        system: list[dict],
        messages: list[dict],
        tools: list[dict] | None = None,
        *,
        max_tokens: int | None = None,
        rolling_cache: bool = True,
    ) -> tuple[Any, Usage]:
        """One call (the SDK retries 429, 529 and dropped connections); the reply and its usage.

        `rolling_cache` sets the request's top-level `cache_control`: the API puts a breakpoint
        on the last cacheable block, so each turn reads what the turn before wrote."""
        import anthropic

        extra: dict[str, Any] = {"tools": tools} if tools else {}
        if rolling_cache:
            extra["cache_control"] = CACHE
        try:
            reply = self.client.messages.create(
                model=self.name,
                max_tokens=max_tokens or self.max_tokens,
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
            error = ModelBusy if exc.status_code == 529 else ModelError
            raise error(f"the Anthropic API failed ({exc.status_code}): {reason}") from None
        except anthropic.APIConnectionError as exc:
            reason = one_line(self.scrub(f"{exc.message} {exc.__cause__ or ''}"))
            raise ModelError(f"could not reach the Anthropic API: {reason}") from None
        return reply, usage_of(self.name, reply.usage)

    def scrub(self, text: str) -> str:
        """`text` without the API key (or any other secret of ours), whatever put it there."""
        text = text.replace(self.secret, "[redacted]") if self.secret else text
        return scrub(text)


class Finished(Exception):
    """The model called finish."""

    def __init__(self, explanation: str, declined: bool) -> None:
        super().__init__(explanation)
        self.explanation = explanation
        self.declined = declined


class LimitReached(Exception):
    """A turn, token, dollar or wall-time limit (or the model's silence) stopped the loop."""


class Refused(Exception):
    """The model refused (stop_reason `refusal`): the attempt ends."""


class LLMSpecialist:
    """Claude, for the categories no codemod fixes (and the ones a codemod tried and failed).

    Callables from the lane: `run_tests(tests, k)` and `run_command(command, timeout_s)` run in
    the sandbox; `on_usage(usage)` hears every call's spend as it happens (then the `Proposal`
    carries none: each call is counted once, also when the lane errors); `session_left()` is
    the session budget's dollars left (None: no session budget); `on_transcript(attempt, data)`
    keeps each attempt's conversation; `emit(line)` reports each step.
    """

    def __init__(
        self,
        name: str = "llm",
        *,
        prompt: str = "unknown",
        codemod: str | None = None,
        model: str | None = None,
        escalate_model: str | None = None,
        fallback_model: str | None = None,
        api_key: str | None = None,
        client: Any = None,
        max_turns: int = 30,
        max_tokens_total: int = 3_000_000,
        budget_usd: float = 2.0,
        wall_time_s: float = 900.0,
        site_dirs: list[str] | tuple[str, ...] = (),
        run_tests: Callable[[list[str] | None, str | None], str] | None = None,
        run_command: Callable[[str, float], str] | None = None,
        emit: Callable[[str], None] | None = None,
        on_usage: Callable[[Usage], None] | None = None,
        session_left: Callable[[], float | None] | None = None,
        on_transcript: Callable[[int, dict], None] | None = None,
    ) -> None:
        self.name = name
        self.prompt = prompt
        self.codemod = codemod
        self.model = model or os.environ.get("ORCHESTRATOR_MODEL") or DEFAULT_MODEL
        self.escalate_model = escalate_model
        self.fallback_model = fallback_model
        self.api_key = api_key
        self.client = client
        self.max_turns = max_turns
        self.max_tokens_total = max_tokens_total
        self.budget_usd = budget_usd
        self.wall_time_s = wall_time_s
        self.site_dirs = site_dirs
        self.run_tests = run_tests
        self.run_command = run_command
        self.emit = emit or (lambda line: None)
        self.on_usage = on_usage
        self.session_left = session_left
        self.on_transcript = on_transcript
        # across attempts: the conversation, the spend, the finish call awaiting its verdict
        self.messages: list[dict] = []
        self.usage = Usage()
        self.attempt = 0
        self.escalated = False
        self.pending: list[dict] = []  # the last turn's tool results, finish's awaiting a verdict
        self.feedback_seen = 0
        self.last_cost = 0.0
        self.spent = Usage()  # this attempt's
        self.resuming = False

    def escalate(self) -> None:
        """The lane's last attempt: a stronger model, if one is configured."""
        self.escalated = bool(self.escalate_model)

    def propose(self, order: WorkOrder, worktree: Path, feedback: list[str]) -> Proposal:
        resuming, self.resuming = self.resuming, False  # after an overloaded API: same turn
        self.attempt += 0 if resuming else 1
        name = self.escalate_model if self.escalated and self.escalate_model else self.model
        model = Model(name, api_key=self.api_key, client=self.client)
        env = Worktree(worktree, site_dirs=self.site_dirs)
        system = [
            {**b, "text": model.scrub(b["text"])}
            for b in system_blocks(order, env.root, self.prompt, self.codemod or "")
        ]
        if not resuming:
            self._open_turn(model, feedback)
        self.spent, started, stopped = Usage(model=model.name), time.monotonic(), "error"
        if name != self.model:
            self.emit(f"attempt {self.attempt} escalates to {name}")
        try:
            nudges = 0
            for _ in range(self.max_turns):
                reply, model = self._reply(model, system, started)
                content = [block.to_dict() for block in reply.content] or [EMPTY]
                if reply.stop_reason == "pause_turn":  # send it back as is: the model goes on
                    self.messages.append({"role": "assistant", "content": content})
                    continue
                if reply.stop_reason == "model_context_window_exceeded":
                    raise LimitReached("the context window")
                calls = [b for b in reply.content if b.type == "tool_use"]
                if reply.stop_reason == "max_tokens" and calls:
                    self._cut_off(content, calls)
                    continue
                self._say(model, reply.content)
                self.messages.append({"role": "assistant", "content": content})
                if not calls:
                    nudges += 1
                    if nudges >= MAX_NUDGES:
                        raise LimitReached(f"{nudges} replies without a tool call")
                    self.messages.append({"role": "user", "content": NUDGE})
                    continue
                nudges = 0
                self.act(env, model, calls, order)
            raise LimitReached(f"the turn limit ({self.max_turns} turns)")
        except Finished as done:
            explanation = model.scrub(done.explanation)
            stopped = "declined" if done.declined else "finished"
            self.emit(f"finished: {one_line(explanation)}")
            return self._proposal(explanation, done.declined, env)
        except (LimitReached, Refused) as stop:
            stopped = str(stop)
            return self._unfinished(env, f"stopped by {stop}")
        except ModelBusy:
            stopped, self.resuming = "the API was overloaded", True
            raise
        except ModelError as exc:
            stopped = str(exc)
            if not env.changed:
                raise
            return self._unfinished(env, str(exc))
        finally:
            self._save(order, model.name, system, stopped)

    # --- the conversation ----------------------------------------------------------------------

    def _open_turn(self, model: Model, feedback: list[str]) -> None:
        """The first user turn, or the verdict on the last attempt as the next one."""
        new = [model.scrub(f) for f in feedback[self.feedback_seen :]]
        self.feedback_seen = len(feedback)
        if not self.messages:
            earlier = "".join(f"\n\n## Earlier attempt, rejected\n{f[-6000:]}" for f in new)
            self.messages.append({"role": "user", "content": KICKOFF + earlier})
            return
        verdict = "\n\n".join(new) or "The attempt ended without a verdict. Go on with the task."
        verdict += "\n\nThe worktree is back where it started: make your fix again, better."
        pending, self.pending = self.pending, []
        if pending:  # the finish call (and its siblings) get their results now
            results = [{**r, "content": verdict} if r.get("finish") else r for r in pending]
            content = [{k: v for k, v in r.items() if k != "finish"} for r in results]
            self.messages.append({"role": "user", "content": content})
        elif self.messages[-1]["role"] == "user":
            last = self.messages[-1]
            blocks = (
                last["content"]
                if isinstance(last["content"], list)
                else [{"type": "text", "text": last["content"]}]
            )
            last["content"] = [*blocks, {"type": "text", "text": verdict}]
        else:
            self.messages.append({"role": "user", "content": verdict})

    def _reply(self, model: Model, system: list[dict], started: float) -> tuple[Any, Model]:
        """The next reply, with room for a whole tool call and a fallback after a refusal."""
        room = OUTPUT_TOKENS
        while True:
            self.check_limits(started)
            reply, cost = model.query(system, self.messages, self.tools(), max_tokens=room)
            self._charge(cost)
            if reply.stop_reason == "refusal":
                if self.fallback_model and model.name != self.fallback_model:
                    self.emit(f"{model.name} refused; asking {self.fallback_model}")
                    model = Model(self.fallback_model, api_key=self.api_key, client=self.client)
                    continue
                raise Refused(f"a refusal from {model.name}")
            cut = reply.stop_reason == "max_tokens" and any(
                b.type == "tool_use" for b in reply.content
            )
            if not cut or room >= OUTPUT_TOKENS_CAP:
                return reply, model
            room = min(room * 2, OUTPUT_TOKENS_CAP)
            self.emit(f"a tool call was cut off at max_tokens; asking again with room for {room}")

    def _cut_off(self, content: list[dict], calls: list[Any]) -> None:
        """A tool call cut by max_tokens is never run: the model hears that it was not."""
        kept = [b for b in content if b.get("type") != "tool_use"] or [EMPTY]
        self.messages.append({"role": "assistant", "content": kept})
        names = ", ".join(c.name for c in calls)
        self.emit(f"a tool call ({names}) was cut off at max_tokens and not run")
        self.messages.append(
            {
                "role": "user",
                "content": f"Your last reply was cut off at the output limit ({OUTPUT_TOKENS_CAP} "
                f"tokens) in a call of {names}; nothing was run. Make smaller edits: replace "
                "one snippet at a time instead of writing whole files.",
            }
        )

    def act(self, env: Worktree, model: Model, calls: list[Any], order: WorkOrder) -> None:
        """Run the reply's tool calls in order; their results are the next user message."""
        results: list[dict] = []
        finish: Finished | None = None
        for block in calls:
            args = block.input if isinstance(block.input, dict) else {}
            self.emit(f"{block.name} {one_line(model.scrub(json.dumps(args)), 120)}")
            result: dict[str, Any] = {"type": "tool_result", "tool_use_id": block.id}
            try:
                output = self._tool(env, block.name, args, order)
                if block.name == "finish":
                    finish = Finished(str(args.get("explanation", "")), bool(args.get("declined")))
                    result["finish"] = True
            except ToolError as exc:
                output, result["is_error"] = str(exc), True
            results.append({**result, "content": model.scrub(output)})
        if finish is not None:
            self.pending = results  # sent with the verifier's verdict if there is a next attempt
            raise finish
        self.messages.append({"role": "user", "content": results})

    def _tool(self, env: Worktree, name: str, args: dict, order: WorkOrder) -> str:
        if name == "finish":
            check_args(FINISH, args)
            return "handed to the verifier"
        if name == "run_tests" and self.run_tests is not None:
            check_args(RUN_TESTS, args)
            tests = args.get("tests") or None
            if tests is not None and not all(isinstance(t, str) for t in tests):
                raise ToolError("tests must be a list of node ids or paths")
            k = args.get("k") or None
            output = self.run_tests(tests if tests or k else list(order.tests), k)
            return output[-TOOL_OUTPUT_CHARS:]
        if name == "run" and self.run_command is not None:
            check_args(RUN, args)
            try:
                timeout = float(args.get("timeout_s") or 60)
            except (TypeError, ValueError):
                raise ToolError("timeout_s must be a number of seconds") from None
            env.changed.add("(commands)")  # a command may have written files
            return self.run_command(str(args["command"]), max(1.0, min(timeout, 300.0)))
        return env.call(name, args)

    def _say(self, model: Model, blocks: list[Any]) -> None:
        for block in blocks:
            if block.type == "text" and block.text.strip():
                self.emit(f"says: {one_line(model.scrub(block.text), 160)}")

    # --- money and limits ----------------------------------------------------------------------

    def _charge(self, cost: Usage) -> None:
        """Every call is counted: in this agent's budget, the attempt's sum and the lane's."""
        self.usage += cost
        self.spent += cost
        self.last_cost = cost.cost_usd
        if self.on_usage is not None:
            self.on_usage(cost)

    def check_limits(self, started: float) -> None:
        """Before each call: stop when the next call, priced like the last, would pass a limit."""
        usage = self.usage
        tokens = usage.input_tokens + usage.output_tokens
        tokens += usage.cache_read_tokens + usage.cache_write_tokens
        if tokens >= self.max_tokens_total:
            raise LimitReached(f"the token limit ({tokens} of {self.max_tokens_total} tokens)")
        if usage.cost_usd + self.last_cost > self.budget_usd:
            spent = f"${usage.cost_usd:.4f} of ${self.budget_usd:.2f}"
            raise LimitReached(f"the budget limit ({spent} spent over all attempts)")
        left = self.session_left() if self.session_left else None
        if left is not None and left - self.last_cost < 0:
            raise LimitReached(f"the session budget (${max(left, 0):.4f} left)")
        if time.monotonic() - started >= self.wall_time_s:
            raise LimitReached(f"the wall-time limit ({self.wall_time_s:.0f} s)")

    def _proposal(self, explanation: str, declined: bool, env: Worktree) -> Proposal:
        """The proposal names the files the model changed through its tools: only they are
        committed."""
        usage = None if self.on_usage is not None else self.spent
        return Proposal(
            explanation=explanation, declined=declined, usage=usage, files=sorted(env.changed)
        )

    def _unfinished(self, env: Worktree, why: str) -> Proposal:
        """No lost work: edits left when the loop stops go to the verifier."""
        self.emit(why)
        edits = sorted(env.changed)
        if not edits:
            return self._proposal(f"{why} before finishing, with no edits", True, env)
        listed = ", ".join(edits)
        return self._proposal(
            f"{why} before finishing; its edits go to the verifier: {listed}", False, env
        )

    def _save(self, order: WorkOrder, model: str, system: list[dict], stopped: str) -> None:
        if self.on_transcript is None:
            return
        self.on_transcript(
            self.attempt,
            {
                "category": order.key,
                "attempt": self.attempt,
                "model": model,
                "stopped": stopped,
                "usage": self.spent.model_dump(),
                "tools": [t["name"] for t in self.tools()],
                "system": system,
                "messages": self.messages,
            },
        )

    def tools(self) -> list[dict]:
        offered = [
            *TOOL_SCHEMAS,
            *([RUN_TESTS] if self.run_tests else []),
            *([RUN] if self.run_command else []),
            FINISH,
        ]
        return [*offered[:-1], {**offered[-1], "cache_control": CACHE}]


def render_order(order: WorkOrder, root: Path | None = None, max_failures: int = 20) -> str:
    """The work order as the model reads it: what fails, where, the code under test, what we know."""
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
    if root is not None:
        out += _code_under_test(order, root)
    out += _environment(order)
    if order.findings:
        out.append("\n## What re-running the tests showed")
        for f in order.findings:
            culprits = f" after {', '.join(f.culprits)}" if f.culprits else ""
            leak = f"; leaks {f.leak}" if f.leak else ""
            out.append(f"- {f.victim}: {f.kind}{culprits}{leak}. {f.note}".rstrip())
    if order.notes:
        out += ["\n## Notes from the last handoff", order.notes]
    return "\n".join(out)


_TRACE_PATH = re.compile(r'(?:^|File ")([\w./-]+\.py)(?::\d+|", line \d+)', re.MULTILINE)


def code_under_test(order: WorkOrder, root: Path) -> list[str]:
    """The repository's non-test modules the failing tests import or fail inside."""
    root = root.resolve()
    found: list[str] = []
    tests = {f.file for f in order.failures if f.file}
    tests |= {t.split("::")[0] for t in order.tests}
    for failure in order.failures:
        for path in _TRACE_PATH.findall(failure.longrepr or ""):
            found.append(_inside(root, path))
    for test in sorted(t for t in tests if t):
        found += _imported(root, test)
    return [f for f in dict.fromkeys(found) if f and f not in tests and not _is_test_file(f)]


def _code_under_test(
    order: WorkOrder, root: Path, shown: int = 3, chars: int = 12_000
) -> list[str]:
    paths = code_under_test(order, root)
    if not paths:
        return []
    out = ["\n## Code under test (imported by the failing tests or in their tracebacks)"]
    for path in paths[:shown]:
        text = (root / path).read_text(encoding="utf-8", errors="replace")
        lines = text.splitlines()[:200]
        body = "\n".join(f"{n:>6}\t{line}" for n, line in enumerate(lines, 1))[:chars]
        more = " (first 200 lines)" if len(text.splitlines()) > 200 else ""
        out.append(f"\n### {path}{more}\n```\n{body}\n```")
    out += [f"- also: {p}" for p in paths[shown:12]]
    return out


def _inside(root: Path, path: str) -> str:
    candidate = Path(path)
    if candidate.is_absolute():
        try:
            candidate = candidate.resolve().relative_to(root)
        except ValueError:
            return ""
    full = (root / candidate).resolve()
    return candidate.as_posix() if full.is_relative_to(root) and full.is_file() else ""


def _imported(root: Path, test: str) -> list[str]:
    try:
        tree = ast.parse((root / test).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return []
    modules = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules.append(node.module)
            modules += [f"{node.module}.{a.name}" for a in node.names]
    out = []
    for module in modules:
        rel = module.replace(".", "/")
        for candidate in (
            f"{rel}.py",
            f"src/{rel}.py",
            f"{rel}/__init__.py",
            f"src/{rel}/__init__.py",
        ):
            path = root / candidate
            if path.is_file() and (path.name != "__init__.py" or path.stat().st_size > 0):
                out.append(candidate)
    return out


def _is_test_file(path: str) -> bool:
    name = Path(path).name
    return name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py"


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
            "source (package_files, read_package_file) for its current API before changing "
            "the calls."
        )
    return out


def guess_category(
    failures: list[Failure],
    client: Any = None,
    model: str | None = None,
    api_key: str | None = None,
    on_usage: Callable[[Usage], None] | None = None,
) -> dict[str, str]:
    """One cheap call naming what an `unknown` group has in common; the caller marks it a guess.
    Its spend goes to `on_usage`, also when the reply is not the JSON asked for."""
    llm = Model(model or GUESS_MODEL, api_key=api_key, client=client, max_tokens=1024)
    listing = "\n\n".join(
        f"{f.nodeid}\n{f.exc_type or ''}: {f.message}\n{(f.longrepr or '')[-1500:]}"
        for f in failures[:10]
    )
    ask = (
        "These pytest failures were grouped together. Reply with one JSON object only: "
        '{"title": "<a short name for the problem>", "root_cause": "<one or two sentences>"}\n\n'
        + llm.scrub(listing)
    )
    reply, usage = llm.query(
        [{"type": "text", "text": "You triage failing Python test suites."}],
        [{"role": "user", "content": ask}],
        rolling_cache=False,
    )
    if on_usage is not None:
        on_usage(usage)
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
