"""Provider extras against loopback servers speaking each provider's own wire format.

The test environment installs axon_port[anthropic,google,mcp]. Each test defines
an agent with a plain pydantic-ai model string ("anthropic:...", "google-gla:...")
and runs it through the worker: the SDK talks HTTP to a loopback server speaking
the Anthropic Messages API (JSON and SSE streaming) or the Gemini API, found
through the SDK's own base-URL environment variable.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agents_fixtures import chunks, define, run, worker
from pydantic_ai import models

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

from provider_loopback import AnthropicLoopback, GeminiLoopback, text, tool_use


@pytest.fixture(autouse=True)
def allow_loopback_requests() -> Iterator[None]:
    """Real model requests are allowed here only: they go to 127.0.0.1."""
    models.ALLOW_MODEL_REQUESTS = True
    saved = dict(os.environ)
    try:
        yield
    finally:
        models.ALLOW_MODEL_REQUESTS = False
        os.environ.clear()
        os.environ.update(saved)


def test_the_test_environment_has_the_provider_extras() -> None:
    for dist in ("anthropic", "google-genai", "fastmcp-slim"):
        assert md.version(dist)


def anthropic_env(server: AnthropicLoopback) -> None:
    os.environ["ANTHROPIC_API_KEY"] = "sk-ant-loopback"
    os.environ["ANTHROPIC_BASE_URL"] = server.base_url


def gemini_env(server: GeminiLoopback) -> None:
    os.environ["GOOGLE_API_KEY"] = "loopback-key"
    os.environ["GEMINI_API_KEY"] = "loopback-key"
    os.environ["GOOGLE_GEMINI_BASE_URL"] = server.base_url


def tool_result_texts(messages: list[dict[str, Any]]) -> list[Any]:
    return [
        p.get("content")
        for m in messages
        for p in m.get("parts", [])
        if p.get("part_kind") == "tool-return"
    ]


def test_anthropic_run_calls_a_python_tool_then_answers() -> None:
    async def main() -> None:
        with AnthropicLoopback(
            tool_use("customer_balance", {"include_pending": False}), text("Your balance is fine.")
        ) as server:
            anthropic_env(server)
            async with worker() as w:
                await define(
                    w,
                    "claude",
                    {
                        "model": "anthropic:claude-loopback",
                        "instructions": "Be brief.",
                        "tools": ["customer_balance"],
                    },
                )
                reply = await w.request(
                    {
                        "op": "run",
                        "id": 1,
                        "agent": "claude",
                        "prompt": "balance?",
                        "deps": {"customer_id": 1},
                    }
                )
            assert reply["type"] == "result", reply
            assert reply["output"] == "Your balance is fine."
            assert reply["usage"]["input_tokens"] == 26
            first, second = server.requests
            path, body, headers = first
            assert path == "/v1/messages"
            assert any("sk-ant-loopback" in v for v in headers.values()), headers
            assert body["model"] == "claude-loopback"
            assert "Be brief." in str(body["system"])
            assert [t["name"] for t in body["tools"]] == ["customer_balance"]
            # the tool's result went back to the model as a tool_result block
            results = [
                b for m in second[1]["messages"] for b in m["content"] if isinstance(b, dict)
            ]
            assert any(b.get("type") == "tool_result" for b in results)
            assert tool_result_texts(reply["messages"])

    run(main())


def test_anthropic_sse_stream_becomes_chunks() -> None:
    async def main() -> None:
        with AnthropicLoopback(text("one two three")) as server:
            anthropic_env(server)
            async with worker("msgpack") as w:
                await define(w, "claude", {"model": "anthropic:claude-loopback"})
                reply = await w.request(
                    {"op": "run", "id": 1, "agent": "claude", "prompt": "count", "stream": True}
                )
            assert reply["type"] == "result", reply
            assert reply["output"] == "one two three"
            assert server.requests[0][1]["stream"] is True
            got = chunks(w, 1)
            assert "".join(d["delta"] for e, d in got if e == "text_delta") == "one two three"

    run(main())


def test_gemini_run_calls_a_python_tool_then_answers() -> None:
    async def main() -> None:
        with GeminiLoopback(
            tool_use("customer_balance", {"include_pending": True}), text("All good.")
        ) as server:
            gemini_env(server)
            async with worker() as w:
                await define(
                    w,
                    "gem",
                    {"model": "google:gemini-loopback", "tools": ["customer_balance"]},
                )
                reply = await w.request(
                    {
                        "op": "run",
                        "id": 1,
                        "agent": "gem",
                        "prompt": "balance?",
                        "deps": {"customer_id": 1},
                    }
                )
            assert reply["type"] == "result", reply
            assert reply["output"] == "All good."
            assert reply["usage"]["input_tokens"] == 34
            (p1, b1, h1), (_, b2, _) = server.requests
            assert p1.startswith("/v1beta/models/gemini-loopback:generateContent")
            assert any("loopback-key" in v for v in h1.values()), h1
            decls = b1["tools"][0]["functionDeclarations"]
            assert [d["name"] for d in decls] == ["customer_balance"]
            responses = [p for c in b2["contents"] for p in c["parts"] if "functionResponse" in p]
            assert responses and responses[0]["functionResponse"]["name"] == "customer_balance"

    run(main())


def test_gemini_sse_stream_becomes_chunks() -> None:
    async def main() -> None:
        with GeminiLoopback(text("alpha beta gamma")) as server:
            gemini_env(server)
            async with worker() as w:
                await define(w, "gem", {"model": "google:gemini-loopback"})
                reply = await w.request(
                    {"op": "run", "id": 1, "agent": "gem", "prompt": "go", "stream": True}
                )
            assert reply["type"] == "result", reply
            assert reply["output"] == "alpha beta gamma"
            assert ":streamGenerateContent" in server.requests[0][0]
            got = chunks(w, 1)
            assert "".join(d["delta"] for e, d in got if e == "text_delta") == "alpha beta gamma"

    run(main())
