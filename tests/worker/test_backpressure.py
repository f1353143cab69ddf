"""A client that stops reading pauses streaming runs instead of growing buffers."""

from __future__ import annotations

import asyncio

from axon_port.registry import Registry
from axon_port.testing import InProcessWorker
from conftest import run, until

WORDS = [f"w{i} " for i in range(50)]


def test_a_streaming_run_waits_while_the_client_is_not_reading() -> None:
    async def main() -> None:
        async with InProcessWorker("etf", registry=Registry()) as w:
            w.hold_output()
            spec = {"model": {"provider": "script", "responses": [{"text": WORDS}]}}
            await w.send({"op": "run", "id": 1, "spec": spec, "prompt": "go", "stream": True})
            await until(lambda: any(f["type"] == "chunk" for f in w.frames(1)), timeout=30)
            for _ in range(50):  # give the run every chance to run ahead
                await asyncio.sleep(0)
            held = [f for f in w.frames(1) if f["type"] == "chunk"]
            assert len(held) <= 2, "the run kept producing while drain() was blocked"
            assert not any(f["type"] == "result" for f in w.frames(1))
            w.release_output()
            result = await w.terminal(1, timeout=30)
            assert result["type"] == "result"
            text = "".join(
                f["data"]["delta"]
                for f in w.frames(1)
                if f["type"] == "chunk" and f["event"] == "text_delta"
            )
            assert text == "".join(WORDS)
            assert w.drains >= len(held)

    run(main())
