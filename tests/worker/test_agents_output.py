"""Structured output: the JSON Schema is enforced, with pydantic-ai's retries."""

from __future__ import annotations

from typing import Any

from agents_fixtures import define, error_of, override_model, run, service, worker
from pydantic_ai.messages import ModelMessage, ModelResponse, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

RISK_SCHEMA = {
    "type": "object",
    "title": "SupportResult",
    "properties": {
        "support_advice": {"type": "string"},
        "block_card": {"type": "boolean"},
        "risk": {"type": "integer", "minimum": 0, "maximum": 10},
    },
    "required": ["support_advice", "block_card", "risk"],
}


def scripted_outputs(*outputs: dict[str, Any]) -> tuple[FunctionModel, list[list[ModelMessage]]]:
    """A FunctionModel answering with these output-tool calls in turn; records what it saw."""
    seen: list[list[ModelMessage]] = []

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        seen.append(list(messages))
        output = outputs[min(len(seen), len(outputs)) - 1]
        return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, output)])

    return FunctionModel(model), seen


def test_invalid_output_is_sent_back_to_the_model_which_then_fixes_it() -> None:
    model, seen = scripted_outputs(
        {"support_advice": "Calm down", "block_card": "yes", "risk": 11},
        {"support_advice": "Blocked", "block_card": True, "risk": 9},
    )

    async def main() -> None:
        async with worker() as w:
            await define(w, "support", {"output_schema": RISK_SCHEMA})
            with override_model(await service(w), "support", model):
                reply = await w.request({"op": "run", "id": 1, "agent": "support", "prompt": "x"})
            assert reply["output"] == {"support_advice": "Blocked", "block_card": True, "risk": 9}
            assert len(seen) == 2
            retry = [
                p for m in reply["messages"] for p in m["parts"] if p.get("outcome") == "retried"
            ]
            (part,) = retry
            feedback = str(part["content"])
            assert "/block_card: 'yes' is not of type 'boolean'" in feedback
            assert "/risk: 11 is greater than the maximum of 10" in feedback

    run(main())


def test_output_that_stays_invalid_exhausts_retries_into_validation_error() -> None:
    model, seen = scripted_outputs({"support_advice": 3, "block_card": False})

    async def main() -> None:
        async with worker() as w:
            spec = {"output_schema": RISK_SCHEMA, "retries": {"tools": 1, "output": 2}}
            await define(w, "support", spec)
            with override_model(await service(w), "support", model):
                err = error_of(
                    await w.request({"op": "run", "id": 1, "agent": "support", "prompt": "x"})
                )
            assert len(seen) == 3  # first try + 2 retries
            assert err["kind"] == "validation_error"
            assert err["retryable"] is False
            assert "Exceeded maximum output retries (2)" in err["message"]
            assert err["details"]["errors"] == [
                {"path": "/", "message": "'risk' is a required property", "validator": "required"},
                {
                    "path": "/support_advice",
                    "message": "3 is not of type 'string'",
                    "validator": "type",
                },
            ]
            # prompt, then 3 x (response, retry request): everything up to the failure
            kinds = [m["kind"] for m in err["details"]["messages"]]
            assert kinds == ["request"] + ["response", "request"] * 3

    run(main())


def test_the_script_model_can_retry_structured_output_from_elixir_data() -> None:
    async def main() -> None:
        async with worker("msgpack") as w:
            script = {
                "provider": "script",
                "responses": [
                    {"output": {"support_advice": "x", "block_card": False, "risk": -1}},
                    {"output": {"support_advice": "x", "block_card": False, "risk": 1}},
                ],
            }
            await define(w, "s", {"model": script, "output_schema": RISK_SCHEMA})
            reply = await w.request({"op": "run", "id": 1, "agent": "s", "prompt": "x"})
            assert reply["output"]["risk"] == 1
            assert reply["usage"]["requests"] == 2

    run(main())


def test_a_retry_budget_of_zero_fails_at_the_first_invalid_output() -> None:
    async def main() -> None:
        async with worker() as w:
            script = {"provider": "script", "responses": [{"output": {"risk": "high"}}]}
            await define(
                w, "s", {"model": script, "result_type": {"risk": "integer"}, "retries": 0}
            )
            err = error_of(await w.request({"op": "run", "id": 1, "agent": "s", "prompt": "x"}))
            assert err["kind"] == "validation_error"
            assert err["details"]["errors"][0]["path"] == "/risk"

    run(main())


def test_a_script_past_its_last_turn_is_unexpected_model_behavior() -> None:
    async def main() -> None:
        async with worker() as w:
            script = {
                "provider": "script",
                "responses": [
                    {
                        "tool_calls": [
                            {"tool": "customer_balance", "args": {"include_pending": False}}
                        ]
                    }
                ],
            }
            await define(w, "s", {"model": script, "tools": ["customer_balance"]})
            run_frame = {
                "op": "run",
                "id": 1,
                "agent": "s",
                "prompt": "x",
                "deps": {"customer_id": 1},
            }
            err = error_of(await w.request(run_frame))
            assert err["kind"] == "unexpected_model_behavior"
            assert "no response 1" in err["message"]

    run(main())


def test_a_text_agent_returns_the_script_output_as_json_text() -> None:
    async def main() -> None:
        async with worker() as w:
            script = {"provider": "script", "responses": [{"output": {"a": 1}}]}
            await define(w, "t", {"model": script})
            reply = await w.request({"op": "run", "id": 1, "agent": "t", "prompt": "x"})
            assert reply["output"] == '{"a": 1}'

    run(main())


def test_a_catastrophic_pattern_is_a_bounded_validation_error_not_a_stall() -> None:
    from axon_port.agents._schema import compile_validator, schema_errors

    schema = {
        "type": "object",
        "properties": {"s": {"type": "string", "pattern": "^(a+)+$"}},
        "patternProperties": {"^(b+)+$": {"type": "integer"}},
    }
    validator = compile_validator(schema, where="output_schema")
    evil = "a" * 40 + "!"  # stdlib re: minutes of backtracking
    errors = schema_errors(validator, {"s": evil, "b" * 40 + "!": "x"})
    # An answer at all is the point: the stdlib engine would backtrack for hours.
    assert [e["validator"] for e in errors] == ["pattern"], errors
    assert schema_errors(validator, {"s": "aaa", "bb": 1}) == []
    assert schema_errors(validator, {"s": "abc"}) != []


def test_many_slow_pattern_checks_share_one_budget() -> None:
    """Each check is bounded, and so is their sum: 500 strings against a pattern that
    is catastrophic for the ``regex`` engine too stop at the shared budget with one
    error saying so, instead of 500 timeouts of 50 ms (25 s of stalled event loop)."""
    from axon_port.agents._schema import PATTERN_BUDGET, compile_validator, schema_errors

    schema = {"type": "array", "items": {"type": "string", "pattern": "^(a|aa)+$"}}
    validator = compile_validator(schema, where="output_schema")
    errors = schema_errors(validator, ["a" * 40 + "!"] * 500)
    spent = [e for e in errors if "in total" in e["message"]]
    assert len(spent) == 1 and str(PATTERN_BUDGET) in spent[0]["message"], errors
    assert len(errors) < 500 // 2, len(errors)
    # the budget is per validation: the next one starts afresh
    assert schema_errors(validator, ["aaa"] * 500) == []
