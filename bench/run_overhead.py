"""The worker's own CPU per run: the full request path in one process, against
``agent.run`` in-process, interleaved in one run.

The port's cost over in-process pydantic-ai is the worker's work per run (frame
decode, agent lookup, the run's bookkeeping, result serialisation and encode) plus
the pipe and the client. This measures the first part without a pipe or a BEAM, so
it is steady enough to tune against on a shared machine: a :class:`~axon_port.worker.Worker`
is built with a ``write`` that collects frames, and each run is one request payload
handed to its dispatcher, awaited until its ``result`` frame is written.

    python bench/run_overhead.py [--runs 100] [--rounds 40] [--history 0] [--stream] [--profile]
                                 [--layers [--history L]]

Prints per-run medians [min-max] for in-process and through the worker, and the
difference (the worker's CPU per run; target <= 0.1 ms). ``--profile`` runs the
worker path under cProfile instead and prints the top functions by own time.
``--layers`` splits the difference, interleaved the same way: pydantic-ai driven as the
worker drives it (``iter()`` node by node), plus the result's serialisation, the
worker's run handler (``AgentService.run``: request parameters, run bookkeeping,
cancellation, the child task), plus encoding the result frame, run in a task of its
own as the dispatcher runs it, plus decoding the request, and the whole path (which
adds the dispatcher's checks and bookkeeping and the framing); with ``--history L``,
also the in-process runs over a fresh copy of the history, without and with the copy.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import pstats
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))

import bench_models
from inproc import salted_wire_history, stream_one
from pydantic_ai.messages import ModelMessagesTypeAdapter

from axon_port._context import RequestContext
from axon_port._framing import FrameDecoder
from axon_port.agents._history_cache import fresh_copy
from axon_port.agents._messages import dump_messages, dump_usage
from axon_port.worker import Worker, WorkerConfig

_TYPE_KEY = b"\x83t"  # map, then (after the arity) the atom `type`


def _kind(payload: bytes) -> bytes | None:
    """The `type` atom of an ETF frame whose first key is `type`, else None."""
    if payload[:2] != _TYPE_KEY or payload[6:11] != b"\x04type" or payload[11] != 119:
        return None
    return payload[13 : 13 + payload[12]]


class _Driver:
    """Feeds request payloads to a Worker and waits for each one's terminal frame."""

    def __init__(self) -> None:
        self.worker = Worker(WorkerConfig(codec="etf", warm=False), self._write)
        self.codec = self.worker.codec
        self._decoder = FrameDecoder(2**32 - 1)
        self._waiting: asyncio.Future[dict[str, Any]] | None = None
        self.chunks = 0

    def _write(self, data: bytes) -> None:
        # The driver is not the worker: a frame's type is read from its first bytes
        # (the worker's ETF encoder writes `type` first) and only frames other than
        # chunks and results are decoded (~4 us a result frame, which would count
        # as the worker's).
        for payload in self._decoder.feed(data):
            kind = _kind(payload)
            if kind == b"chunk":
                self.chunks += 1
            elif kind == b"result" and self._waiting is not None:
                self._waiting.set_result({"type": "result"})
            elif self._waiting is not None:
                frame = self.codec.decode(payload)
                if frame.get("type") in ("result", "error"):
                    self._waiting.set_result(frame)

    async def request(self, payload: bytes) -> dict[str, Any]:
        self._waiting = asyncio.get_running_loop().create_future()
        self.worker.dispatcher.handle_payload(payload)
        frame = await self._waiting
        if frame["type"] != "result":
            raise RuntimeError(f"run failed: {frame}")
        return frame


async def main(args: argparse.Namespace) -> None:
    gc.set_threshold(50_000, 20, 100)
    driver = _Driver()
    wire_history = await salted_wire_history(args.history, "run")
    history = ModelMessagesTypeAdapter.validate_python(wire_history)
    name = "streamer" if args.stream else "cpu"
    agent = bench_models.AGENTS[name]
    params: dict[str, Any] = {"op": "run", "agent": name, "prompt": "hi"}
    if args.stream:
        params["stream"] = True
    if wire_history:
        params["history"] = wire_history
    payloads = [driver.codec.encode_frame({**params, "id": i + 1}) for i in range(args.runs)]

    async def one_inproc() -> None:
        if args.stream:
            await stream_one()  # the Elixir bench's own streaming baseline
        else:
            await agent.run("hi", message_history=history or None)

    async def inproc() -> None:
        for _ in range(args.runs):
            await one_inproc()

    async def port() -> None:
        for p in payloads:
            await driver.request(p)

    for _ in range(20):  # warm both paths
        await one_inproc()
        await driver.request(payloads[0])
    gc.collect()
    gc.freeze()

    if args.layers:
        await layers(args, driver, agent, payloads, history)
        return

    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        await port()
        prof.disable()
        stats = pstats.Stats(prof)
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats("axon_port|pydantic_core|dataclasses|copy", 40)
        return

    times: dict[str, list[float]] = {"in-process": [], "worker": []}
    for _ in range(args.rounds):
        for name, fn in (("in-process", inproc), ("worker", port)):
            t0 = time.process_time()
            await fn()
            times[name].append((time.process_time() - t0) / args.runs * 1e6)

    def show(xs: list[float]) -> str:
        return f"{statistics.median(xs):8.1f} us [{min(xs):.1f}-{max(xs):.1f}]"

    what = "streamed run (100 deltas)" if args.stream else "run"
    print(f"CPU per {what}, {args.runs} x {args.rounds} rounds, history {args.history}:")
    for name, xs in times.items():
        print(f"  {name:12} {show(xs)}")
    diffs = [w - i for w, i in zip(times["worker"], times["in-process"], strict=True)]
    ratio = statistics.median(times["worker"]) / statistics.median(times["in-process"])
    floor = min(times["worker"]) - min(times["in-process"])
    print(f"  {'worker cost':12} {show(diffs)}   ({ratio:.3f}x in-process; target <= 100 us)")
    print(f"  {'min - min':12} {floor:8.1f} us   (the quietest round of each)")


