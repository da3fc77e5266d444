"""A scripted Messages API on 127.0.0.1, for runs where the real SDK talks over a real socket.

Each agent conversation is scripted per category (read from its work order in the system prompt);
the turn is the number of assistant messages the request already carries, so concurrent agents and
the SDK's retries of one turn get the right answer. A turn's entry may be a list: its answers in
order, one per request of that turn (a 529, then the reply). The planner's guess call (no tools)
gets `guess`. Every request is recorded: path, lower-cased headers, raw body.

With `cache=True` the usage of a reply is computed from the request the way the API's prompt
cache bills it (tokens estimated at 4 characters each): a prefix is written at each breakpoint
(a block's `cache_control`, and the last block when the request has a top-level one) once it
reaches `min_cache_tokens`, and read by a later request whose breakpoint, or one of the 20
blocks before it, ends the same prefix.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_ids = itertools.count()

DROP = "drop"  # close the socket without a reply
Answer = dict | tuple[int, dict] | str  # a 200 body, (status, error body), or DROP
Turn = Answer | list[Answer]  # a list: one answer per request of the turn, the last repeated


def reply(
    *calls: tuple[str, dict],
    text: str | None = None,
    usage: dict | None = None,
    stop_reason: str | None = None,
) -> dict:
    """A Messages API response body: optional text, then one tool_use block per call."""
    content: list[dict] = [{"type": "text", "text": text}] if text else []
    for name, args in calls:
        content.append(
            {"type": "tool_use", "id": f"toolu_{next(_ids)}", "name": name, "input": args}
        )
    return {
        "id": f"msg_{next(_ids)}",
        "type": "message",
        "role": "assistant",
        "model": "scripted",
        "content": content,
        "stop_reason": stop_reason or ("tool_use" if calls else "end_turn"),
        "stop_sequence": None,
        "usage": usage or {"input_tokens": 100, "output_tokens": 20},
    }


def call(name: str, **args: object) -> tuple[str, dict]:
    return name, args


def error(status: int, kind: str, message: str) -> tuple[int, dict]:
    return status, {"type": "error", "error": {"type": kind, "message": message}}


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    raw: bytes

    @property
    def body(self) -> dict:
        return json.loads(self.raw)

    @property
    def system(self) -> str:
        return "".join(block["text"] for block in self.body.get("system", []))

    @property
    def category(self) -> str | None:
        """The work order's category, or None for a call without tools (the guess)."""
        if "tools" not in self.body:
            return None
        found = re.search(r"^Category: (\S+)", self.system, re.MULTILINE)
        return found.group(1) if found else "?"

    @property
    def turn(self) -> int:
        return sum(m["role"] == "assistant" for m in self.body["messages"])

    def results(self) -> list[dict]:
        """The tool results this request sends (its last user message)."""
        content = self.body["messages"][-1]["content"]
        return content if isinstance(content, list) else []


def _blocks(body: dict) -> list[dict]:
    """The request's cacheable blocks in prefix order: tools, system, each message's content."""
    blocks = list(body.get("tools", []))
    system = body.get("system", [])
    blocks += [{"type": "text", "text": system}] if isinstance(system, str) else list(system)
    for message in body.get("messages", []):
        content = message["content"]
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
        blocks += [{"role": message["role"], **part} for part in parts]
    return blocks


@dataclass
class PromptCache:
    """The API's prompt cache, as billed: prefixes written at breakpoints, read by later requests."""

    min_tokens: int = 1024
    lookback: int = 20
    prefixes: set[str] = field(default_factory=set)

    def usage(self, body: dict, output_tokens: int) -> dict:
        blocks = _blocks(body)
        sizes, digests, digest = [], [], hashlib.sha256()
        for block in blocks:
            clean = {k: v for k, v in block.items() if k != "cache_control"}
            text = json.dumps(clean, sort_keys=True)
            digest.update(text.encode())
            digests.append(digest.copy().hexdigest())
            sizes.append(max(1, len(text) // 4))
        total = sum(sizes)
        marks = [i for i, b in enumerate(blocks) if b.get("cache_control")]
        if body.get("cache_control") and blocks:
            marks.append(len(blocks) - 1)
        upto = lambda i: sum(sizes[: i + 1])  # noqa: E731
        read = 0
        for mark in marks:
            for i in range(mark, max(-1, mark - self.lookback - 1), -1):
                if digests[i] in self.prefixes:
                    read = max(read, upto(i))
                    break
        written = 0
        for mark in sorted(set(marks)):
            if upto(mark) >= self.min_tokens and digests[mark] not in self.prefixes:
                self.prefixes.add(digests[mark])
                written = max(written, upto(mark))
        write = max(0, written - read)
        return {
            "input_tokens": total - read - write,
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": write,
            "cache_read_input_tokens": read,
        }


@dataclass
class FakeAnthropic:
    scripts: dict[str, list[Turn]] = field(default_factory=dict)
    guess: Answer = field(
        default_factory=lambda: error(400, "invalid_request_error", "no guess scripted")
    )
    requests: list[Request] = field(default_factory=list)
    url: str = ""
    cache: PromptCache | None = None  # compute each reply's usage from its request
    asked: dict[tuple[str, int], int] = field(default_factory=dict)
    usages: list[dict] = field(default_factory=list)  # with `cache`: each reply's usage, billed

    def answer(self, request: Request) -> Answer:
        self.requests.append(request)
        if request.category is None:
            return self.guess
        script = self.scripts.get(request.category, [])
        if request.turn >= len(script):
            return error(400, "invalid_request_error", f"unscripted turn {request.category}")
        answer = script[request.turn]
        if isinstance(answer, list):
            key = (request.category, request.turn)
            seen = self.asked[key] = self.asked.get(key, 0) + 1
            answer = answer[min(seen, len(answer)) - 1]
        if self.cache is not None and isinstance(answer, dict):
            out = answer.get("usage", {}).get("output_tokens", 50)
            answer = {**answer, "usage": self.cache.usage(request.body, out)}
            self.usages.append(answer["usage"])
        return answer

    def agent_requests(self, category: str) -> list[Request]:
        return [r for r in self.requests if r.category == category]

    def __enter__(self) -> FakeAnthropic:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                answer = api.answer(Request(self.path, headers, raw))
                if answer == DROP:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                status, body = answer if isinstance(answer, tuple) else (200, answer)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                """Quiet: the test asserts on what it recorded."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
