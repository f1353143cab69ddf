"""A loopback OpenAI-compatible Chat Completions server for tests (stdlib only).

``with OpenAILoopback() as server:`` listens on 127.0.0.1 at a random port
(``server.base_url`` ends in ``/v1``); each POST to ``/v1/chat/completions``
takes the next scripted reply from ``server.replies`` and is recorded (the
decoded JSON body) in ``server.requests``. A reply is one of:

* ``text("hi")`` — a completion with a text message;
* ``tool_call("name", {"a": 1})`` — a completion calling a tool;
* ``error(429, "slow down")`` — an error status with an OpenAI-style error body
  (``retry-after-ms: 1`` so client retries are instant);

POSTs to ``/v1/responses`` (the Responses API) are answered with a text
response (not streamed). When a chat request asks for ``"stream": true``, text
and tool calls are sent as server-sent events in small chunks, ending with
``data: [DONE]``. With no reply left the server answers 500, so a test never
hangs on a missing script entry.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = ["LOOPBACK_KEY_ENV", "OpenAILoopback", "Reply", "error", "text", "tool_call"]

#: The environment variable the loopback model map names for its API key.
LOOPBACK_KEY_ENV = "AXON_TEST_OPENAI_API_KEY"


@dataclass
class Reply:
    """One scripted answer."""

    status: int = 200
    text: str | None = None
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    message: str = ""


def text(content: str) -> Reply:
    return Reply(text=content)


def tool_call(name: str, args: dict[str, Any]) -> Reply:
    return Reply(tool_calls=[(name, args)])


def error(status: int, message: str = "scripted failure") -> Reply:
    return Reply(status=status, message=message)


_USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}


class OpenAILoopback:
    """The server; use as a context manager (it runs in a daemon thread)."""

    def __init__(self, *replies: Reply, model: str = "loopback-1") -> None:
        self.replies: deque[Reply] = deque(replies)
        self.requests: list[dict[str, Any]] = []
        self.model = model
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def __enter__(self) -> OpenAILoopback:
        self._thread.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def model_map(self, **extra: Any) -> dict[str, Any]:
        """The ``openai-compatible`` model map of a spec that talks to this server (its key
        is read from ``LOOPBACK_KEY_ENV``, which the ``loopback_requests`` fixture sets)."""
        return {
            "provider": "openai-compatible",
            "name": "loopback-1",
            "base_url": self.base_url,
            "api_key_env": LOOPBACK_KEY_ENV,
            "max_retries": 0,
            **extra,
        }

    def _next(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            self.requests.append(body)
            return self.replies.popleft() if self.replies else error(500, "script exhausted")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                responses = self.path.endswith("/responses")
                if not (responses or self.path.endswith("/chat/completions")):
                    self._json(404, {"error": {"message": "not found", "type": "not_found"}})
                    return
                reply = server._next(body)
                if reply.status != 200:
                    self._json(
                        reply.status,
                        {
                            "error": {
                                "message": reply.message,
                                "type": "scripted",
                                "code": f"status_{reply.status}",
                            }
                        },
                        {"retry-after-ms": "1"},
                    )
                elif responses:
                    self._json(200, server._response(reply))
                elif body.get("stream"):
                    self._sse(reply)
                else:
                    self._json(200, server._completion(reply))

            def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _sse(self, reply: Reply) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("connection", "close")
                self.end_headers()
                for chunk in server._chunks(reply):
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

        return Handler

    def _response(self, reply: Reply) -> dict[str, Any]:
        """A Responses API (``POST /v1/responses``) answer: text only, not streamed."""
        return {
            "id": "resp_loopback",
            "object": "response",
            "created_at": 0,
            "model": self.model,
            "status": "completed",
            "output": [
                {
                    "type": "message",
                    "id": "msg_loopback",
                    "role": "assistant",
                    "status": "completed",
                    "content": [
                        {"type": "output_text", "text": reply.text or "", "annotations": []}
                    ],
                }
            ],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": {
                "input_tokens": 9,
                "output_tokens": 3,
                "total_tokens": 12,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens_details": {"reasoning_tokens": 0},
            },
        }

    def _completion(self, reply: Reply) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text}
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": f"call_{i}",
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(args)},
                }
                for i, (name, args) in enumerate(reply.tool_calls)
            ]
        finish = "tool_calls" if reply.tool_calls else "stop"
        return {
            "id": "chatcmpl-loopback",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": _USAGE,
        }

    def _chunks(self, reply: Reply) -> list[dict[str, Any]]:
        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {
                "id": "chatcmpl-loopback",
                "object": "chat.completion.chunk",
                "created": 1_700_000_000,
                "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }

        out = [chunk({"role": "assistant", "content": ""})]
        words = (reply.text or "").split(" ")
        for i, word in enumerate(words if reply.text else []):
            out.append(chunk({"content": word if i == 0 else " " + word}))
        for i, (name, args) in enumerate(reply.tool_calls):
            arguments = json.dumps(args)
            out.append(
                chunk(
                    {
                        "tool_calls": [
                            {
                                "index": i,
                                "id": f"call_{i}",
                                "type": "function",
                                "function": {"name": name, "arguments": ""},
                            }
                        ]
                    }
                )
            )
            for j in range(0, len(arguments), 8):
                piece = arguments[j : j + 8]
                out.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}))
        out.append(chunk({}, "tool_calls" if reply.tool_calls else "stop"))
        last = out[-1]
        last["usage"] = _USAGE
        return out
