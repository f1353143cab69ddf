"""define_agent, run and describe through the real dispatcher."""

from __future__ import annotations

from typing import Any

import pytest
from agents_fixtures import (
    CODECS,
    define,
    error_of,
    override_model,
    part_kinds,
    run,
    service,
    tool_registry,
    worker,
)
from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from axon_port import Atom


@pytest.mark.parametrize("codec", CODECS)
def test_an_agent_defined_as_data_runs_on_the_test_model(codec: str) -> None:
    async def main() -> None:
        async with worker(codec) as w:
            await define(w, "greeter", {"instructions": "Be brief."})
            reply = await w.request({"op": "run", "id": 1, "agent": "greeter", "prompt": "hi"})
            assert reply["type"] == "result"
            assert reply["output"] == "success (no tool calls)"
            assert reply["usage"]["requests"] == 1
            assert reply["usage"]["input_tokens"] > 0
            assert part_kinds(reply["messages"]) == ["user-prompt", "text"]
            assert reply["messages"][0]["instructions"] == "Be brief."
            assert isinstance(reply["elapsed_ms"], float)

    run(main())


def test_atoms_from_elixir_work_as_keys_and_values_of_a_spec() -> None:
    async def main() -> None:
        async with worker("etf") as w:
            spec = {
                Atom("model"): Atom("test"),
                Atom("result_type"): {Atom("risk"): Atom("integer")},
                Atom("end_strategy"): Atom("early"),
            }
            reply = await w.request(
                {
                    Atom("op"): Atom("define_agent"),
                    Atom("id"): 1,
                    Atom("name"): Atom("atoms"),
                    Atom("spec"): spec,
                }
            )
            assert reply["output"] == "atoms"
            reply = await w.request({"op": "run", "id": 2, "agent": Atom("atoms"), "prompt": "x"})
            assert reply["output"] == {"risk": 0}

    run(main())


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ({"modle": "test"}, "unknown key(s) modle"),
        ({"retries": "three"}, "retries"),
        ({"retries": {"tools": 1, "outputs": 2}}, "retries"),
        ({"end_strategy": "whenever"}, "end_strategy"),
        ({"tools": ["no_such_tool"]}, "no Python tool named 'no_such_tool'"),
        ({"tools": [{"name": "t", "parameters": {"type": "object"}}]}, "remote: true"),
        ({"tools": ["secret", "secret"]}, "duplicate"),
        ({"tools": [{"name": "t", "remote": True, "defer_loading": "yes"}]}, "defer_loading"),
        ({"tools": [{"name": "t", "remote": True, "defer_loading": 1}]}, "defer_loading"),
        ({"tools": [{"name": "t", "remote": True, "sequential": [True]}]}, "sequential"),
        ({"tools": [{"name": "t", "remote": True, "timeout_ms": -5}]}, "timeout_ms"),
        ({"tools": [{"name": "t", "remote": True, "retries": -1}]}, "retries"),
        ({"output_schema": {"type": "object"}, "result_type": {"a": "string"}}, "not both"),
        ({"output_schema": {"type": "wibble"}}, "is not a valid JSON Schema"),
        ({"output_schema": {"type": "object", "properties": 3}}, "not a valid JSON Schema"),
        ({"result_type": {"a": "strnig"}}, "unknown type 'strnig'"),
        ({"model": {"provider": "carrier-pigeon"}}, "unknown provider"),
        ({"model": "no-such-provider:model"}, "cannot use model"),
        ({"model": {"provider": "script", "responses": [{"txt": "x"}]}}, "unknown keys"),
        ({"instructions": 42}, "instructions"),
        ({"model_settings": [1]}, "model_settings"),
    ],
)
def test_a_wrong_spec_is_a_bad_request_naming_the_problem(
    spec: dict[str, Any], needle: str
) -> None:
    async def main() -> None:
        async with worker() as w:
            reply = await w.request({"op": "define_agent", "id": 1, "name": "bad", "spec": spec})
            err = error_of(reply)
            assert err["kind"] == "bad_request"
            assert needle in err["message"]
            assert err["retryable"] is False
            assert "bad" not in w.registry.agents

    run(main())


def test_running_an_undefined_agent_is_unknown_agent() -> None:
    async def main() -> None:
        async with worker() as w:
            err = error_of(await w.request({"op": "run", "id": 1, "agent": "nope", "prompt": "x"}))
            assert err["kind"] == "unknown_agent"
            assert err["details"] == {"name": "nope"}
            both = {"op": "run", "id": 2, "agent": "nope", "spec": {}, "prompt": "x"}
            assert error_of(await w.request(both))["kind"] == "bad_request"

    run(main())


