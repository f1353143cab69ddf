"""An in-process worker for tests: the real dispatcher and codec, no subprocess.

Theory of operation: :class:`InProcessWorker` builds a :class:`~axon_port.worker.Worker`
whose output is a function that frames, decodes and files every outgoing frame
by id. Requests are encoded with the real codec, framed, and fed back through
:class:`~axon_port._framing.FrameDecoder` exactly as the transport would, so
tests exercise everything but the file descriptors. All waits are bounded.

    async with InProcessWorker(codec="etf") as w:
        assert (await w.request({"op": "ping", "id": 1}))["type"] == "pong"
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from types import TracebackType
from typing import Any

from axon_port._framing import FrameDecoder, encode_frame
from axon_port._logging import FrameLogHandler
from axon_port.messages import REPLY_KEYS, REPLY_TYPES, TERMINAL_TYPES
from axon_port.registry import REGISTRY, Registry
from axon_port.worker import Worker, WorkerConfig

__all__ = ["TERMINAL_TYPES", "InProcessWorker"]

Frame = dict[str, Any]
_REPLY_KEYS = frozenset(REPLY_KEYS)


class InProcessWorker:
    """Drive a real :class:`Worker` in this event loop through its codec."""

    def __init__(
        self,
        codec: str = "etf",
        *,
        registry: Registry | None = None,
        modules: list[str] | None = None,
        forward_logs: bool = True,
        **config: Any,
    ) -> None:
        self.config = WorkerConfig(codec=codec, modules=list(modules or []), **config)
        self.registry = registry if registry is not None else REGISTRY
        self.received: list[Frame] = []
        self._by_id: dict[Any, list[Frame]] = defaultdict(list)
        self._waiters: list[tuple[Callable[[Frame], bool], asyncio.Future[Frame]]] = []
        self._out = FrameDecoder(2**32 - 1)
        self._forward_logs = forward_logs
        self._log_handler: logging.Handler | None = None
        self.worker: Worker | None = None
        self.ready: Frame = {}

    def hold_output(self) -> None:
        """Act like a client that stops reading: ``drain()`` blocks until :meth:`release_output`."""
        self._released.clear()

    def release_output(self) -> None:
        """The client reads again: blocked ``drain()`` calls return."""
        self._released.set()

    async def _drain(self) -> None:
        self.drains += 1
        await self._released.wait()

    async def __aenter__(self) -> InProcessWorker:
        self._released = asyncio.Event()
        self._released.set()
        self.drains = 0
        self.worker = Worker(
            self.config, self._on_output, drain=self._drain, registry=self.registry
        )
        self._decoder = FrameDecoder(self.config.max_frame)
        if self._forward_logs:
            self._log_handler = FrameLogHandler(
                self.worker.dispatcher.send, asyncio.get_running_loop()
            )
            logging.getLogger().addHandler(self._log_handler)
        self.worker.load_modules()
        self.worker.dispatcher.send(self.worker.ready_frame())
        self.ready = self.received[0]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self.worker is not None
        self.worker.dispatcher.cancel_all("shutdown")
        try:
            await asyncio.wait_for(self.worker.dispatcher.wait_idle(), 5)
        finally:
            if self._log_handler is not None:
                logging.getLogger().removeHandler(self._log_handler)
            self.worker.close()

    # -- output side -----------------------------------------------------------

    def _on_output(self, data: bytes) -> None:
        assert self.worker is not None
        for payload in self._out.feed(data):
            assert isinstance(payload, bytes)
            frame = self.worker.codec.decode(payload)
            # Every frame honours the contract's fixed atom list (docs/protocol.md §2).
            assert frame.get("type") in REPLY_TYPES, frame
            assert set(frame) <= _REPLY_KEYS, set(frame) - _REPLY_KEYS
            self.received.append(frame)
            self._by_id[frame.get("id")].append(frame)
            for waiter in list(self._waiters):
                pred, fut = waiter
                if not fut.done() and pred(frame):
                    fut.set_result(frame)
                    self._waiters.remove(waiter)

    def frames(self, req_id: Any) -> list[Frame]:
        """Every frame received so far for ``req_id``, in order."""
        return list(self._by_id.get(req_id, []))

    # -- input side ------------------------------------------------------------

    async def send_bytes(self, data: bytes) -> None:
        """Feed raw bytes to the worker's framer (may hold partial frames)."""
        assert self.worker is not None
        events = self._decoder.feed(data)
        if events:
            self.worker.dispatcher.feed(events)
        await asyncio.sleep(0)

    async def send(self, frame: Any) -> None:
        """Encode ``frame`` with the worker's codec and feed it; no reply awaited."""
        assert self.worker is not None
        await self.send_bytes(encode_frame(self.worker.codec.encode(frame)))

    async def wait_for(
        self, pred: Callable[[Frame], bool], timeout: float = 5.0, *, since: int = 0
    ) -> Frame:
        """The first frame matching ``pred``, among ``received[since:]`` and those to come."""
        for frame in self.received[since:]:
            if pred(frame):
                return frame
        fut: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        entry = (pred, fut)
        self._waiters.append(entry)
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    async def terminal(self, req_id: Any, timeout: float = 5.0, *, since: int = 0) -> Frame:
        """The terminal frame (``result``/``error``/``pong``) for ``req_id``."""
        return await self.wait_for(
            lambda f: f.get("id") == req_id and f.get("type") in TERMINAL_TYPES,
            timeout,
            since=since,
        )

    async def request(self, frame: Frame, timeout: float = 10.0) -> Frame:
        """Send ``frame`` and return its terminal frame (only frames after the send count)."""
        since = len(self.received)
        await self.send(frame)
        return await self.terminal(frame.get("id"), timeout, since=since)
