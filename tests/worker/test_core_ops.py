"""The core ops through the real dispatcher and codecs (in-process)."""

from __future__ import annotations

import asyncio

import pytest

from axon_port import Atom
from axon_port.registry import Registry
from axon_port.testing import InProcessWorker
from conftest import run, until

CODECS = ["etf", "msgpack"]


@pytest.mark.parametrize("codec", CODECS)
def test_ready_is_the_first_frame_and_describes_the_worker(codec: str, registry: Registry) -> None:
    async def main() -> None:
        async with InProcessWorker(codec, registry=registry, max_inflight=7) as w:
            ready = w.received[0]
            assert ready["type"] == "ready"
            assert ready["protocol"] == 1
            assert ready["codec"] == codec
            assert ready["limits"] == {"max_frame": 64 * 1024 * 1024, "max_inflight": 7}
            assert set(ready["versions"]) == {"python", "axon_port", "pydantic_ai"}
            assert "run" in ready["capabilities"]

    run(main())


@pytest.mark.parametrize("codec", CODECS)
def test_ping_gets_a_pong_with_the_same_id(codec: str, registry: Registry) -> None:
    async def main() -> None:
        async with InProcessWorker(codec, registry=registry) as w:
            assert await w.request({"op": "ping", "id": 41}) == {"type": "pong", "id": 41}

    run(main())


def test_atom_and_binary_keys_and_ops_are_treated_alike(registry: Registry) -> None:
    async def main() -> None:
        async with InProcessWorker("etf", registry=registry) as w:
            r1 = await w.request({Atom("op"): Atom("call"), Atom("id"): 1,
                                  Atom("function"): "add", Atom("args"): [1, 2]})  # fmt: skip
            r2 = await w.request({"op": "call", "id": 2, "function": Atom("add"), "args": [1, 2]})
            assert r1["output"] == r2["output"] == 3

    run(main())


@pytest.mark.parametrize("name", ["add", "add_threaded"])
def test_call_runs_a_registered_function_inline_or_in_a_thread(
    name: str, registry: Registry
) -> None:
    async def main() -> None:
        async with InProcessWorker("etf", registry=registry) as w:
            reply = await w.request(
                {"op": "call", "id": 5, "function": name, "args": [2], "kwargs": {"b": 40}}
            )
            assert reply == {"type": "result", "id": 5, "output": 42}

    run(main())


def test_call_of_an_unregistered_name_is_unknown_function(registry: Registry) -> None:
    async def main() -> None:
        async with InProcessWorker("etf", registry=registry) as w:
            reply = await w.request({"op": "call", "id": 1, "function": "os.system", "args": []})
            assert reply["type"] == "error"
            assert reply["error"]["kind"] == "unknown_function"
            assert reply["error"]["retryable"] is False

    run(main())


def test_call_with_wrong_arguments_is_a_bad_request(registry: Registry) -> None:
    async def main() -> None:
        async with InProcessWorker("etf", registry=registry) as w:
            reply = await w.request({"op": "call", "id": 1, "function": "add", "args": [1]})
            assert reply["error"]["kind"] == "bad_request"
            assert "b" in reply["error"]["message"]
            reply = await w.request({"op": "call", "id": 2, "function": "add", "args": "x"})
            assert reply["error"]["kind"] == "bad_request"

    run(main())


def test_a_function_that_raises_gets_function_error_and_the_worker_keeps_serving(
    registry: Registry,
) -> None:
    async def main() -> None:
        async with InProcessWorker("etf", registry=registry) as w:
            reply = await w.request({"op": "call", "id": 1, "function": "boom"})
            assert reply["error"]["kind"] == "function_error"
            assert "ValueError: boom" in reply["error"]["message"]
            custom = await w.request({"op": "call", "id": 2, "function": "axon_boom"})
            assert custom["error"] == {"kind": "custom_kind", "message": "custom failure",
                                       "details": {"x": 1}, "retryable": True}  # fmt: skip
            assert (await w.request({"op": "ping", "id": 3}))["type"] == "pong"

    run(main())