def test_built_agents_are_cached_per_spec_and_replaced_on_redefinition() -> None:
    async def main() -> None:
        async with worker() as w:
            svc = await service(w)
            await define(w, "a", {"instructions": "one"})
            first = svc.agent("a")
            await w.request({"op": "run", "id": 1, "agent": "a", "prompt": "x"})
            assert svc.agent("a") is first
            await define(w, "a", {"instructions": "two"})
            assert svc.agent("a") is not first
            reply = await w.request({"op": "run", "id": 2, "agent": "a", "prompt": "x"})
            assert reply["messages"][0]["instructions"] == "two"
            inline = {"op": "run", "id": 3, "spec": {"instructions": "inline"}, "prompt": "x"}
            for rid in (3, 4):
                reply = await w.request({**inline, "id": rid})
                assert reply["messages"][0]["instructions"] == "inline"
            assert len(svc.agents.inline) == 1

    run(main())


def test_result_type_shorthand_becomes_an_enforced_object_schema() -> None:
    async def main() -> None:
        async with worker() as w:
            shorthand = {
                "support_advice": "string",
                "block_card": "boolean",
                "risk": "integer",
                "tags": ("list", "string"),
                "meta": {"score": "number"},
            }
            await define(w, "support", {"result_type": shorthand})
            reply = await w.request({"op": "run", "id": 1, "agent": "support", "prompt": "x"})
            out = reply["output"]
            assert set(out) == {"support_advice", "block_card", "risk", "tags", "meta"}
            assert isinstance(out["block_card"], bool) and isinstance(out["risk"], int)
            described = (await w.request({"op": "describe", "id": 2}))["output"]
            (agent,) = [a for a in described["agents"] if a["name"] == "support"]
            schema = agent["spec"]["output_schema"]
            assert schema["required"] == ["support_advice", "block_card", "risk", "tags", "meta"]
            assert schema["additionalProperties"] is False
            assert schema["properties"]["tags"] == {"type": "array", "items": {"type": "string"}}
            assert schema["properties"]["meta"]["properties"] == {"score": {"type": "number"}}

    run(main())


def test_a_python_tool_sees_the_run_deps_through_run_context() -> None:
    calls: list[str] = []

    async def main() -> None:
        async with worker(registry=tool_registry(calls)) as w:
            spec = {
                "tools": ["customer_balance"],
                "model": {"provider": "test", "call_tools": "all"},
            }
            await define(w, "bank", spec)
            reply = await w.request(
                {
                    "op": "run",
                    "id": 1,
                    "agent": "bank",
                    "prompt": "balance?",
                    "deps": {"customer_id": 1},
                }
            )
            assert calls == ["customer_balance"]
            returns = [
                p for m in reply["messages"] for p in m["parts"] if p["part_kind"] == "tool-return"
            ]
            assert returns[0]["content"] == 123.45
            assert '"customer_balance":123.45' in reply["output"]

    run(main())


def test_the_model_cannot_call_a_registered_tool_the_agent_was_not_given() -> None:
    calls: list[str] = []

    async def main() -> None:
        async with worker(registry=tool_registry(calls)) as w:
            script = {
                "provider": "script",
                "responses": [{"tool_calls": [{"tool": "secret", "args": {}}]}, "I could not."],
            }
            await define(w, "limited", {"model": script, "tools": ["customer_balance"]})
            reply = await w.request({"op": "run", "id": 1, "agent": "limited", "prompt": "x"})
            assert reply["output"] == "I could not."
            assert calls == []
            (retry,) = [
                p
                for m in reply["messages"]
                for p in m["parts"]
                if p.get("tool_name") == "secret" and p["part_kind"] != "tool-call"
            ]
            assert retry["outcome"] == "retried"
            assert "Unknown tool name: 'secret'" in str(retry["content"])

    run(main())


def test_a_python_tool_that_raises_fails_the_run_with_tool_error() -> None:
    async def main() -> None:
        async with worker() as w:
            script = {
                "provider": "script",
                "responses": [{"tool_calls": [{"tool": "explode", "args": {"reason": "test"}}]}],
            }
            await define(w, "fragile", {"model": script, "tools": ["explode"]})
            err = error_of(
                await w.request({"op": "run", "id": 1, "agent": "fragile", "prompt": "x"})
            )
            assert err["kind"] == "tool_error"
            assert err["details"]["tool"] == "explode"
            assert err["details"]["type"] == "ValueError"
            assert err["details"]["error"] == "exploded: test"
            assert part_kinds(err["details"]["messages"])[:2] == ["user-prompt", "tool-call"]

    run(main())


def test_run_model_settings_reach_the_model_merged_over_the_spec() -> None:
    seen: list[Any] = []

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        seen.append(info.model_settings)
        return ModelResponse(parts=[TextPart("ok")])

    async def main() -> None:
        async with worker() as w:
            await define(w, "tuned", {"model_settings": {"temperature": 0.5, "max_tokens": 9}})
            with override_model(await service(w), "tuned", FunctionModel(model)):
                reply = await w.request(
                    {
                        "op": "run",
                        "id": 1,
                        "agent": "tuned",
                        "prompt": "x",
                        "model_settings": {"temperature": 0.1},
                    }
                )
            assert reply["output"] == "ok"
            assert seen[0]["temperature"] == 0.1
            assert seen[0]["max_tokens"] == 9

    run(main())


