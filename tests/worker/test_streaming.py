"""stream: true — chunk frames, in order, before the terminal result."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from agents_fixtures import (
    CODECS,
    chunks,
    define,
    error_of,
    override_model,
    run,
    service,
    worker,
)
from pydantic_ai.messages import ModelMessage
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, DeltaToolCalls, FunctionModel

SCHEMA = {
    "type": "object",
    "properties": {"advice": {"type": "string"}, "risk": {"type": "integer"}},
    "required": ["advice", "risk"],
}


def events(pairs: list[tuple[str, Any]]) -> list[str]:
    return [e for e, _ in pairs]


@pytest.mark.parametrize("codec", CODECS)
def test_text_streams_as_deltas_that_add_up_to_the_output(codec: str) -> None:
    async def stream(messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[str]:
        for piece in ["The ", "answer ", "is 42."]:
            yield piece

    async def main() -> None:
        async with worker(codec) as w:
            await define(w, "talk", {})
            with override_model(await service(w), "talk", FunctionModel(stream_function=stream)):
                reply = await w.request(
                    {"op": "run", "id": 1, "agent": "talk", "prompt": "x", "stream": True}
                )
            assert reply["output"] == "The answer is 42."
            got = chunks(w, 1)
            assert events(got) == [
                "part_start",
                "text_delta",
                "final_result",
                "text_delta",
                "text_delta",
                "part_end",
            ]
            assert got[0][1] == {"index": 0, "part_kind": "text"}
            deltas = [d["delta"] for e, d in got if e == "text_delta"]
            assert deltas == ["The ", "answer ", "is 42."]
            assert got[2][1] == {"tool_name": None}
            # The terminal frame comes after every chunk.
            assert w.frames(1)[-1] is not None and w.frames(1)[-1]["type"] == "result"

    run(main())


def test_structured_output_streams_as_growing_partials_never_repeated() -> None:
    async def stream(
        messages: list[ModelMessage], info: AgentInfo
    ) -> AsyncIterator[DeltaToolCalls]:
        text = json.dumps({"advice": "Call the bank", "risk": 7})
        name = info.output_tools[0].name
        yield {0: DeltaToolCall(name=name, json_args="", tool_call_id="out")}
        for i in range(0, len(text), 5):
            yield {0: DeltaToolCall(json_args=text[i : i + 5])}

    async def main() -> None:
        async with worker() as w:
            await define(w, "struct", {"output_schema": SCHEMA})
            svc = await service(w)
            svc.partial_interval = 0  # every change, for a deterministic sequence
            with override_model(svc, "struct", FunctionModel(stream_function=stream)):
                reply = await w.request(
                    {"op": "run", "id": 1, "agent": "struct", "prompt": "x", "stream": True}
                )
            assert reply["output"] == {"advice": "Call the bank", "risk": 7}
            got = chunks(w, 1)
            partials = [d["output"] for e, d in got if e == "output_partial"]
            assert partials[-1] == reply["output"]
            assert all(a != b for a, b in itertools.pairwise(partials))
            assert {"advice": "Call the bank"} in partials  # the string is shown once complete
            assert events(got)[:2] == ["part_start", "final_result"]
            assert events(got)[-1] == "part_end"
            assert "text_delta" not in events(got)

    run(main())


def test_output_partials_are_debounced_but_the_complete_output_always_arrives() -> None:
    async def main() -> None:
        async with worker() as w:
            script = {
                "provider": "script",
                "responses": [{"output": {"advice": "A fairly long piece of advice", "risk": 3}}],
            }
            await define(w, "struct", {"model": script, "output_schema": SCHEMA})
            (await service(w)).partial_interval = 3600.0
            reply = await w.request(
                {"op": "run", "id": 1, "agent": "struct", "prompt": "x", "stream": True}
            )
            partials = [d["output"] for e, d in chunks(w, 1) if e == "output_partial"]
            assert partials[-1] == reply["output"]
            assert len(partials) == 2  # the first parse, then (debounced) the complete one

    run(main())


def test_a_tool_using_run_streams_calls_and_results_around_the_answer() -> None:
    async def main() -> None:
        async with worker("msgpack") as w:
            script = {
                "provider": "script",
                "responses": [
                    {
                        "thinking": "Need the balance.",
                        "tool_calls": [
                            {
                                "tool": "customer_balance",
                                "args": {"include_pending": False},
                                "id": "c1",
                            }
                        ],
                    },
                    {"text": ["Your balance ", "is 123.45."]},
                ],
            }
            await define(w, "bank", {"model": script, "tools": ["customer_balance"]})
            reply = await w.request(
                {
                    "op": "run",
                    "id": 1,
                    "agent": "bank",
                    "prompt": "x",
                    "stream": True,
                    "deps": {"customer_id": 1},
                }
            )
            assert reply["output"] == "Your balance is 123.45."
            got = chunks(w, 1)
            assert events(got) == [
                "part_start",
                "thinking_delta",
                "part_end",
                "part_start",
                "part_end",
                "tool_call",
                "tool_result",
                "part_start",
                "text_delta",
                "final_result",
                "text_delta",
                "part_end",
            ]
            data = dict(got[5:7])
            assert data["tool_call"] == {
                "tool_name": "customer_balance",
                "tool_call_id": "c1",
                "args": {"include_pending": False},
                "remote": False,
            }
            assert data["tool_result"] == {
                "tool_name": "customer_balance",
                "tool_call_id": "c1",
                "content": 123.45,
                "outcome": "success",
            }
            assert got[1][1] == {"index": 0, "delta": "Need the balance."}
            assert got[3][1]["part_kind"] == "tool-call"

    run(main())


def test_a_remote_tool_in_a_streamed_run_gets_a_chunk_and_a_tool_call_frame() -> None:
    async def main() -> None:
        async with worker() as w:
            remote = {
                "name": "ask_elixir",
                "remote": True,
                "parameters": {"type": "object", "properties": {}},
            }
            script = {
                "provider": "script",
                "responses": [
                    {"tool_calls": [{"tool": "ask_elixir", "args": {}, "id": "r1"}]},
                    "done",
                ],
            }
            await define(w, "r", {"model": script, "tools": [remote]})
            await w.send({"op": "run", "id": 1, "agent": "r", "prompt": "x", "stream": True})
            await w.wait_for(lambda f: f["type"] == "tool_call")
            await w.send({"op": "tool_result", "id": 1, "call_id": "r1", "ok": "hi"})
            assert (await w.terminal(1))["output"] == "done"
            got = dict((e, d) for e, d in chunks(w, 1) if e.startswith("tool_"))
            assert got["tool_call"]["remote"] is True
            assert got["tool_result"]["content"] == "hi"

    run(main())


def test_retries_are_visible_in_the_stream() -> None:
    async def main() -> None:
        async with worker() as w:
            script = {
                "provider": "script",
                "responses": [
                    {"output": {"advice": "x", "risk": "high"}},
                    {"output": {"advice": "x", "risk": 2}},
                ],
            }
            await define(w, "s", {"model": script, "output_schema": SCHEMA})
            await w.request({"op": "run", "id": 1, "agent": "s", "prompt": "x", "stream": True})
            (retry,) = [d for e, d in chunks(w, 1) if e == "retry"]
            assert retry["source"] == "output"
            assert "/risk: 'high' is not of type 'integer'" in retry["message"]

    run(main())


@pytest.mark.parametrize("codec", CODECS)
def test_complete_makes_one_direct_request_and_can_stream_it(codec: str) -> None:
    async def main() -> None:
        async with worker(codec) as w:
            script = {"provider": "script", "responses": [{"text": ["Hello", " there"]}]}
            reply = await w.request(
                {"op": "complete", "id": 1, "model": script, "messages": "Say hello"}
            )
            assert reply["output"] == {
                "text": "Hello there",
                "tool_calls": [],
                "finish_reason": None,
            }
            assert reply["messages"][0]["kind"] == "response"
            assert reply["usage"]["output_tokens"] > 0
            streamed = await w.request(
                {
                    "op": "complete",
                    "id": 2,
                    "model": script,
                    "messages": "Say hello",
                    "stream": True,
                }
            )
            assert streamed["output"]["text"] == "Hello there"
            deltas = [d["delta"] for e, d in chunks(w, 2) if e == "text_delta"]
            assert deltas == ["Hello", " there"]

    run(main())


def test_complete_returns_tool_calls_and_checks_structured_output() -> None:
    async def main() -> None:
        async with worker() as w:
            tools = [
                {
                    "name": "lookup",
                    "description": "Look up.",
                    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
                }
            ]
            reply = await w.request(
                {"op": "complete", "id": 1, "model": "test", "messages": "find it", "tools": tools}
            )
            assert reply["output"]["tool_calls"][0]["tool_name"] == "lookup"
            history = reply["messages"]
            first = await w.request({"op": "complete", "id": 9, "model": "test", "messages": "hi"})
            assert first["output"]["text"] == "success (no tool calls)"
            structured = await w.request(
                {
                    "op": "complete",
                    "id": 2,
                    "model": "test",
                    "messages": "x",
                    "output_schema": SCHEMA,
                }
            )
            assert structured["output"]["output"] == {"advice": "a", "risk": 0}
            bad = {"provider": "script", "responses": [{"output": {"advice": 1}}]}
            err = await w.request(
                {"op": "complete", "id": 3, "model": bad, "messages": "x", "output_schema": SCHEMA}
            )
            assert err["error"]["kind"] == "validation_error"
            assert [e["path"] for e in err["error"]["details"]["errors"]] == ["/", "/advice"]
            assert history[0]["parts"][0]["part_kind"] == "tool-call"

    run(main())


def test_complete_whose_messages_end_with_a_response_is_a_bad_request() -> None:
    async def main() -> None:
        async with worker() as w:
            first = await w.request(
                {"op": "complete", "id": 1, "model": "test", "messages": "Say hello"}
            )
            reply = await w.request(
                {"op": "complete", "id": 2, "model": "test", "messages": first["messages"]}
            )
            err = error_of(reply)
            assert err["kind"] == "bad_request"
            assert "last message" in err["message"]

    run(main())