def test_an_unencodable_output_is_an_error_frame_not_a_crash(registry: Registry) -> None:
    async def main() -> None:
        async with InProcessWorker("etf", registry=registry) as w:
            reply = await w.request({"op": "call", "id": 1, "function": "returns_set"})
            assert reply["type"] == "error"
            assert reply["error"]["kind"] == "unencodable"
            assert (await w.request({"op": "ping", "id": 2}))["type"] == "pong"

    run(main())


def test_a_slow_call_never_delays_a_ping(registry: Registry) -> None:
    async def main() -> None:
        async with InProcessWorker("etf", registry=registry) as w:
            await w.send({"op": "call", "id": 1, "function": "blocking_wait", "args": [10]})
            await w.send({"op": "call", "id": 2, "function": "sleep_ms", "args": [10_000]})
            assert (await w.request({"op": "ping", "id": 3}, timeout=2))["type"] == "pong"
            assert w.frames(1) == [] and w.frames(2) == []
            registry.release.set()  # type: ignore[attr-defined]
            assert (await w.terminal(1))["output"] == "released"
            await w.send({"op": "cancel", "target": 2})
            assert (await w.terminal(2))["error"]["kind"] == "cancelled"

    run(main())


def test_replies_may_come_in_any_order(registry: Registry) -> None:
    async def main() -> None:
        async with InProcessWorker("msgpack", registry=registry) as w:
            await w.send({"op": "call", "id": 1, "function": "sleep_ms", "args": [200]})
            await w.send({"op": "call", "id": 2, "function": "sleep_ms", "args": [1]})
            first = await w.wait_for(lambda f: f.get("type") == "result")
            assert first["id"] == 2
            assert (await w.terminal(1))["output"] == "slept"

    run(main())


def test_cancel_answers_the_target_with_cancelled_and_unknown_targets_are_harmless(
    registry: Registry,
) -> None:
    async def main() -> None:
        async with InProcessWorker("etf", registry=registry) as w:
            await w.send({"op": "call", "id": 9, "function": "sleep_ms", "args": [60_000]})
            await w.send({"op": "cancel", "target": 12345})
            await w.send({"op": "cancel", "target": 9})
            err = await w.terminal(9)
            assert err["error"]["kind"] == "cancelled"
            await asyncio.sleep(0.01)
            assert [f["type"] for f in w.frames(9)] == ["error"]
            assert w.worker is not None and not w.worker.dispatcher.inflight

    run(main())


def test_timeout_ms_ends_a_request_with_kind_timeout(registry: Registry) -> None:
    async def main() -> None:
        async with InProcessWorker("etf", registry=registry) as w:
            reply = await w.request(
                {"op": "call", "id": 1, "function": "sleep_ms", "args": [60_000], "timeout_ms": 20}
            )
            assert reply["error"]["kind"] == "timeout"
            ok = await w.request(
                {"op": "call", "id": 2, "function": "sleep_ms", "args": [1], "timeout_ms": 5000}
            )
            assert ok["output"] == "slept"

    run(main())


def test_past_max_inflight_new_requests_are_busy_at_once(registry: Registry) -> None:
    async def main() -> None:
        async with InProcessWorker("etf", registry=registry, max_inflight=2) as w:
            for i in (1, 2):
                await w.send({"op": "call", "id": i, "function": "sleep_ms", "args": [60_000]})
            busy = await w.request({"op": "call", "id": 3, "function": "add", "args": [1, 2]})
            assert busy["error"]["kind"] == "busy"
            assert busy["error"]["retryable"] is True
            await w.send({"op": "cancel", "target": 1})
            await w.terminal(1)
            ok = await w.request({"op": "call", "id": 4, "function": "add", "args": [1, 2]})
            assert ok["output"] == 3

    run(main())


def test_a_duplicate_in_flight_id_is_rejected_without_disturbing_the_first(
    registry: Registry,
) -> None:
    async def main() -> None:
        async with InProcessWorker("etf", registry=registry) as w:
            await w.send({"op": "call", "id": 1, "function": "sleep_ms", "args": [50]})
            dup = await w.request({"op": "ping", "id": 1})
            assert dup["error"]["kind"] == "bad_request"
            assert (await w.wait_for(lambda f: f.get("type") == "result"))["output"] == "slept"

    run(main())


