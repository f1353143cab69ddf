"""The result_type shorthand's optional/nullable/enum/options forms, and integer outputs."""

from __future__ import annotations

from typing import Any

import pytest
from agents_fixtures import error_of, run, worker

from axon_port import Atom
from axon_port.agents._schema import shorthand_to_schema

A = Atom

EXPECTED = {
    "type": "object",
    "properties": {
        "risk": {"type": "integer", "minimum": 0, "maximum": 10},
        "note": {"type": "string"},
        "tier": {"enum": ["gold", "silver"], "type": "string"},
        "reason": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "summary": {"type": "string", "description": "One sentence."},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"sku": {"type": "string"}, "qty": {"type": "integer"}},
                "required": ["sku", "qty"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["risk", "tier", "reason", "summary", "items"],
    "additionalProperties": False,
}

# As Elixir sends it over ETF: tuples and keyword lists with atoms.
ETF_SHORTHAND = {
    A("risk"): (A("integer"), [(A("min"), 0), (A("max"), 10)]),
    A("note"): (A("optional"), A("string")),
    A("tier"): (A("enum"), ["gold", "silver"]),
    A("reason"): (A("nullable"), A("string")),
    A("summary"): (A("string"), [(A("description"), "One sentence.")]),
    A("items"): (A("list"), {A("sku"): A("string"), A("qty"): A("integer")}),
}
# As a msgpack client sends it: two-item lists and option maps.
MSGPACK_SHORTHAND = {
    "risk": ["integer", {"min": 0, "max": 10}],
    "note": ["optional", "string"],
    "tier": ["enum", ["gold", "silver"]],
    "reason": ["nullable", "string"],
    "summary": ["string", {"description": "One sentence."}],
    "items": [{"sku": "string", "qty": "integer"}],
}


@pytest.mark.parametrize("shorthand", [ETF_SHORTHAND, MSGPACK_SHORTHAND], ids=["etf", "msgpack"])
def test_the_shorthand_gains_optional_nullable_enum_options_and_nested_lists(
    shorthand: dict[str, Any],
) -> None:
    assert shorthand_to_schema(shorthand) == EXPECTED


@pytest.mark.parametrize(
    ("bad", "said"),
    [
        ({"x": ("string", [("min", 1)])}, "does not apply"),
        ({"x": ("enum", [])}, "non-empty list"),
        ({"x": ("integer", [("colour", 1)])}, "cannot read"),
    ],
)
def test_bad_shorthand_is_bad_request(bad: dict[str, Any], said: str) -> None:
    from axon_port.errors import BadRequest

    with pytest.raises(BadRequest, match=said):
        shorthand_to_schema(bad)


def script(*outputs: Any) -> dict[str, Any]:
    return {"provider": "script", "responses": [{"output": o} for o in outputs]}


@pytest.mark.parametrize(("codec", "shorthand"), [("etf", ETF_SHORTHAND),
                                                  ("msgpack", MSGPACK_SHORTHAND)])  # fmt: skip
def test_an_integral_float_for_an_integer_field_reaches_the_client_as_an_integer(
    codec: str, shorthand: dict[str, Any]
) -> None:
    good = {"risk": 8.0, "tier": "gold", "reason": None, "summary": "Fine.",
            "items": [{"sku": "a", "qty": 2.0}]}  # fmt: skip

    async def main() -> None:
        async with worker(codec) as w:
            # 8.5 is no integer: retried; then 8.0 is accepted as 8.
            spec = {"model": script({**good, "risk": 8.5}, good), "result_type": shorthand}
            reply = await w.request({"op": "run", "id": 1, "spec": spec, "prompt": "Rate"})
            assert reply["type"] == "result", reply
            out = reply["output"]
            assert out["risk"] == 8 and type(out["risk"]) is int
            assert type(out["items"][0]["qty"]) is int
            assert "note" not in out
            # Outside the enum and past the maximum: validation_error after the retries.
            bad = {**good, "risk": 11, "tier": "bronze"}
            spec = {"model": script(bad, bad, bad, bad), "result_type": shorthand}
            reply = await w.request({"op": "run", "id": 2, "spec": spec, "prompt": "Rate"})
            err = error_of(reply)
            assert err["kind"] == "validation_error", err
            paths = {e["path"] for e in err["details"]["errors"]}
            assert paths == {"/risk", "/tier"}

    run(main())


REFUND = {"title": "Refund", "type": "object",
          "properties": {"amount": {"type": "integer"}}, "required": ["amount"]}  # fmt: skip
ESCALATE = {"title": "Escalate", "type": "object",
            "properties": {"team": {"type": "string"}}, "required": ["team"]}  # fmt: skip


async def run_spec(w: Any, spec: dict[str, Any], req_id: int = 1) -> dict[str, Any]:
    reply: dict[str, Any] = await w.request(
        {"op": "run", "id": req_id, "spec": spec, "prompt": "Decide"}
    )
    return reply


def tool_names(reply: dict[str, Any]) -> list[str]:
    return [p["tool_name"] for m in reply["messages"] for p in m["parts"]
            if p["part_kind"] == "tool-call"]  # fmt: skip


@pytest.mark.parametrize("key", ["anyOf", "oneOf"])
def test_a_union_of_objects_gives_one_output_tool_per_branch(key: str) -> None:
    async def main() -> None:
        async with worker() as w:
            turn = {"output": {"team": "fraud"}, "output_tool": "Escalate"}
            spec = {"model": {"provider": "script", "responses": [turn]},
                    "output_schema": {key: [REFUND, ESCALATE]}}  # fmt: skip
            reply = await run_spec(w, spec)
            assert reply["output"] == {"team": "fraud"}, reply
            assert tool_names(reply) == ["final_result_Escalate"]
            described = await w.request({"op": "describe", "id": 2})
            assert described["type"] == "result"

    run(main())


@pytest.mark.parametrize(
    ("schema", "sent", "expected"),
    [
        ({"type": "integer", "minimum": 0}, {"response": 7.0}, 7),
        ({"type": "array", "items": {"type": "string"}}, {"response": ["a", "b"]}, ["a", "b"]),
        ({"enum": ["yes", "no"]}, {"response": "no"}, "no"),
        ({"type": "boolean"}, {"response": True}, True),
    ],
)
def test_scalar_and_array_outputs_reach_the_client_unwrapped(
    schema: dict[str, Any], sent: dict[str, Any], expected: Any
) -> None:
    async def main() -> None:
        async with worker("msgpack") as w:
            spec = {"model": script(sent), "output_schema": schema}
            reply = await run_spec(w, spec)
            assert reply["type"] == "result", reply
            assert reply["output"] == expected and type(reply["output"]) is type(expected)

    run(main())


def test_a_plain_string_schema_is_text_output() -> None:
    async def main() -> None:
        async with worker() as w:
            spec = {"model": {"provider": "script", "responses": ["Just text."]},
                    "output_schema": {"type": "string", "description": "An answer."}}  # fmt: skip
            reply = await run_spec(w, spec)
            assert reply["output"] == "Just text."

    run(main())


@pytest.mark.parametrize("mode", ["native", "prompted", "tool"])
def test_output_mode_maps_to_pydantic_ais_output_modes(mode: str) -> None:
    async def main() -> None:
        async with worker() as w:
            spec = {"model": script({"amount": 12}), "output_schema": REFUND, "output_mode": mode}
            reply = await run_spec(w, spec)
            assert reply["output"] == {"amount": 12}, reply
            # Native and prompted output come as text, tool output as a tool call.
            assert bool(tool_names(reply)) is (mode == "tool")

    run(main())


def test_a_bad_output_mode_is_bad_request() -> None:
    async def main() -> None:
        async with worker() as w:
            reply = await run_spec(w, {"model": "test", "output_schema": REFUND,
                                       "output_mode": "telepathy"})  # fmt: skip
            assert "output_mode must be one of" in error_of(reply)["message"]

    run(main())


def test_output_errors_of_a_python_registered_agent_carry_details_errors() -> None:
    from pydantic import BaseModel
    from pydantic_ai import Agent
    from pydantic_ai.messages import ModelMessage, ModelResponse, ToolCallPart
    from pydantic_ai.models.function import AgentInfo, FunctionModel

    from axon_port.registry import Registry

    class Rating(BaseModel):
        risk: int
        tier: str

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, {"risk": "high"})])

    reg = Registry()
    reg.add_agent("rater", Agent(FunctionModel(model), output_type=Rating))

    async def main() -> None:
        async with worker(registry=reg) as w:
            reply = await w.request({"op": "run", "id": 1, "agent": "rater", "prompt": "Rate"})
            err = error_of(reply)
            assert err["kind"] == "validation_error", err
            assert [(e["path"], e["validator"]) for e in err["details"]["errors"]] == [
                ("/risk", "int_parsing"),
                ("/tier", "missing"),
            ]
            assert err["details"]["messages"]

    run(main())
