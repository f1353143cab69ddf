"""Capabilities over the real provider path: loopback servers speaking each provider's wire
format (OpenAI Chat and Responses, Anthropic Messages) record what the model was sent."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agents_fixtures import define, run, tool_registry, worker
from pydantic_ai import RunContext, models
from pydantic_ai.agent.spec import AgentSpec
from pydantic_ai.tools import ToolDefinition

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

from openai_loopback import OpenAILoopback, error, text, tool_call
from provider_loopback import AnthropicLoopback
from provider_loopback import text as anthropic_text


@pytest.fixture(autouse=True)
def allow_loopback_requests(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Real model requests are allowed here only: they go to 127.0.0.1."""
    monkeypatch.setattr(models, "ALLOW_MODEL_REQUESTS", True)
    monkeypatch.setenv("AXON_TEST_OPENAI_API_KEY", "sk-loopback")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-loopback")
    yield


def test_model_fallback_moves_on_from_a_503_to_the_next_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def main() -> None:
        with (
            OpenAILoopback(error(503, "overloaded")) as down,
            OpenAILoopback(text("from the fallback"), model="backup-2") as up,
        ):
            monkeypatch.setenv("OPENAI_BASE_URL", up.base_url)
            primary = {
                "provider": "openai-compatible",
                "name": "primary-1",
                "base_url": down.base_url,
                "api_key_env": "AXON_TEST_OPENAI_API_KEY",
                "max_retries": 0,
            }
            async with worker() as w:
                await define(
                    w,
                    "fb",
                    {
                        "model": primary,
                        "capabilities": [{"ModelFallback": ["openai-chat:backup-2"]}],
                    },
                )
                reply = await w.request({"op": "run", "id": 1, "agent": "fb", "prompt": "hi"})
                assert reply["type"] == "result", reply
                assert reply["output"] == "from the fallback"
                assert reply["messages"][-1]["model_name"] == "backup-2"

    run(main())


