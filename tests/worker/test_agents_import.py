"""Agent ops wait for the background import of the agents layer; cancelling one waiting
request must not break the import for every request after it."""

from __future__ import annotations

from concurrent.futures import Future

from waiting import run

import axon_port.agents
from axon_port.registry import Registry
from axon_port.testing import InProcessWorker


def test_a_request_cancelled_while_the_agents_import_is_pending_does_not_poison_it() -> None:
    async def main() -> None:
        async with InProcessWorker("etf", registry=Registry()) as w:
            assert w.worker is not None
            pending: Future[object] = Future()
            # The import has not finished yet (as right after `ready`).
            w.worker._agents_import = pending
            spec = {"model": "test"}
            first = await w.request(
                {"op": "run", "id": 1, "spec": spec, "prompt": "x", "timeout_ms": 20}
            )
            assert first["error"]["kind"] == "timeout"
            pending.set_result(axon_port.agents)  # the import completes after all
            later = await w.request({"op": "run", "id": 2, "spec": spec, "prompt": "x"})
            assert later["type"] == "result", later
            called = await w.request({"op": "complete", "id": 3, "model": "test", "messages": "hi"})
            assert called["type"] == "result", called

    run(main())
