"""Tools the client implements: tool_call out, tool_result back."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from agents_fixtures import CODECS, define, error_of, outcomes, run, service, until, worker

from axon_port import Atom

WEATHER = {
    "name": "weather",
    "description": "Current weather in a city (answered by Elixir).",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "minLength": 1}},
        "required": ["city"],
    },
    "remote": True,
}


def script(*turns: Any) -> dict[str, Any]:
    return {"provider": "script", "responses": list(turns)}


def calls_weather(city: Any, call_id: str = "w1") -> dict[str, Any]:
    return {"tool_calls": [{"tool": "weather", "args": {"city": city}, "id": call_id}]}


def is_tool_call(req_id: int) -> Any:
    return lambda f: f["type"] == "tool_call" and f["id"] == req_id


@pytest.mark.parametrize("codec", CODECS)
def test_a_remote_tool_call_round_trips_through_the_client(codec: str) -> None:
    async def main() -> None:
        async with worker(codec) as w:
            await define(
                w,
                "wx",
                {
                    "model": script(calls_weather("Paris"), "Sunny, says Elixir."),
                    "tools": [WEATHER],
                },
            )
            await w.send({"op": "run", "id": 7, "agent": "wx", "prompt": "Weather in Paris?"})
            call = await w.wait_for(is_tool_call(7))
            assert call == {
                "type": "tool_call",
                "id": 7,
                "call_id": "w1",
                "tool": "weather",
                "args": {"city": "Paris"},
            }
            await w.send(
                {
                    "op": "tool_result",
                    "id": 7,
                    "call_id": "w1",
                    "ok": {"temp_c": 21, "sky": Atom("clear")},
                }
            )
            reply = await w.terminal(7)
            assert reply["output"] == "Sunny, says Elixir."
            returns = [
                p for m in reply["messages"] for p in m["parts"] if p["part_kind"] == "tool-return"
            ]
            assert returns[0]["content"] == {"temp_c": 21, "sky": "clear"}
            assert (await service(w)).runs.runs == {}

    run(main())


def test_a_remote_error_with_retry_goes_back_to_the_model_as_model_retry() -> None:
    async def main() -> None:
        async with worker() as w:
            turns = script(calls_weather("Pariss", "w1"), calls_weather("Paris", "w2"), "ok")
            await define(w, "wx", {"model": turns, "tools": [WEATHER]})
            await w.send({"op": "run", "id": 1, "agent": "wx", "prompt": "x"})
            await w.wait_for(lambda f: f.get("call_id") == "w1")
            await w.send(
                {
                    "op": "tool_result",
                    "id": 1,
                    "call_id": "w1",
                    "error": "unknown city Pariss",
                    "retry": True,
                }
            )
            await w.wait_for(lambda f: f.get("call_id") == "w2")
            await w.send({"op": "tool_result", "id": 1, "call_id": "w2", "ok": "sunny"})
            reply = await w.terminal(1)
            assert reply["output"] == "ok"
            assert outcomes(reply["messages"]) == [("weather", "retried"), ("weather", "success")]
            retried = reply["messages"][2]["parts"][0]
            assert "unknown city Pariss" in str(retried["content"])

    run(main())


def test_a_remote_error_without_retry_fails_the_run_with_tool_error() -> None:
    async def main() -> None:
        async with worker() as w:
            await define(w, "wx", {"model": script(calls_weather("Paris")), "tools": [WEATHER]})
            await w.send({"op": "run", "id": 1, "agent": "wx", "prompt": "x"})
            await w.wait_for(is_tool_call(1))
            await w.send(
                {"op": "tool_result", "id": 1, "call_id": "w1", "error": {"reason": "service down"}}
            )
            err = error_of(await w.terminal(1))
            assert err["kind"] == "tool_error"
            assert err["details"]["tool"] == "weather"
            assert err["details"]["call_id"] == "w1"
            assert err["details"]["error"] == {"reason": "service down"}
            assert (await service(w)).runs.pending_count() == 0

    run(main())


def test_arguments_that_break_the_tool_schema_never_reach_the_client() -> None:
    async def main() -> None:
        async with worker() as w:
            turns = script(calls_weather("", "bad"), calls_weather("Oslo", "good"), "fine")
            await define(w, "wx", {"model": turns, "tools": [WEATHER]})
            await w.send({"op": "run", "id": 1, "agent": "wx", "prompt": "x"})
            call = await w.wait_for(is_tool_call(1))
            assert call["call_id"] == "good"
            await w.send({"op": "tool_result", "id": 1, "call_id": "good", "ok": "cold"})
            reply = await w.terminal(1)
            assert reply["output"] == "fine"
            assert [f["call_id"] for f in w.frames(1) if f["type"] == "tool_call"] == ["good"]
            assert "should be non-empty" in str(reply["messages"][2]["parts"][0]["content"])

    run(main())


def test_concurrent_runs_wait_on_their_remote_tools_independently() -> None:
    async def main() -> None:
        async with worker() as w:
            await define(w, "wx", {"model": script(calls_weather("X"), "done"), "tools": [WEATHER]})
            for rid in (1, 2):
                await w.send({"op": "run", "id": rid, "agent": "wx", "prompt": f"run {rid}"})
            await w.wait_for(is_tool_call(1))
            await w.wait_for(is_tool_call(2))
            svc = await service(w)
            assert svc.runs.pending_count() == 2
            # A ping is not delayed by runs waiting on the client.
            assert (await w.request({"op": "ping", "id": 3}))["type"] == "pong"
            # Same call_id in both runs: answers are routed by run id. Answer the second first.
            await w.send({"op": "tool_result", "id": 2, "call_id": "w1", "ok": "two"})
            second = await w.terminal(2)
            assert second["type"] == "result"
            assert not [f for f in w.frames(1) if f["type"] == "result"]
            await w.send({"op": "tool_result", "id": 1, "call_id": "w1", "ok": "one"})
            first = await w.terminal(1)
            contents = [
                [
                    p["content"]
                    for m in r["messages"]
                    for p in m["parts"]
                    if p["part_kind"] == "tool-return"
                ]
                for r in (first, second)
            ]
            assert contents == [["one"], ["two"]]
            assert svc.runs.pending_count() == 0

    run(main())


def test_a_tool_result_nobody_waits_for_is_dropped_with_a_warning_log() -> None:
    async def main() -> None:
        async with worker() as w:
            await service(w)  # the agent layer is loaded
            await w.send({"op": "tool_result", "id": 404, "call_id": "c", "ok": 1})
            log = await w.wait_for(lambda f: f["type"] == "log")
            assert log["level"] == "warning"
            assert "no such run" in log["message"]
            await define(w, "wx", {"model": script(calls_weather("X")), "tools": [WEATHER]})
            await w.send({"op": "run", "id": 1, "agent": "wx", "prompt": "x"})
            await w.wait_for(is_tool_call(1))
            since = len(w.received)
            await w.send({"op": "tool_result", "id": 1, "call_id": "other", "ok": 1})
            log = await w.wait_for(lambda f: f["type"] == "log", since=since)
            assert "no pending call 'other'" in log["message"]
            assert (await w.request({"op": "ping", "id": 2}))["type"] == "pong"
            await w.send({"op": "cancel", "target": 1})
            assert error_of(await w.terminal(1))["kind"] == "cancelled"

    run(main())


def test_parallel_remote_calls_in_one_response_are_all_sent_before_any_answer() -> None:
    async def main() -> None:
        async with worker() as w:
            both = {
                "tool_calls": [
                    {"tool": "weather", "args": {"city": "A"}, "id": "a"},
                    {"tool": "weather", "args": {"city": "B"}, "id": "b"},
                ]
            }
            await define(w, "wx", {"model": script(both, "both done"), "tools": [WEATHER]})
            await w.send({"op": "run", "id": 1, "agent": "wx", "prompt": "x"})
            svc = await service(w)
            await until(lambda: svc.runs.pending_count() == 2)
            for call_id in ("b", "a"):
                await w.send({"op": "tool_result", "id": 1, "call_id": call_id, "ok": call_id})
            assert (await w.terminal(1))["output"] == "both done"
            await asyncio.sleep(0)

    run(main())
