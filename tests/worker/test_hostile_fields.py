"""Every op, every field, every hostile value: exactly one terminal reply per id, and
``inflight`` back at 0. Also the exceptions that used to escape between decoding a
frame and writing its reply (docs/reliability.md, "one typed boundary")."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from axon_port import Atom
from axon_port._framing import encode_frame
from axon_port.errors import EncodeError
from axon_port.messages import NOTIFICATION_OPS, OP_FIELDS
from axon_port.registry import Registry
from axon_port.testing import TERMINAL_TYPES, InProcessWorker
from conftest import run

HOSTILE: list[Any] = [
    10**400, -(10**400), 2**64, -1, 0, 1.5, float("nan"), float("inf"), True,
    {"a": {"b": {"c": {}}}}, [{"x": [1, [2, [3]]]}], b"\xff" * (1 << 20), "s" * (1 << 16),
    Atom("bogus"), None, (1, 2), [],
]  # fmt: skip

BASE: dict[str, Any] = {
    "name": "agent_x", "spec": {"model": "test"}, "prompt": "hi", "model": "test",
    "messages": "hi", "call_id": "c1", "function": "add", "args": [1, 2], "target": 1,
    "level": "info",
}  # fmt: skip


def cases() -> Iterator[dict[str, Any]]:
    for op, fields in OP_FIELDS.items():
        if op == "shutdown":
            continue  # it ends the worker: covered by the shutdown tests below
        required = {k: BASE[k] for k, f in fields.items() if f.required}
        for field in [*fields, "id", "op"]:
            for value in HOSTILE:
                yield {"op": op, **required, field: value}


@pytest.mark.parametrize("codec", ["etf", "msgpack"])
def test_every_field_of_every_op_replaced_by_each_hostile_value_gets_one_terminal_reply(
    registry: Registry, codec: str
) -> None:
    async def main() -> None:
        async with InProcessWorker(codec, registry=registry, forward_logs=False) as w:
            c = w.worker.codec  # type: ignore[union-attr]
            ids = []
            batch: list[bytes] = []
            sent = 0
            for n, frame in enumerate(cases(), start=1000):
                op = frame.get("op")
                if not (isinstance(op, str) and op in NOTIFICATION_OPS):
                    frame.setdefault("id", n)
                    if frame["id"] == n:
                        ids.append(n)
                if "timeout_ms" not in frame and op in ("run", "complete", "call"):
                    frame["timeout_ms"] = 2000
                try:
                    batch.append(encode_frame(c.encode(frame)))
                except EncodeError:  # the codec cannot carry it (NaN in ETF, 10**400 in msgpack)
                    if ids and ids[-1] == n:
                        ids.pop()
                    continue
                sent += 1
                if len(batch) == 40:
                    # One read batch: a failure must not drop the requests after it.
                    await w.send_bytes(b"".join(batch))
                    batch.clear()
            if batch:  # (b"" would mean EOF)
                await w.send_bytes(b"".join(batch))
            for rid in ids:
                await w.terminal(rid, timeout=30)
            stats = await w.request({"op": "stats", "id": 1})
            assert stats["output"]["inflight"] == 0
            for rid in ids:
                terminals = [f for f in w.frames(rid) if f["type"] in TERMINAL_TYPES]
                assert len(terminals) == 1, (rid, terminals)
            assert (await w.request({"op": "ping", "id": 2}))["type"] == "pong"
            assert sent > 550

    run(asyncio.wait_for(main(), 120))


class BrokenItems(Mapping[str, Any]):
    def __getitem__(self, k: str) -> Any:
        raise KeyError(k)

    def __len__(self) -> int:
        return 1

    def __iter__(self) -> Iterator[str]:
        return iter(["k"])

    def items(self) -> Any:
        raise RuntimeError("items() is broken")


@pytest.mark.parametrize("codec", ["etf", "msgpack"])
def test_failures_that_used_to_lose_a_reply_are_answered_and_the_batch_goes_on(
    codec: str,
) -> None:
    reg = Registry()

    def broken() -> Any:
        return BrokenItems()

    async def broken_async() -> Any:
        return BrokenItems()

    reg.add_function(broken, inline=True)
    reg.add_function(broken, name="broken_threaded")
    reg.add_function(broken_async)

    async def main() -> None:
        async with InProcessWorker(codec, registry=reg, forward_logs=False) as w:
            c = w.worker.codec  # type: ignore[union-attr]
            frames = [
                {"op": "call", "id": 1, "function": "broken"},
                {"op": "call", "id": 2, "function": "broken_threaded"},
                {"op": "call", "id": 3, "function": "broken_async"},
                {"op": "call", "id": 4, "function": "broken_async", "timeout_ms": 10**400},
                {"op": "ping", "id": 5},
            ]
            if codec == "msgpack":  # cannot carry 10**400
                frames[3]["timeout_ms"] = -1
            await w.send_bytes(b"".join(encode_frame(c.encode(f)) for f in frames))
            for rid in (1, 2, 3):
                err = (await w.terminal(rid))["error"]
                assert err["kind"] == "unencodable"
            assert (await w.terminal(4))["error"]["kind"] == "bad_request"
            assert (await w.terminal(5))["type"] == "pong"
            stats = await w.request({"op": "stats", "id": 6})
            assert stats["output"]["inflight"] == 0

    run(main())


def test_a_huge_duplicate_id_is_answered_and_logs_no_traceback(
    registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    huge = 10**5000

    async def main() -> None:
        async with InProcessWorker("etf", registry=registry) as w:
            c = w.worker.codec  # type: ignore[union-attr]
            frame = {"op": "call", "id": huge, "function": "sleep_ms", "args": [50]}
            await w.send_bytes(encode_frame(c.encode(frame)) * 2)
            await w.send({"op": "cancel", "target": huge})
            await w.wait_for(lambda f: f["type"] == "error" and f["id"] is None)
            assert (await w.request({"op": "ping", "id": 1}))["type"] == "pong"

    run(main())
    assert "Logging error" not in capsys.readouterr().err


def test_requests_after_shutdown_in_the_same_batch_are_answered_shutting_down(
    registry: Registry,
) -> None:
    async def main() -> None:
        async with InProcessWorker("etf", registry=registry) as w:
            c = w.worker.codec  # type: ignore[union-attr]
            frames = [
                {"op": "shutdown", "id": 1, "grace_ms": 0},
                {"op": "call", "id": 2, "function": "add", "args": [1, 2]},
            ]
            await w.send_bytes(b"".join(encode_frame(c.encode(f)) for f in frames))
            assert (await w.terminal(2))["error"]["kind"] == "shutting_down"
            assert (await w.terminal(1))["type"] == "result"

    run(main())


def test_shutdown_with_a_task_that_ignores_cancellation_still_ends(
    registry: Registry,
) -> None:
    reg = Registry()

    async def stubborn() -> str:
        for _ in range(2):  # ignores two cancellations, then ends
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                continue
        return "never"

    reg.add_function(stubborn)

    async def main() -> None:
        async with InProcessWorker("etf", registry=reg) as w:
            await w.send({"op": "call", "id": 1, "function": "stubborn"})
            await asyncio.sleep(0.05)
            reply = await w.request({"op": "shutdown", "id": 2, "grace_ms": 10}, timeout=5)
            assert reply["type"] == "result"
            assert (await w.terminal(1))["error"]["kind"] == "shutdown"
            assert w.worker.stopped.is_set()  # type: ignore[union-attr]

    run(main())


def test_a_saturated_thread_pool_answers_busy_and_shows_in_stats(registry: Registry) -> None:
    async def main() -> None:
        async with InProcessWorker("etf", registry=registry, threads=4) as w:
            for rid in range(1, 5):  # four blocking calls whose callers give up
                await w.send(
                    {"op": "call", "id": rid, "function": "blocking_wait", "args": [30],
                     "timeout_ms": 20}
                )  # fmt: skip
            for rid in range(1, 5):
                assert (await w.terminal(rid))["error"]["kind"] == "timeout"
            stats = (await w.request({"op": "stats", "id": 10}))["output"]
            assert (stats["inflight"], stats["threads_busy"], stats["threads"]) == (0, 4, 4)
            reply = await w.request({"op": "call", "id": 11, "function": "add_threaded",
                                     "args": [1, 2]})  # fmt: skip
            assert reply["error"]["kind"] == "busy"
            assert reply["error"]["retryable"] is True
            # Inline and async work is unaffected; once threads free up, calls run again.
            assert (await w.request({"op": "call", "id": 12, "function": "add",
                                     "args": [1, 2]}))["output"] == 3  # fmt: skip
            registry.release.set()  # type: ignore[attr-defined]
            for _ in range(500):
                stats = (await w.request({"op": "stats", "id": 13}))["output"]
                if stats["threads_busy"] == 0:
                    break
                await asyncio.sleep(0.01)
            assert stats["threads_busy"] == 0
            assert (await w.request({"op": "call", "id": 14, "function": "add_threaded",
                                     "args": [1, 2]}))["output"] == 3  # fmt: skip

    run(main())
