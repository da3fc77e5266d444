"""A scripted Messages API on 127.0.0.1, for runs where the real SDK talks over a real socket.

Each agent conversation is scripted per category (read from its work order in the system prompt);
the turn is the number of assistant messages the request already carries, so concurrent agents and
the SDK's retries of one turn get the right answer. The planner's guess call (no tools) gets
`guess`. Every request is recorded: path, lower-cased headers, raw body.
"""

from __future__ import annotations

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


def reply(*calls: tuple[str, dict], text: str | None = None, usage: dict | None = None) -> dict:
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
        "stop_reason": "tool_use" if calls else "end_turn",
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


@dataclass
class FakeAnthropic:
    scripts: dict[str, list[Answer]] = field(default_factory=dict)
    guess: Answer = field(
        default_factory=lambda: error(400, "invalid_request_error", "no guess scripted")
    )
    requests: list[Request] = field(default_factory=list)
    url: str = ""

    def answer(self, request: Request) -> Answer:
        self.requests.append(request)
        if request.category is None:
            return self.guess
        script = self.scripts.get(request.category, [])
        if request.turn >= len(script):
            return error(400, "invalid_request_error", f"unscripted turn {request.category}")
        return script[request.turn]

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
