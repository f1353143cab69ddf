"""Specs are pydantic-ai AgentSpec plus extensions: YAML and maps agree; capabilities work."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest
from agents_fixtures import define, error_of, outcomes, run, service, tool_registry, worker
from pydantic_ai.agent.spec import AgentSpec

SERVER = str(Path(__file__).parents[1] / "support" / "mcp_servers" / "calc_server.py")

# A YAML spec in the documented format, on the test model (pydantic-ai's own documented
# example runs against an Anthropic loopback in test_capabilities.py).
DOC_YAML = """\
model: test
name: helper
instructions: You are a helpful assistant.
model_settings:
  temperature: 0.2
retries: 2
capabilities:
  - Thinking
  - WebSearch
"""


def script(*turns: Any) -> dict[str, Any]:
    return {"provider": "script", "responses": list(turns)}


def test_a_documented_yaml_spec_defines_the_same_agent_as_the_map() -> None:
    loaded = AgentSpec.from_text(DOC_YAML)
    as_map = loaded.model_dump(mode="json", by_alias=True, exclude_defaults=True)

    async def main() -> None:
        async with worker() as w:
            await define(w, "doc", as_map)
            reply = (await w.request({"op": "describe", "id": 2}))["output"]
            (agent,) = [a for a in reply["agents"] if a["name"] == "doc"]
            assert agent["spec"] == as_map
            svc = await service(w)
            built = svc.agent("doc").agent
            assert built.name == "helper"
            assert built.model_settings == {"temperature": 0.2}

    run(main())


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        ({"capabilities": ["NoSuchCapability"]}, "spec.capabilities[0]"),
        ({"capabilities": ["Thinking", {"PrefixTools": {"nope": 1}}]}, "spec.capabilities[1]"),
        ({"tool_timeout": "soon"}, "spec.tool_timeout"),
        ({"metadata": 3}, "spec.metadata"),
        ({"deps_schema": {"type": 5}}, "spec.deps_schema"),
        ({"capabilities": [{"MCP": {}}]}, "spec.capabilities[0]"),
    ],
)
def test_an_invalid_spec_names_the_bad_key_and_registers_nothing(
    spec: dict[str, Any], path: str
) -> None:
    async def main() -> None:
        async with worker() as w:
            reply = await w.request({"op": "define_agent", "id": 1, "name": "bad", "spec": spec})
            err = error_of(reply)
            assert err["kind"] == "bad_request"
            assert err["message"].startswith(path), err["message"]
            assert "bad" not in w.registry.agents

    run(main())


def test_templates_render_against_deps_and_deps_are_checked_against_deps_schema() -> None:
    seen: list[Any] = []

    def model(messages: list[Any], info: Any) -> Any:
        from pydantic_ai.messages import ModelResponse, TextPart

        seen.append(info.instructions)
        return ModelResponse(parts=[TextPart("ok")])

    async def main() -> None:
        from agents_fixtures import override_model
        from pydantic_ai.models.function import FunctionModel

        schema = {
            "type": "object",
            "properties": {"user": {"type": "string"}},
            "required": ["user"],
        }
        async with worker() as w:
            await define(w, "t", {"instructions": "Greet {{user}}.", "deps_schema": schema})
            with override_model(await service(w), "t", FunctionModel(model)):
                reply = await w.request(
                    {"op": "run", "id": 1, "agent": "t", "prompt": "hi", "deps": {"user": "Ada"}}
                )
                assert reply["output"] == "ok"
                bad = await w.request(
                    {"op": "run", "id": 2, "agent": "t", "prompt": "hi", "deps": {"usr": 1}}
                )
            assert seen == ["Greet Ada."]
            err = error_of(bad)
            assert err["kind"] == "bad_request" and "deps_schema" in err["message"]

    run(main())


def test_tool_timeout_of_a_remote_tool_is_a_retry_then_tool_timeout() -> None:
    tool = {"name": "slow", "remote": True, "timeout_ms": 50, "parameters": {"type": "object"}}
    call = {"tool_calls": [{"tool": "slow", "args": {}}]}

    async def main() -> None:
        async with worker() as w:
            await define(w, "s", {"model": script(call, call), "tools": [tool], "retries": 1})
            reply = await w.request({"op": "run", "id": 1, "agent": "s", "prompt": "x"})
            err = error_of(reply)
            assert err["kind"] == "tool_timeout", err
            assert "Timed out after 0.05 seconds" in err["details"]["last_error"]

    run(main())


def test_metadata_per_run_model_instructions_and_usage() -> None:
    async def main() -> None:
        async with worker() as w:
            await define(w, "m", {"metadata": {"team": "a"}, "model": script("one")})
            first = await w.request({"op": "run", "id": 1, "agent": "m", "prompt": "x"})
            assert first["output"] == "one"
            frame = {
                "op": "run",
                "id": 2,
                "agent": "m",
                "prompt": "x",
                "model": script("two"),
                "instructions": "Be brief.",
                "metadata": {"run": 2},
                "usage": first["usage"],
            }
            second = await w.request(frame)
            assert second["output"] == "two", second
            assert second["usage"]["requests"] == 2
            request = second["messages"][0]
            assert request["instructions"] == "Be brief."
            assert second["messages"][-1].get("model_name") == "script"

    run(main())


@pytest.mark.parametrize(
    "capability",
    [
        "Thinking",
        {"PrefixTools": {"prefix": "bank", "capability": "Toolset"}},
        "ToolSearch",
        "Instrumentation",
    ],
)
def test_capabilities_build_from_a_spec_and_run(capability: Any) -> None:
    if isinstance(capability, dict) and "PrefixTools" in capability:
        mcp = {"MCP": {"command": sys.executable, "args": [SERVER]}}
        capability = {"PrefixTools": {"prefix": "bank", "capability": mcp}}

    async def main() -> None:
        async with worker() as w:
            await define(w, "c", {"capabilities": [capability]})
            reply = await w.request({"op": "run", "id": 1, "agent": "c", "prompt": "x"})
            assert reply["type"] == "result", reply
            if isinstance(capability, dict):
                assert ("bank_add", "success") in outcomes(reply["messages"])
            await (await service(w)).aclose()

    run(main())


def test_a_python_tool_timeout_goes_back_to_the_model() -> None:
    """``timeout`` is pydantic-ai's own: the model is told the call timed out."""
    reg = tool_registry()

    async def slow() -> str:
        """Takes far longer than its timeout."""
        await asyncio.sleep(30)
        return "late"

    reg.add_tool(slow, timeout=0.05, retries=1)
    turns = [{"tool_calls": [{"tool": "slow", "args": {}, "id": "s1"}]}, "gave up"]

    async def main() -> None:
        async with worker(registry=reg) as w:
            await define(w, "t", {"model": script(*turns), "tools": ["slow"]})
            reply = await w.request({"op": "run", "id": 1, "agent": "t", "prompt": "x"})
            assert reply["type"] == "result", reply
            assert reply["output"] == "gave up"
            told = [p["content"] for m in reply["messages"] for p in m["parts"]
                    if p["part_kind"] in ("tool-return", "retry-prompt")]  # fmt: skip
            assert told == ["Timed out after 0.05 seconds."]

    run(main())


def test_sequential_tools_never_overlap() -> None:
    """pydantic-ai's ``sequential``: calls of the tool in one turn run one at a time
    (without it, the four calls below run side by side and ``peak`` is 4)."""
    reg = tool_registry()
    active: list[int] = [0]
    peak: list[int] = [0]

    async def step(n: int) -> int:
        """One step that must not run beside another."""
        active[0] += 1
        peak[0] = max(peak[0], active[0])
        await asyncio.sleep(0.01)
        active[0] -= 1
        return n

    reg.add_tool(step, sequential=True)
    calls = [{"tool": "step", "args": {"n": i}, "id": f"s{i}"} for i in range(4)]

    async def main() -> None:
        async with worker(registry=reg) as w:
            await define(w, "seq", {"model": script({"tool_calls": calls}, "done"),
                                    "tools": ["step"]})  # fmt: skip
            reply = await w.request({"op": "run", "id": 1, "agent": "seq", "prompt": "x"})
            assert reply["type"] == "result", reply
            assert outcomes(reply["messages"]).count(("step", "success")) == 4
            assert peak[0] == 1

    run(main())
