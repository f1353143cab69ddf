"""Loopback servers speaking the Anthropic Messages and Google Gemini wire formats.

Stdlib only. ``with AnthropicLoopback(reply, ...) as server:`` listens on
127.0.0.1; each ``POST /v1/messages`` takes the next scripted reply (a text or
a tool use) and answers it as a Messages response, or — when the request has
``"stream": true`` — as the Messages server-sent event stream
(``message_start``, ``content_block_start``/``_delta``/``_stop``,
``message_delta``, ``message_stop``). ``GeminiLoopback`` answers
``POST /v1beta/models/{model}:generateContent`` and
``:streamGenerateContent?alt=sse`` the same way. Requests are recorded as
``(path, decoded JSON body, headers)`` in ``server.requests``. With no reply
left the server answers 500, so a test never hangs on a missing script entry.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = ["AnthropicLoopback", "GeminiLoopback", "Reply", "text", "tool_use"]


@dataclass
class Reply:
    text: str | None = None
    tools: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def text(content: str) -> Reply:
    return Reply(text=content)


def tool_use(name: str, args: dict[str, Any]) -> Reply:
    return Reply(tools=[(name, args)])


class _Loopback:
    def __init__(self, *replies: Reply) -> None:
        self.replies: deque[Reply] = deque(replies)
        self.requests: list[tuple[str, dict[str, Any], dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])) or b"{}")
                outer.requests.append(
                    (self.path, body, {k.lower(): v for k, v in self.headers.items()})
                )
                if not outer.replies:
                    self._send(500, "application/json", b'{"error": "no scripted reply"}')
                    return
                outer.answer(self, outer.replies.popleft(), body)

            def _send(self, status: int, ctype: str, data: bytes) -> None:
                self.send_response(status)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def answer(self, h: BaseHTTPRequestHandler, reply: Reply, body: dict[str, Any]) -> None:
        raise NotImplementedError

    @staticmethod
    def send_json(h: BaseHTTPRequestHandler, obj: Any) -> None:
        data = json.dumps(obj).encode()
        h.send_response(200)
        h.send_header("content-type", "application/json")
        h.send_header("content-length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    @staticmethod
    def send_sse(h: BaseHTTPRequestHandler, events: list[tuple[str | None, Any]]) -> None:
        h.send_response(200)
        h.send_header("content-type", "text/event-stream")
        h.send_header("cache-control", "no-cache")
        h.end_headers()
        for event, data in events:
            head = f"event: {event}\n" if event else ""
            h.wfile.write(f"{head}data: {json.dumps(data)}\n\n".encode())
            h.wfile.flush()
        h.close_connection = True

    def __enter__(self) -> _Loopback:
        self._thread.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()


class AnthropicLoopback(_Loopback):
    """Anthropic Messages API (``/v1/messages``), JSON or SSE."""

    def __enter__(self) -> AnthropicLoopback:
        super().__enter__()
        return self

    def answer(self, h: BaseHTTPRequestHandler, reply: Reply, body: dict[str, Any]) -> None:
        content: list[dict[str, Any]] = []
        if reply.text is not None:
            content.append({"type": "text", "text": reply.text})
        for i, (name, args) in enumerate(reply.tools):
            content.append({"type": "tool_use", "id": f"toolu_{i}", "name": name, "input": args})
        stop = "tool_use" if reply.tools else "end_turn"
        usage = {"input_tokens": 13, "output_tokens": 5}
        msg = {
            "id": "msg_loopback",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": usage,
        }
        if not body.get("stream"):
            self.send_json(h, msg)
            return
        events: list[tuple[str | None, Any]] = [
            (
                "message_start",
                {
                    "type": "message_start",
                    "message": {**msg, "content": [], "stop_reason": None, "usage": usage},
                },
            )
        ]
        for i, block in enumerate(content):
            if block["type"] == "text":
                start: dict[str, Any] = {"type": "text", "text": ""}
                words = block["text"].split(" ")
                deltas = [
                    {"type": "text_delta", "text": w + ("" if j == len(words) - 1 else " ")}
                    for j, w in enumerate(words)
                ]
            else:
                start = {**block, "input": {}}
                deltas = [{"type": "input_json_delta", "partial_json": json.dumps(block["input"])}]
            events.append(
                (
                    "content_block_start",
                    {"type": "content_block_start", "index": i, "content_block": start},
                )
            )
            events += [
                ("content_block_delta", {"type": "content_block_delta", "index": i, "delta": d})
                for d in deltas
            ]
            events.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
        events.append(
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": 5},
                },
            )
        )
        events.append(("message_stop", {"type": "message_stop"}))
        self.send_sse(h, events)


class GeminiLoopback(_Loopback):
    """Google Gemini API (``/v1beta/models/{model}:generateContent``), JSON or SSE."""

    def __enter__(self) -> GeminiLoopback:
        super().__enter__()
        return self

    def answer(self, h: BaseHTTPRequestHandler, reply: Reply, body: dict[str, Any]) -> None:
        usage = {"promptTokenCount": 17, "candidatesTokenCount": 4, "totalTokenCount": 21}
        parts: list[dict[str, Any]] = []
        if reply.text is not None:
            parts.append({"text": reply.text})
        for name, args in reply.tools:
            parts.append({"functionCall": {"name": name, "args": args}})

        def response(ps: list[dict[str, Any]], finish: str | None) -> dict[str, Any]:
            cand: dict[str, Any] = {"content": {"role": "model", "parts": ps}, "index": 0}
            if finish:
                cand["finishReason"] = finish
            return {"candidates": [cand], "usageMetadata": usage, "modelVersion": "loopback"}

        if ":streamGenerateContent" not in h.path:
            self.send_json(h, response(parts, "STOP"))
            return
        pieces: list[list[dict[str, Any]]] = []
        if reply.text is not None:
            words = reply.text.split(" ")
            pieces += [
                [{"text": w + ("" if j == len(words) - 1 else " ")}] for j, w in enumerate(words)
            ]
        pieces += [[p] for p in parts if "functionCall" in p]
        events: list[tuple[str | None, Any]] = [
            (None, response(p, "STOP" if i == len(pieces) - 1 else None))
            for i, p in enumerate(pieces)
        ]
        self.send_sse(h, events)
