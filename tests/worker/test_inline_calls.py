"""The inline ``call`` fast path: an ``inline`` sync function runs on the loop while
its request is being decoded and is answered at once, without a task or an in-flight
entry. These tests pin what that path must still guarantee: one terminal reply per id,
in order, with the same errors, binding checks and logging context as any other call,
and nothing for a late ``cancel`` or ``timeout_ms`` to act on."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from axon_port._framing import FrameDecoder, encode_frame
from axon_port.errors import AxonError
from axon_port.registry import Registry
from axon_port.testing import InProcessWorker
from conftest import run, until

CODECS = ["etf", "msgpack"]


@pytest.fixture
def inline() -> Registry:
    reg = Registry()

    def add(a: int, b: int) -> int:
        return a + b

    def boom() -> None:
        raise ValueError("boom")

    def axon_boom() -> None:
        raise AxonError("custom failure", kind="custom_kind", details={"x": 1}, retryable=True)

    def kw(a: int, **rest: Any) -> dict[str, Any]:
        return {"a": a, "rest": rest}

    def chatty() -> str:
        logging.getLogger("user.inline").warning("inline says %s", "hi")
        return "done"

    async def coro(x: int) -> int:
        return x * 2

    for fn in (add, boom, axon_boom, kw, chatty):
        reg.add_function(fn, inline=True)
    # inline= means nothing for a coroutine function: it is still awaited.
    reg.add_function(coro, inline=True)
    return reg


def _ids_and_types(frames: list[dict[str, Any]]) -> list[tuple[Any, str]]:
    return [(f.get("id"), f["type"]) for f in frames if f["type"] != "log"]


@pytest.mark.parametrize("codec", CODECS)
def test_a_batch_of_inline_calls_is_answered_in_order_during_the_feed_with_nothing_in_flight(
    codec: str, inline: Registry
) -> None:
    async def main() -> None:
        async with InProcessWorker(codec, registry=inline) as w:
            assert w.worker is not None
            requests: list[dict[str, Any]] = [
                {"op": "call", "id": 1, "function": "add", "args": [1, 2]},
                {"op": "ping", "id": 2},
                {"op": "call", "id": 3, "function": "boom"},
                {"op": "call", "id": 4, "function": "add", "args": [1]},
                {"op": "call", "id": 5, "function": "kw", "args": [7], "kwargs": {"z": 1}},
            ]
            blob = b"".join(encode_frame(w.worker.codec.encode(r)) for r in requests)
            since = len(w.received)
            w.worker.dispatcher.feed(FrameDecoder(w.config.max_frame).feed(blob))
            # No await since the feed: every reply was written while it ran.
            got = w.received[since:]
            assert _ids_and_types(got) == [
                (1, "result"), (2, "pong"), (3, "error"), (4, "error"), (5, "result"),
            ]  # fmt: skip
            assert got[0]["output"] == 3
            assert got[2]["error"]["kind"] == "function_error"
            assert got[3]["error"]["kind"] == "bad_request"
            assert got[4]["output"] == {"a": 7, "rest": {"z": 1}}
            assert not w.worker.dispatcher.inflight

    run(main())


@pytest.mark.parametrize("codec", CODECS)
def test_inline_errors_map_like_any_call_and_the_worker_keeps_serving(
    codec: str, inline: Registry
) -> None:
    async def main() -> None:
        async with InProcessWorker(codec, registry=inline) as w:
            boom = await w.request({"op": "call", "id": 1, "function": "boom"})
            assert boom["error"]["kind"] == "function_error"
            assert boom["error"]["details"] == {"function": "boom", "type": "ValueError"}
            assert "ValueError: boom" in boom["error"]["message"]
            custom = await w.request({"op": "call", "id": 2, "function": "axon_boom"})
            assert custom["error"] == {"kind": "custom_kind", "message": "custom failure",
                                       "details": {"x": 1}, "retryable": True}  # fmt: skip
            unknown = await w.request({"op": "call", "id": 3, "function": "nope"})
            assert unknown["error"]["kind"] == "unknown_function"
            extra = await w.request(
                {"op": "call", "id": 4, "function": "add", "args": [1, 2], "kwargs": {"c": 3}}
            )
            assert extra["error"]["kind"] == "bad_request"
            ok = await w.request({"op": "call", "id": 5, "function": "add", "args": [2, 3]})
            assert ok["output"] == 5

    run(main())


def test_kwargs_of_one_inline_call_never_reach_the_next(inline: Registry) -> None:
    async def main() -> None:
        async with InProcessWorker("msgpack", registry=inline) as w:
            first = await w.request(
                {"op": "call", "id": 1, "function": "kw", "args": [1], "kwargs": {"k": 2}}
            )
            assert first["output"] == {"a": 1, "rest": {"k": 2}}
            second = await w.request({"op": "call", "id": 2, "function": "kw", "args": [3]})
            assert second["output"] == {"a": 3, "rest": {}}
            nil = await w.request(
                {"op": "call", "id": 3, "function": "kw", "args": [4], "kwargs": None}
            )
            assert nil["output"] == {"a": 4, "rest": {}}

    run(main())


@pytest.mark.parametrize("codec", CODECS)
def test_cancel_and_timeout_of_an_inline_call_leave_its_one_result_alone(
    codec: str, inline: Registry
) -> None:
    async def main() -> None:
        async with InProcessWorker(codec, registry=inline) as w:
            assert w.worker is not None
            reply = await w.request(
                {"op": "call", "id": 8, "function": "add", "args": [1, 1], "timeout_ms": 1}
            )
            assert reply["output"] == 2
            await w.send({"op": "cancel", "target": 8})
            # Past the timeout: had a timer been left armed it would have fired by now.
            marker = await w.request({"op": "call", "id": 9, "function": "add", "args": [0, 0]})
            await until(lambda: w.worker is not None and not w.worker.dispatcher.inflight)
            assert marker["output"] == 0
            assert [f["type"] for f in w.frames(8)] == ["result"]
            # The id is free again at once.
            again = await w.request({"op": "call", "id": 8, "function": "add", "args": [2, 2]})
            assert again["output"] == 4
            assert [f["type"] for f in w.frames(8)] == ["result", "result"]

    run(main())


def test_a_coroutine_function_registered_inline_is_still_awaited_in_its_own_task(
    inline: Registry,
) -> None:
    async def main() -> None:
        async with InProcessWorker("etf", registry=inline) as w:
            reply = await w.request({"op": "call", "id": 1, "function": "coro", "args": [21]})
            assert reply == {"type": "result", "id": 1, "output": 42}

    run(main())


def test_logs_of_an_inline_function_carry_its_request_id(inline: Registry) -> None:
    async def main() -> None:
        async with InProcessWorker("etf", registry=inline) as w:
            reply = await w.request({"op": "call", "id": 31, "function": "chatty"})
            assert reply["output"] == "done"
            frames = w.frames(31)
            log = next(f for f in frames if f["type"] == "log")
            assert log["logger"] == "user.inline"
            assert log["message"] == "inline says hi"
            # The log line went out before the reply, both under the id.
            assert [f["type"] for f in frames] == ["log", "result"]

    run(main())
