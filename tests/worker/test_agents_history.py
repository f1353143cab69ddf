"""Multi-turn conversations: a result's messages come back as the next run's history."""

from __future__ import annotations

import pytest
from agents_fixtures import CODECS, define, error_of, override_model, run, service, worker
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel

from axon_port import Atom
from axon_port._framing import encode_frame
from axon_port.agents._messages import HISTORY_CACHE


def remembering_model() -> FunctionModel:
    """Answers with every user prompt it has seen so far, calling a tool on the first turn."""

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        prompts = [
            p.content
            for m in messages
            if isinstance(m, ModelRequest)
            for p in m.parts
            if isinstance(p, UserPromptPart)
        ]
        if len(prompts) == 1 and isinstance(messages[-1].parts[-1], UserPromptPart):
            return ModelResponse(
                parts=[ToolCallPart("customer_balance", {"include_pending": True})]
            )
        return ModelResponse(parts=[TextPart(" | ".join(map(str, prompts)))])

    return FunctionModel(model)


@pytest.mark.parametrize("codec", CODECS)
def test_history_round_trips_through_the_codec_into_the_next_turn(codec: str) -> None:
    async def main() -> None:
        async with worker(codec) as w:
            await define(w, "chat", {"tools": ["customer_balance"]})
            with override_model(await service(w), "chat", remembering_model()):
                first = await w.request(
                    {
                        "op": "run",
                        "id": 1,
                        "agent": "chat",
                        "prompt": "my balance?",
                        "deps": {"customer_id": 1},
                    }
                )
                assert first["output"] == "my balance?"
                assert len(first["messages"]) == 4  # prompt, tool call, tool return, answer
                second = await w.request(
                    {
                        "op": "run",
                        "id": 2,
                        "agent": "chat",
                        "prompt": "and again?",
                        "history": first["messages"],
                    }
                )
                assert second["output"] == "my balance? | and again?"
                # Only the new messages come back; the client appends them.
                assert len(second["messages"]) == 2
                third = await w.request(
                    {
                        "op": "run",
                        "id": 3,
                        "agent": "chat",
                        "prompt": "third",
                        "history": first["messages"] + second["messages"],
                    }
                )
                assert third["output"] == "my balance? | and again? | third"
                tool_return = first["messages"][2]["parts"][0]
                assert tool_return["part_kind"] == "tool-return"
                assert tool_return["content"] == 124.45

    run(main())


def test_history_that_is_not_messages_is_a_bad_request_with_details() -> None:
    async def main() -> None:
        async with worker() as w:
            await define(w, "chat", {})
            bad = {
                "op": "run",
                "id": 1,
                "agent": "chat",
                "prompt": "x",
                "history": [{"kind": "request", "parts": [{"part_kind": "nonsense"}]}],
            }
            err = error_of(await w.request(bad))
            assert err["kind"] == "bad_request"
            assert "history" in err["message"]
            assert isinstance(err["details"], list) and err["details"]
            not_list = {**bad, "id": 2, "history": "yesterday"}
            assert error_of(await w.request(not_list))["kind"] == "bad_request"

    run(main())


def test_a_nil_prompt_continues_from_history_alone() -> None:
    async def main() -> None:
        async with worker("msgpack") as w:
            await define(w, "chat", {})
            first = await w.request({"op": "run", "id": 1, "agent": "chat", "prompt": "hello"})
            history = first["messages"][:1]  # just the user's request: the model answers it
            reply = await w.request(
                {"op": "run", "id": 2, "agent": "chat", "prompt": None, "history": history}
            )
            assert reply["output"] == "success (no tool calls)"

    run(main())


def test_etf_history_is_kept_encoded_cached_by_its_bytes_and_a_bad_message_is_named() -> None:
    """Over ETF the worker keeps ``history`` encoded: the second run of the same
    history hits the cache for every message (nothing validated again), and a
    message whose bytes do not decode is ``bad_frame`` with the run's id and the
    message's index; the worker keeps serving."""

    async def main() -> None:
        async with worker("etf") as w:
            await define(w, "chat", {})
            first = await w.request({"op": "run", "id": 1, "agent": "chat", "prompt": "hello"})
            history = first["messages"]
            before = (HISTORY_CACHE.hits, HISTORY_CACHE.misses)
            req = {"op": "run", "agent": "chat", "prompt": "again", "history": history}
            second = await w.request({**req, "id": 2})
            third = await w.request({**req, "id": 3})
            assert second["output"] == third["output"] == "success (no tool calls)"
            hits, misses = HISTORY_CACHE.hits - before[0], HISTORY_CACHE.misses - before[1]
            assert misses <= len(history) and hits >= len(history)  # the third: all hits

            assert w.worker is not None
            payload = w.worker.codec.encode(
                {**req, "id": 4, "history": [*history, Atom("zz")]}
            ).replace(b"zz", b"\xff\xfe")
            since = len(w.received)
            await w.send_bytes(encode_frame(payload))
            err = error_of(await w.terminal(4, since=since))
            assert err["kind"] == "bad_frame"
            assert err["message"].startswith(f"history[{len(history)}]: ")
            assert err["details"] == {"index": len(history)}
            again = await w.request({**req, "id": 5})
            assert again["output"] == "success (no tool calls)"

    run(main())