def test_usage_limits_stop_a_run_with_usage_limit_exceeded() -> None:
    async def main() -> None:
        async with worker() as w:
            await define(w, "bank", {"tools": ["customer_balance"]})
            limited = {
                "op": "run",
                "id": 1,
                "agent": "bank",
                "prompt": "x",
                "deps": {"customer_id": 2},
                "usage_limits": {"request_limit": 1},
            }
            err = error_of(await w.request(limited))
            assert err["kind"] == "usage_limit_exceeded"
            assert err["retryable"] is False
            assert "request_limit" in err["message"]
            assert part_kinds(err["details"]["messages"])[:2] == ["user-prompt", "tool-call"]
            bad = {**limited, "id": 2, "usage_limits": {"requests": 1}}
            assert error_of(await w.request(bad))["kind"] == "bad_request"

    run(main())


def test_wrongly_typed_usage_and_usage_limits_are_bad_requests_naming_the_field() -> None:
    """Before, these passed the constructor and failed inside the run as ``internal``."""

    async def main() -> None:
        async with worker() as w:
            base = {"op": "run", "spec": {"model": "test"}, "prompt": "x"}
            cases = [
                ("usage_limits", {"request_limit": "many"}, "usage_limits: request_limit"),
                ("usage", {"requests": "x"}, "run.usage: requests"),
                ("usage", {"input_tokens": 1.5}, "run.usage: input_tokens"),
                ("usage", ["requests"], "usage must be a map"),  # the typed boundary
            ]
            for i, (field, value, said) in enumerate(cases):
                err = error_of(await w.request({**base, "id": i + 1, field: value}))
                assert err["kind"] == "bad_request" and said in err["message"], err
            ok = await w.request({**base, "id": 9, "usage": {"requests": 4}})
            assert ok["usage"]["requests"] == 5
            assert (await w.request({"op": "ping", "id": 10}))["type"] == "pong"

    run(main())


def test_an_agent_registered_from_python_runs_by_name() -> None:
    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        return ModelResponse(parts=[TextPart("from python")])

    async def main() -> None:
        reg = tool_registry()
        reg.add_agent("py", Agent(FunctionModel(model)))
        async with worker(registry=reg) as w:
            reply = await w.request({"op": "run", "id": 1, "agent": "py", "prompt": "x"})
            assert reply["output"] == "from python"
            described = (await w.request({"op": "describe", "id": 2}))["output"]
            assert {"name": "py", "source": "python", "output_schema": {"type": "string"}} in (
                described["agents"]
            )

    run(main())


def test_describe_lists_agents_and_python_tools_with_json_schemas() -> None:
    async def main() -> None:
        async with worker() as w:
            remote = {
                "name": "lookup",
                "description": "Ask Elixir.",
                "remote": True,
                "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
            }
            await define(w, "d", {"tools": ["customer_balance", remote], "name": "Desk"})
            out = (await w.request({"op": "describe", "id": 1}))["output"]
            (agent,) = out["agents"]
            assert agent["name"] == "d" and agent["source"] == "spec"
            assert agent["spec"]["tools"] == ["customer_balance", {**remote, "remote": True}]
            assert agent["spec"]["name"] == "Desk"
            assert agent["output_schema"] == {"type": "string"}
            tools = {t["name"]: t for t in out["tools"]}
            assert set(tools) == {"customer_balance", "explode", "secret"}
            balance = tools["customer_balance"]
            assert balance["description"] == "Returns the customer's current account balance."
            assert balance["parameters"]["properties"] == {"include_pending": {"type": "boolean"}}
            assert balance["parameters"]["required"] == ["include_pending"]

    run(main())


def test_a_function_model_sees_exactly_the_agent_tools() -> None:
    seen: list[list[str]] = []

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        seen.append(sorted(t.name for t in info.function_tools))
        if len(messages) == 1:
            return ModelResponse(parts=[ToolCallPart("customer_balance", {"include_pending": 1})])
        return ModelResponse(parts=[TextPart("done")])

    async def main() -> None:
        async with worker() as w:
            await define(w, "b", {"tools": ["customer_balance"]})
            with override_model(await service(w), "b", FunctionModel(model)):
                reply = await w.request(
                    {"op": "run", "id": 1, "agent": "b", "prompt": "x", "deps": {"customer_id": 1}}
                )
            assert reply["output"] == "done"
            assert seen == [["customer_balance"], ["customer_balance"]]

    run(main())


@pytest.mark.parametrize("stream", [False, True])
def test_a_failing_tool_of_an_agent_registered_from_python_is_a_tool_error(stream: bool) -> None:
    from pydantic_ai.models.test import TestModel

    agent: Agent[None, str] = Agent(TestModel())

    @agent.tool_plain
    def explode(n: int) -> int:
        raise ValueError(f"cannot handle {n}")

    async def main() -> None:
        reg = tool_registry()
        reg.add_agent("py_tools", agent)
        async with worker(registry=reg) as w:
            frame = {"op": "run", "id": 1, "agent": "py_tools", "prompt": "x", "stream": stream}
            err = error_of(await w.request(frame))
            assert err["kind"] == "tool_error"
            assert err["details"]["tool"] == "explode"
            assert err["details"]["type"] == "ValueError"
            assert err["retryable"] is False

    run(main())
