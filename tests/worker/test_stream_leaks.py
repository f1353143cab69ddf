"""Streamed runs that end by cancel or timeout leave no task behind."""

from __future__ import annotations

import asyncio
import random

from agents_fixtures import run, worker


def test_a_hundred_concurrent_streams_ending_by_timeout_or_cancel_leak_no_task() -> None:
    rng = random.Random(7)

    async def main() -> None:
        async with worker("etf") as w:
            slow = {
                "provider": "script",
                "responses": [{"text": ["a", "b", "c", "d"], "chunk_delay_ms": 5}],
            }
            spec = {"model": slow}
            # Warm up, then take the baseline.
            await w.request({"op": "run", "id": 1, "spec": spec, "prompt": "x", "stream": True})
            await asyncio.sleep(0.05)
            baseline = len(asyncio.all_tasks())
            next_id = 10
            total = 0
            for _round in range(20):
                ids = []
                for _ in range(100):
                    rid = next_id
                    next_id += 1
                    ids.append(rid)
                    frame = {"op": "run", "id": rid, "spec": spec, "prompt": "x", "stream": True,
                             "timeout_ms": rng.randint(1, 15)}  # fmt: skip
                    await w.send(frame)
                    if rng.random() < 0.3:
                        await asyncio.sleep(0)
                        await w.send({"op": "cancel", "target": rid})
                for rid in ids:
                    await w.terminal(rid, timeout=30)
                total += len(ids)
            stats = (await w.request({"op": "stats", "id": 2}))["output"]
            assert stats["inflight"] == 0
            for _ in range(200):  # let cancelled internals finish unwinding (bounded)
                if len(asyncio.all_tasks()) <= baseline:
                    break
                await asyncio.sleep(0.01)
            leaked = len(asyncio.all_tasks()) - baseline
            assert leaked <= 0, f"{leaked} tasks leaked after {total} interrupted streams"

    run(main())