def test_web_search_reaches_the_responses_api_as_its_native_tool(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def main() -> None:
        with OpenAILoopback(text("searched")) as server:
            monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
            async with worker() as w:
                spec = {
                    "model": "openai-responses:gpt-4o",
                    "capabilities": [{"WebSearch": {"search_context_size": "high"}}],
                }
                await define(w, "ws", spec)
                reply = await w.request({"op": "run", "id": 1, "agent": "ws", "prompt": "news?"})
                assert reply["type"] == "result", reply
                assert reply["output"] == "searched"
            (body,) = server.requests
            assert body["tools"] == [{"type": "web_search", "search_context_size": "high"}]

    run(main())


def test_web_fetch_reaches_anthropic_as_its_native_tool(monkeypatch: pytest.MonkeyPatch) -> None:
    async def main() -> None:
        with AnthropicLoopback(anthropic_text("fetched")) as server:
            monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-loopback")
            monkeypatch.setenv("ANTHROPIC_BASE_URL", server.base_url)
            async with worker() as w:
                spec = {"model": "anthropic:claude-loopback", "capabilities": ["WebFetch"]}
                await define(w, "wf", spec)
                reply = await w.request({"op": "run", "id": 1, "agent": "wf", "prompt": "read"})
                assert reply["type"] == "result", reply
                assert reply["output"] == "fetched"
            ((_path, body, _headers),) = server.requests
            assert [t["name"] for t in body["tools"]] == ["web_fetch"]
            assert body["tools"][0]["type"].startswith("web_fetch_")

    run(main())


def test_web_fetch_on_a_model_without_it_is_a_bad_request_naming_the_local_fallback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def main() -> None:
        with OpenAILoopback(text("never")) as server:
            monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
            async with worker() as w:
                spec = {"model": "openai-responses:gpt-4o", "capabilities": ["WebFetch"]}
                await define(w, "wf", spec)
                reply = await w.request({"op": "run", "id": 1, "agent": "wf", "prompt": "read"})
                assert reply["type"] == "error", reply
                assert reply["error"]["kind"] == "bad_request"
                assert "WebFetchTool" in reply["error"]["message"]
                assert "local" in reply["error"]["message"]
                assert "traceback" not in (reply["error"]["details"] or {})
            assert server.requests == []
            assert (await w.request({"op": "ping", "id": 2}))["type"] == "pong"

    run(main())


def test_model_fallback_moves_from_openai_to_anthropic_on_a_503(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def main() -> None:
        with (
            OpenAILoopback(error(503, "overloaded")) as down,
            AnthropicLoopback(anthropic_text("from claude")) as claude,
        ):
            monkeypatch.setenv("OPENAI_BASE_URL", down.base_url)
            monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-loopback")
            monkeypatch.setenv("ANTHROPIC_BASE_URL", claude.base_url)
            async with worker() as w:
                spec = {
                    "model": "openai-chat:gpt-4o",
                    "model_settings": {"max_tokens": 64},
                    "capabilities": [{"ModelFallback": ["anthropic:claude-loopback"]}],
                }
                await define(w, "fb", spec)
                reply = await w.request({"op": "run", "id": 1, "agent": "fb", "prompt": "hi"})
                assert reply["type"] == "result", reply
                assert reply["output"] == "from claude"
                assert reply["messages"][-1]["model_name"] == "claude-loopback"
            # The OpenAI SDK retries a 503 itself before pydantic-ai falls back.
            assert len(down.requests) >= 1 and len(claude.requests) == 1

    run(main())


# pydantic-ai's documented spec example (docs "Agent Specs", "Defining a spec").
DOCUMENTED_YAML = """\
model: anthropic:claude-opus-4-6
instructions: You are a helpful research assistant.
model_settings:
  max_tokens: 8192
capabilities:
  - WebSearch
  - Thinking:
      effort: high
"""


def test_pydantic_ais_documented_spec_runs_the_same_from_yaml_and_from_a_map(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    as_map = AgentSpec.from_text(DOCUMENTED_YAML).model_dump(
        mode="json", by_alias=True, exclude_defaults=True
    )

    async def main() -> None:
        with AnthropicLoopback(anthropic_text("found it")) as server:
            monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-loopback")
            monkeypatch.setenv("ANTHROPIC_BASE_URL", server.base_url)
            async with worker() as w:
                await define(w, "doc", as_map)
                described = (await w.request({"op": "describe", "id": 1}))["output"]
                (agent,) = [a for a in described["agents"] if a["name"] == "doc"]
                assert agent["spec"] == as_map
                reply = await w.request({"op": "run", "id": 2, "agent": "doc", "prompt": "q"})
                assert reply["type"] == "result", reply
                assert reply["output"] == "found it"
            ((path, body, _headers),) = server.requests
            assert path.endswith("/v1/messages") and body["model"] == "claude-opus-4-6"
            assert body["max_tokens"] == 8192
            assert "research assistant" in str(body["system"])
            assert [t["name"] for t in body["tools"]] == ["web_search"]
            assert "thinking" in body

    run(main())


REMOTE_STRICT = {
    "name": "crm_lookup",
    "description": "Look a customer up (an Elixir tool).",
    "parameters": {
        "type": "object",
        "properties": {"id": {"type": "integer"}},
        "required": ["id"],
        "additionalProperties": False,
    },
    "remote": True,
    "strict": True,
    "sequential": True,
    "retries": 2,
}


def test_tool_options_and_metadata_reach_pydantic_ai(monkeypatch: pytest.MonkeyPatch) -> None:
    """``prepare`` hides a tool, ``strict`` (Python and remote tools) reaches the
    provider, and spec and per-run
    ``metadata`` reach the run (a tool reads them from its ``RunContext``)."""
    reg = tool_registry()
    seen: list[Any] = []

    async def hide(ctx: RunContext[Any], tool_def: ToolDefinition) -> ToolDefinition | None:
        return None

    def hidden() -> str:
        """Never offered: its prepare hides it."""
        return "no"

    def run_metadata(ctx: RunContext[Any]) -> str:
        """The run's metadata."""
        seen.append(ctx.metadata)
        return "ok"

    reg.add_tool(hidden, prepare=hide)
    reg.add_tool(run_metadata, strict=True, sequential=True, retries=3)

    async def main() -> None:
        with OpenAILoopback(tool_call("run_metadata", {}), text("done")) as server:
            monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
            async with worker(registry=reg) as w:
                spec = {
                    "model": "openai-chat:gpt-4o",
                    "tools": ["hidden", "run_metadata", REMOTE_STRICT],
                    "metadata": {"team": "a"},
                }
                await define(w, "m", spec)
                run_req = {"op": "run", "id": 1, "agent": "m", "prompt": "go",
                           "metadata": {"ticket": 7}}  # fmt: skip
                reply = await w.request(run_req)
                assert reply["type"] == "result", reply
            tools = [t["function"] for t in server.requests[0]["tools"]]
            assert [t["name"] for t in tools] == ["run_metadata", "crm_lookup"]
            assert [t.get("strict") for t in tools] == [True, True]
        assert seen == [{"team": "a", "ticket": 7}]  # the spec's, merged with the run's

    run(main())


def test_tool_search_hides_deferred_tools_until_a_search_reveals_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``defer_loading`` (a Python tool option and a remote tool key) hides a tool
    behind the ``ToolSearch`` capability: the model is first offered ``search_tools``
    and the other tools; a search that matches reveals the deferred tool, which the
    model then calls."""
    reg = tool_registry()
    calls: list[str] = []

    def refund_card(ctx: RunContext[Any]) -> str:
        """Refund the last card payment to the customer."""
        calls.append("refund_card")
        return "refunded"

    def greet() -> str:
        """Say hello."""
        return "hello"

    reg.add_tool(refund_card, defer_loading=True)
    reg.add_tool(greet)
    archive = {"name": "crm_archive", "description": "Archive the customer's CRM record.",
               "remote": True, "defer_loading": True}  # fmt: skip

    async def main() -> None:
        with OpenAILoopback(
            tool_call("search_tools", {"queries": ["refund payment"]}),
            tool_call("refund_card", {}),
            text("done"),
        ) as server:
            monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
            async with worker(registry=reg) as w:
                spec = {
                    "model": "openai-chat:gpt-4o",
                    "tools": ["refund_card", "greet", archive],
                    "capabilities": ["ToolSearch"],
                }
                await define(w, "searcher", spec)
                reply = await w.request({"op": "run", "id": 1, "agent": "searcher", "prompt": "x"})
                assert reply["type"] == "result", reply
            offered = [[t["function"]["name"] for t in r["tools"]] for r in server.requests]
        assert "search_tools" in offered[0] and "greet" in offered[0]
        assert "refund_card" not in offered[0] and "crm_archive" not in offered[0]
        assert "refund_card" in offered[1] and "crm_archive" not in offered[1]
        assert calls == ["refund_card"]

    run(main())
