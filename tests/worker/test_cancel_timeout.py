"""cancel and timeout_ms stop a run wherever it is, answer it once, and release it."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator
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
    until,
    worker,
)
from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.models.function import AgentInfo, FunctionModel

from axon_port.testing import TERMINAL_TYPES

REMOTE = {"name": "slow_elixir", "remote": True, "parameters": {"type": "object"}}


def hanging_model(entered: asyncio.Event) -> FunctionModel:
    """A model that signals it was called, then never answers."""

    async def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        entered.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def stream(messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[str]:
        yield "Thinking about "
        entered.set()
        await asyncio.Event().wait()
        yield "unreachable"

    return FunctionModel(model, stream_function=stream)


@pytest.mark.parametrize("codec", CODECS)
def test_cancel_during_a_model_call_answers_cancelled_with_the_partial_messages(
    codec: str,
) -> None:
    async def main() -> None:
        async with worker(codec) as w:
            await define(w, "slow", {})
            entered = asyncio.Event()
            with override_model(await service(w), "slow", hanging_model(entered)):
                await w.send({"op": "run", "id": 1, "agent": "slow", "prompt": "hello"})
            await asyncio.wait_for(entered.wait(), 5)
            await w.send({"op": "cancel", "target": 1})
            err = error_of(await w.terminal(1))
            assert err["kind"] == "cancelled"
            assert err["details"]["reason"] == "cancelled"
            assert part_kinds(err["details"]["messages"]) == ["user-prompt"]
            assert err["details"]["messages"][0]["parts"][0]["content"] == "hello"

    run(main())


def test_cancel_while_waiting_for_a_remote_tool_cleans_up_the_pending_call() -> None:
    async def main() -> None:
        async with worker() as w:
            script = {
                "provider": "script",
                "responses": [
                    {"tool_calls": [{"tool": "slow_elixir", "args": {}, "id": "c1"}]},
                    "never",
                ],
            }
            await define(w, "r", {"model": script, "tools": [REMOTE]})
            await w.send({"op": "run", "id": 1, "agent": "r", "prompt": "x"})
            await w.wait_for(lambda f: f["type"] == "tool_call")
            svc = await service(w)
            assert svc.runs.pending_count() == 1
            await w.send({"op": "cancel", "target": 1})
            err = error_of(await w.terminal(1))
            assert err["kind"] == "cancelled"
            kinds = part_kinds(err["details"]["messages"])
            assert kinds[:2] == ["user-prompt", "tool-call"]
            assert svc.runs.pending_count() == 0 and svc.runs.runs == {}
            # A late answer is dropped with a warning, and the worker carries on.
            since = len(w.received)
            await w.send({"op": "tool_result", "id": 1, "call_id": "c1", "ok": "late"})
            log = await w.wait_for(lambda f: f["type"] == "log", since=since)
            assert "dropped" in log["message"]
            assert len([f for f in w.frames(1) if f["type"] in TERMINAL_TYPES]) == 1

    run(main())


def test_cancel_during_a_stream_keeps_the_text_streamed_so_far() -> None:
    async def main() -> None:
        async with worker() as w:
            await define(w, "slow", {})
            entered = asyncio.Event()
            with override_model(await service(w), "slow", hanging_model(entered)):
                await w.send({"op": "run", "id": 1, "agent": "slow", "prompt": "x", "stream": True})
            await w.wait_for(lambda f: f["type"] == "chunk" and f["event"] == "text_delta")
            await asyncio.wait_for(entered.wait(), 5)
            await w.send({"op": "cancel", "target": 1})
            err = error_of(await w.terminal(1))
            assert err["kind"] == "cancelled"
            messages = err["details"]["messages"]
            assert part_kinds(messages) == ["user-prompt", "text"]
            assert messages[-1]["parts"][0]["content"] == "Thinking about "
            assert messages[-1]["state"] == "interrupted"

    run(main())


def test_timeout_ms_answers_timeout_with_the_partial_messages() -> None:
    async def main() -> None:
        async with worker("msgpack") as w:
            script = {"provider": "script", "responses": [{"text": "late", "delay_ms": 60_000}]}
            await define(w, "slow", {"model": script})
            err = error_of(
                await w.request(
                    {"op": "run", "id": 1, "agent": "slow", "prompt": "x", "timeout_ms": 50}
                )
            )
            assert err["kind"] == "timeout"
            assert err["details"]["reason"] == "timeout"
            assert part_kinds(err["details"]["messages"]) == ["user-prompt"]
            assert (await service(w)).runs.runs == {}

    run(main())


def test_timeout_ms_while_waiting_for_a_remote_tool_releases_the_call() -> None:
    async def main() -> None:
        async with worker() as w:
            script = {
                "provider": "script",
                "responses": [{"tool_calls": [{"tool": "slow_elixir", "args": {}}]}],
            }
            await define(w, "r", {"model": script, "tools": [REMOTE]})
            reply = await w.request(
                {"op": "run", "id": 1, "agent": "r", "prompt": "x", "timeout_ms": 100}
            )
            assert error_of(reply)["kind"] == "timeout"
            assert [f["type"] for f in w.frames(1)] == ["tool_call", "error"]
            assert (await service(w)).runs.pending_count() == 0

    run(main())


def test_cancelling_a_complete_answers_cancelled() -> None:
    async def main() -> None:
        async with worker() as w:
            script = {
                "provider": "script",
                "responses": [{"text": ["first", "never"], "chunk_delay_ms": 60_000}],
            }
            await w.send(
                {"op": "complete", "id": 1, "model": script, "messages": "x", "stream": True}
            )
            await w.wait_for(lambda f: f["type"] == "chunk" and f["event"] == "text_delta")
            await w.send({"op": "cancel", "target": 1})
            err = error_of(await w.terminal(1))
            assert err["kind"] == "cancelled"
            assert err["details"]["messages"] == []

    run(main())


def test_a_thousand_concurrent_runs_with_random_cancels_and_timeouts_end_cleanly() -> None:
    rng = random.Random(1234)
    n = 1000

    async def main() -> None:
        async with worker("etf") as w:
            fast = {"provider": "script", "responses": [{"text": "ok", "delay_ms": 1}]}
            slow = {"provider": "script", "responses": [{"text": "ok", "delay_ms": 30}]}
            tool = {
                "provider": "script",
                "responses": [
                    {"tool_calls": [{"tool": "slow_elixir", "args": {}, "id": "t"}]},
                    "done",
                ],
            }
            await define(w, "fast", {"model": fast})
            await define(w, "slow", {"model": slow})
            await define(w, "tool", {"model": tool, "tools": [REMOTE]})
            svc = await service(w)
            baseline = len(asyncio.all_tasks())
            plan: dict[int, str] = {}
            for rid in range(1, n + 1):
                action = rng.choice(["finish", "cancel", "timeout", "tool_ok", "tool_cancel"])
                plan[rid] = action
                agent = {"finish": "fast", "cancel": "slow", "timeout": "slow"}.get(action, "tool")
                frame: dict[str, Any] = {
                    "op": "run",
                    "id": rid,
                    "agent": agent,
                    "prompt": "x",
                    "stream": rng.random() < 0.5,
                }
                if action == "timeout":
                    frame["timeout_ms"] = rng.randint(1, 20)
                await w.send(frame)
                if action == "cancel" and rng.random() < 0.5:
                    await w.send({"op": "cancel", "target": rid})  # cancelled right away
            for rid, action in plan.items():
                if action in ("cancel",):
                    await w.send({"op": "cancel", "target": rid})
            tool_runs = [rid for rid, a in plan.items() if a.startswith("tool")]
            await until(
                lambda: all(any(f["type"] == "tool_call" for f in w.frames(r)) for r in tool_runs),
                timeout=30,
            )
            for rid in tool_runs:
                if plan[rid] == "tool_ok":
                    await w.send({"op": "tool_result", "id": rid, "call_id": "t", "ok": 1})
                else:
                    await w.send({"op": "cancel", "target": rid})
            # A second cancel of a finished run, and a duplicate answer, change nothing.
            await w.send({"op": "cancel", "target": 1})

            def terminals(rid: int) -> list[dict[str, Any]]:
                return [f for f in w.frames(rid) if f["type"] in TERMINAL_TYPES]

            await until(lambda: all(terminals(r) for r in plan), timeout=60)
            await until(lambda: not w.worker.dispatcher.inflight, timeout=10)  # type: ignore[union-attr]
            kinds: Counter[str] = Counter()
            for rid, action in plan.items():
                assert len(terminals(rid)) == 1, (rid, action, w.frames(rid))
                (term,) = terminals(rid)
                kind = "result" if term["type"] == "result" else term["error"]["kind"]
                kinds[kind] += 1
                if action in ("finish", "tool_ok"):
                    assert kind == "result", (rid, action, term)
                elif action == "timeout":
                    assert kind in ("timeout", "result"), (rid, term)
                else:
                    assert kind in ("cancelled", "result"), (rid, action, term)
            assert kinds["result"] > 0 and kinds["cancelled"] > 0 and kinds["timeout"] > 0
            assert svc.runs.runs == {} and svc.runs.pending_count() == 0
            await until(lambda: len(asyncio.all_tasks()) <= baseline, timeout=10)

    run(main())


def test_tasks_a_run_left_parked_are_cancelled_when_it_is_cut_short() -> None:
    """pydantic-ai can leave a teardown task parked forever when a run is cut short
    under load (issue 9, item 3): the run's tasks are tracked and swept."""
    from axon_port.agents._remote import CURRENT_RUN, RunState, track_run_tasks

    async def main() -> None:
        track_run_tasks(asyncio.get_running_loop())
        track_run_tasks(asyncio.get_running_loop())  # idempotent
        state = RunState(1, lambda *_: None)
        outside = asyncio.ensure_future(asyncio.Event().wait())
        token = CURRENT_RUN.set(state)
        try:
            parked = asyncio.ensure_future(asyncio.Event().wait())
            finished = asyncio.ensure_future(asyncio.sleep(0))
        finally:
            CURRENT_RUN.reset(token)
        await finished
        assert set(state.tasks) == {parked, finished}
        assert state.cancel_leftover_tasks() == 1
        await asyncio.wait({parked}, timeout=5)
        assert parked.cancelled() and not outside.done()
        outside.cancel()

    run(main())
