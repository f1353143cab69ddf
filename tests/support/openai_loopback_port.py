"""An :class:`OpenAILoopback` for tests outside Python, driven over stdin/stdout.

``python tests/support/openai_loopback_port.py`` starts the loopback server and
speaks ``{packet, 4}`` ETF frames on stdin/stdout (open it from Elixir with
``Port.open({:spawn_executable, python}, [:binary, {:packet, 4}, args: [path]])``).
It first writes ``%{"base_url" => url}``; then every frame it reads is a command,
answered by one frame:

* ``%{"replies" => [reply, ...]}`` appends scripted replies, each
  ``%{"text" => t}``, ``%{"tool_calls" => [[name, args], ...]}`` or
  ``%{"error" => status, "message" => m}`` → ``%{"queued" => n}`` (replies not
  yet taken);
* ``%{"take" => true}`` → ``%{"requests" => [body, ...], "queued" => n}``: the
  request bodies received since the last ``take`` (JSON decoded), oldest first.

EOF on stdin (the port closed, its owner gone) stops the server and exits.

With the argument ``--anthropic`` the server is an :class:`AnthropicLoopback`
(Anthropic Messages API; ``base_url`` has no ``/v1``, as ``ANTHROPIC_BASE_URL``
wants it) driven the same way, with ``text`` and ``tool_calls`` replies.
"""

from __future__ import annotations

import struct
import sys
from typing import Any, BinaryIO

import provider_loopback
from openai_loopback import OpenAILoopback, Reply, error, text
from provider_loopback import AnthropicLoopback

from axon_port.codecs import get_codec

_CODEC = get_codec("etf")


def _read(stream: BinaryIO) -> Any | None:
    header = stream.read(4)
    if len(header) < 4:
        return None
    (size,) = struct.unpack(">I", header)
    payload = stream.read(size)
    if len(payload) < size:
        return None
    return _CODEC.decode(payload)


def _write(stream: BinaryIO, term: Any) -> None:
    payload = _CODEC.encode(term)
    stream.write(struct.pack(">I", len(payload)) + payload)
    stream.flush()


def _reply(spec: dict[str, Any]) -> Reply:
    if "error" in spec:
        return error(int(spec["error"]), str(spec.get("message", "scripted failure")))
    if "tool_calls" in spec:
        return Reply(tool_calls=[(str(name), dict(args)) for name, args in spec["tool_calls"]])
    return text(str(spec["text"]))


def _anthropic_reply(spec: dict[str, Any]) -> provider_loopback.Reply:
    if "tool_calls" in spec:
        tools = [(str(name), dict(args)) for name, args in spec["tool_calls"]]
        return provider_loopback.Reply(tools=tools)
    return provider_loopback.text(str(spec["text"]))


def _answer_anthropic(server: AnthropicLoopback, command: dict[str, Any]) -> dict[str, Any]:
    if "replies" in command:
        server.replies.extend(_anthropic_reply(spec) for spec in command["replies"])
        return {"queued": len(server.replies)}
    if command.get("take"):
        requests, server.requests = server.requests, []
        return {"requests": [body for _path, body, _headers in requests],
                "queued": len(server.replies)}  # fmt: skip
    return {"error": f"unknown command {sorted(command)}"}


def _answer(server: OpenAILoopback, command: dict[str, Any]) -> dict[str, Any]:
    with server._lock:
        if "replies" in command:
            server.replies.extend(_reply(spec) for spec in command["replies"])
            return {"queued": len(server.replies)}
        if command.get("take"):
            requests, server.requests = server.requests, []
            return {"requests": requests, "queued": len(server.replies)}
    return {"error": f"unknown command {sorted(command)}"}


def main() -> None:
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    if sys.argv[1:] == ["--anthropic"]:
        with AnthropicLoopback() as claude:
            _write(stdout, {"base_url": claude.base_url})
            while (command := _read(stdin)) is not None:
                _write(stdout, _answer_anthropic(claude, command))
        return
    with OpenAILoopback() as server:
        _write(stdout, {"base_url": server.base_url})
        while (command := _read(stdin)) is not None:
            _write(stdout, _answer(server, command))


if __name__ == "__main__":
    main()
