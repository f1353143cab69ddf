"""In-process baselines for the Elixir-driven bench (``bench/elixir/bench.exs``).

One measurement per process, printed as one JSON line on stdout, so each baseline
starts from a fresh interpreter exactly like a worker does. The agents are the
ones the worker loads (``bench_models``), so both sides run identical code.

    python bench/inproc.py MODE --n N [--tuned] [--history L] [--concurrency C]

MODE: ``seq`` (N sequential ``cpu`` runs), ``serve`` (long-lived: warm up with N ``cpu``
runs, then answer each stdin line ``seq K [L]`` with K sequential ``cpu`` runs, over L
validated history messages if given, and one JSON line, until EOF; the bench
interleaves short batches against long-lived workers),
``concurrent`` (N ``sleepy`` runs at once),
``stream`` (N concurrent ``streamer`` runs, counting text deltas), ``history``
(N sequential ``cpu`` runs, each with the same L validated history messages, as an
in-process caller keeps them). ``--tuned``: uvloop and the worker's GC settings
(``gc.set_threshold(50_000, 20, 100)`` plus ``gc.collect(); gc.freeze()`` after
warm-up, as the worker is after start-up and its warm-up run); default: asyncio
and default GC.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time
from typing import Any

from bench_models import AGENTS
from pydantic_ai import AgentRunResultEvent
from pydantic_ai.messages import (
    ModelMessage,
    ModelMessagesTypeAdapter,
    PartDeltaEvent,
    PartStartEvent,
    TextPart,
    TextPartDelta,
)


async def salted_wire_history(length: int, salt: str) -> list[dict[str, Any]]:
    """``length`` distinct request/response messages (~200-400 B each on the wire) in
    their wire form, built the way ``bench.exs`` builds them: a real run's messages,
    every text content suffixed with ``salt`` and the message's index."""
    base = ModelMessagesTypeAdapter.dump_python(
        (await AGENTS["cpu"].run("hi")).all_messages(), mode="json"
    )
    out = []
    for i in range(length):
        msg = json.loads(json.dumps(base[i % 2]))
        for part in msg["parts"]:
            if isinstance(part.get("content"), str):
                part["content"] = f"{part['content']} {salt} {i}"
        out.append(msg)
    return out


async def salted_history(length: int, salt: str) -> list[ModelMessage]:
    """:func:`salted_wire_history`, validated (as an in-process caller keeps it)."""
    return ModelMessagesTypeAdapter.validate_python(await salted_wire_history(length, salt))


async def seq(n: int, history: list[ModelMessage] | None) -> None:
    agent = AGENTS["cpu"]
    for _ in range(n):
        r = await agent.run("hi", message_history=history or None)
        assert r.output == "done"


async def concurrent(n: int) -> None:
    agent = AGENTS["sleepy"]
    rs = await asyncio.gather(*(agent.run("hi") for _ in range(n)))
    assert all(r.output == "done" for r in rs)


async def stream_one() -> int:
    deltas = 0
    async with AGENTS["streamer"].run_stream_events("hi") as events:
        async for ev in events:
            if (isinstance(ev, PartDeltaEvent) and isinstance(ev.delta, TextPartDelta)) or (
                isinstance(ev, PartStartEvent) and isinstance(ev.part, TextPart) and ev.part.content
            ):
                deltas += 1
            elif isinstance(ev, AgentRunResultEvent):
                assert ev.result.output
    return deltas


async def streams(n: int) -> int:
    return sum(await asyncio.gather(*(stream_one() for _ in range(n))))


async def serve(warm: int, tuned: bool) -> None:
    """``seq K [L]`` per stdin line, one JSON line each, after ``warm`` warm-up runs.

    A history of L messages is built (and validated) the first time L is asked for,
    outside the timing, then kept, as an in-process caller keeps its conversation."""
    await seq(warm, None)
    if tuned:
        gc.collect()
        gc.freeze()
    histories: dict[int, list[ModelMessage]] = {}
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        cmd, *args = line.split()
        if cmd != "seq" or len(args) not in (1, 2):
            raise SystemExit(f"serve: unknown command {line!r}")
        length = int(args[1]) if len(args) == 2 else 0
        if length and length not in histories:
            histories[length] = await salted_history(length, "inproc")
            await seq(1, histories[length])
            if tuned:
                gc.collect()
                gc.freeze()
        cpu0, t0 = time.process_time(), time.perf_counter()
        await seq(int(args[0]), histories.get(length))
        secs, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        print(json.dumps({"secs": secs, "cpu": cpu}), flush=True)


async def main(args: argparse.Namespace) -> dict[str, Any] | None:
    if args.mode == "serve":
        await serve(args.n, args.tuned)
        return None
    # Warm both agents' first-run paths, as the worker's warm-up and the bench's
    # own warm-up runs do.
    await AGENTS["cpu"].run("hi")
    await AGENTS[{"concurrent": "sleepy", "stream": "streamer"}.get(args.mode, "cpu")].run("hi")
    history = await salted_history(args.history, "inproc") if args.mode == "history" else None
    if args.tuned:
        gc.collect()
        gc.freeze()
    cpu0, t0 = time.process_time(), time.perf_counter()
    extra: dict[str, Any] = {}
    if args.mode in ("seq", "history"):
        await seq(args.n, history)
    elif args.mode == "concurrent":
        await concurrent(args.n)
    elif args.mode == "stream":
        extra["deltas"] = await streams(args.n)
    else:
        raise SystemExit(f"unknown mode {args.mode}")
    return {"secs": time.perf_counter() - t0, "cpu": time.process_time() - cpu0, **extra}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("mode")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--history", type=int, default=0)
    ap.add_argument("--tuned", action="store_true")
    a = ap.parse_args()
    if a.tuned:
        gc.set_threshold(50_000, 20, 100)
        import uvloop

        out = uvloop.run(main(a))
    else:
        out = asyncio.run(main(a))
    if out is not None:
        print(json.dumps(out))