@pytest.mark.parametrize(
    ("frame", "want_id"),
    [
        ({"op": "ping"}, None),
        ({"op": "ping", "id": "seven"}, None),
        ({"id": 4}, 4),
        ({"op": "launch_missiles", "id": 5}, 5),
        ({"op": "call", "id": 6}, 6),
        ({"op": "call", "id": 7, "function": "add", "bogus": 1}, 7),
        ([1, 2, 3], None),
        ("just a string", None),
    ],
)
def test_malformed_requests_get_bad_request_with_the_id_when_known(
    frame: object, want_id: int | None, registry: Registry
) -> None:
    async def main() -> None:
        async with InProcessWorker("etf", registry=registry) as w:
            since = len(w.received)
            await w.send(frame)
            err = await w.wait_for(lambda f: f.get("type") == "error", since=since)
            assert err["id"] == want_id
            assert err["error"]["kind"] == "bad_request"
            assert (await w.request({"op": "ping", "id": 100}))["type"] == "pong"

    run(main())


def test_logs_emitted_while_serving_carry_the_request_id(registry: Registry) -> None:
    async def main() -> None:
        async with InProcessWorker("etf", registry=registry) as w:
            await w.request({"op": "call", "id": 77, "function": "chatty"})
            log = next(f for f in w.frames(77) if f["type"] == "log")
            assert log["level"] == "warning"
            assert log["logger"] == "user.chatty"
            assert log["message"] == "hello from chatty"
            assert isinstance(log["time"], float)

    run(main())


def test_set_log_level_changes_what_is_forwarded(registry: Registry) -> None:
    async def main() -> None:
        import logging

        async with InProcessWorker("etf", registry=registry) as w:
            old = logging.getLogger().level
            try:
                r = await w.request({"op": "set_log_level", "id": 1, "level": Atom("error")})
                assert r["output"] == "error"
                await w.request({"op": "call", "id": 2, "function": "chatty"})
                assert [f["type"] for f in w.frames(2)] == ["result"]
                bad = await w.request({"op": "set_log_level", "id": 3, "level": "loud"})
                assert bad["error"]["kind"] == "bad_request"
            finally:
                logging.getLogger().setLevel(old)

    run(main())


def test_stats_counts_served_requests_and_errors_by_kind(registry: Registry) -> None:
    async def main() -> None:
        async with InProcessWorker("etf", registry=registry) as w:
            await w.request({"op": "ping", "id": 1})
            await w.request({"op": "call", "id": 2, "function": "nope"})
            stats = (await w.request({"op": "stats", "id": 3}))["output"]
            assert stats["served"]["ping"] == 1
            assert stats["errors"] == {"unknown_function": 1}
            assert stats["inflight"] == 0  # stats is served inline, not as a task
            assert stats["rss_bytes"] > 0

    run(main())


def test_describe_lists_functions_with_parameter_schemas(registry: Registry) -> None:
    async def main() -> None:
        async with InProcessWorker("etf", registry=registry) as w:
            out = (await w.request({"op": "describe", "id": 1}, timeout=60))["output"]
            add = next(f for f in out["functions"] if f["name"] == "add")
            assert add["parameters"]["properties"]["a"] == {"type": "integer"}
            assert add["parameters"]["required"] == ["a", "b"]

    run(main())


def test_shutdown_finishes_in_flight_work_then_answers(registry: Registry) -> None:
    async def main() -> None:
        async with InProcessWorker("etf", registry=registry) as w:
            await w.send({"op": "call", "id": 1, "function": "sleep_ms", "args": [30]})
            await w.send({"op": "call", "id": 2, "function": "sleep_ms", "args": [60_000]})
            reply = await w.request({"op": "shutdown", "id": 3, "grace_ms": 200})
            assert reply["output"] == {"cancelled": 1}
            assert (await w.terminal(1))["output"] == "slept"
            assert (await w.terminal(2))["error"]["kind"] == "shutdown"
            late = await w.request({"op": "ping", "id": 4})
            assert late["error"]["kind"] == "shutting_down"
            assert w.worker is not None
            await until(lambda: w.worker is not None and w.worker.stopped.is_set())

    run(main())