async def layers(
    args: argparse.Namespace,
    driver: _Driver,
    agent: Any,
    payloads: list[bytes],
    history: list[Any],
) -> None:
    """The worker's cost per run split into layers, each adding one part of its path.

    With history, two rows follow in-process: the same runs over a fresh copy of the
    validated history (the copy made outside the timing), then with the copy counted:
    what a cache hit hands a run (``fresh_copy``), against the long-lived objects an
    in-process caller passes."""
    from pydantic_graph import End

    service = driver.worker._agents  # loaded by the warm-up runs
    codec = driver.codec
    # The parameters as the worker's codec hands them over (history kept encoded).
    params = dict(codec.decode(payloads[0]))
    old = history or None

    async def driven(dump: bool) -> Any:
        async with agent.iter("hi", message_history=old) as run:
            node = run.next_node
            while not isinstance(node, End) and run.result is None:
                node = await run.next(node)
        result = run.result
        if dump:
            return dump_usage(result.usage), dump_messages(result.new_messages())
        return result

    async def handler(i: int, encode: bool) -> Any:
        fields = await service.run(RequestContext(driver.worker.dispatcher, "run", i + 1, params))
        return codec.encode_frame({"type": "result", "id": i + 1, **fields}) if encode else fields

    async def decoded(i: int) -> Any:
        codec.decode(payloads[i])
        return await asyncio.ensure_future(handler(i, True))

    def timed(run: Callable[[int], Awaitable[Any]]) -> Callable[[int], Awaitable[float]]:
        async def one(i: int) -> float:
            t0 = time.process_time()
            await run(i)
            return time.process_time() - t0

        return one

    async def over_copy(i: int) -> float:
        copied = fresh_copy(history)
        t0 = time.process_time()
        await agent.run("hi", message_history=copied)
        return time.process_time() - t0

    cases: dict[str, Callable[[int], Awaitable[float]]] = {
        "agent.run (in-process)": timed(lambda i: agent.run("hi", message_history=old))
    }
    if history:
        cases["  over fresh copies (copy not counted)"] = over_copy
        cases["  + copying them"] = timed(
            lambda i: agent.run("hi", message_history=fresh_copy(history))
        )
    cases |= {
        "iter() node by node": timed(lambda i: driven(False)),
        "  + dump messages, usage": timed(lambda i: driven(True)),
        "AgentService.run": timed(lambda i: handler(i, False)),
        "  + encode result frame": timed(lambda i: handler(i, True)),
        "  + in a task of its own": timed(lambda i: asyncio.ensure_future(handler(i, True))),
        "  + decode request": timed(decoded),
        "worker (whole path)": timed(lambda i: driver.request(payloads[i])),
    }
    for fn in cases.values():
        for i in range(20):
            await fn(i % len(payloads))
    gc.collect()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, fn in cases.items():
            total = 0.0
            for i in range(args.runs):
                total += await fn(i)
            times[name].append(total / args.runs * 1e6)
    base = statistics.median(times["agent.run (in-process)"])
    print(
        f"CPU per run by layer, history {args.history}, {args.runs} x {args.rounds} rounds "
        "interleaved:"
    )
    for name, xs in times.items():
        med = statistics.median(xs)
        print(f"  {name:40} {med:9.1f} us [{min(xs):.1f}-{max(xs):.1f}]  {med / base:.3f}x")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--history", type=int, default=0)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--stream", action="store_true", help="streamed runs (100 deltas each)")
    ap.add_argument("--layers", action="store_true", help="split the worker's cost by layer")
    import uvloop

    parsed = ap.parse_args()
    if parsed.stream and parsed.history:
        ap.error("--stream measures runs without history")
    if parsed.layers and parsed.stream:
        ap.error("--layers measures runs, not streams")
    uvloop.run(main(parsed))
