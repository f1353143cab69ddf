"""The dispatcher: ids, in-flight tasks, cancellation, and the one exception-to-wire mapping.

Theory of operation: the transport hands :meth:`Dispatcher.feed` framing events
(payload ``bytes`` or oversize/truncated markers). Each payload is decoded and
its envelope checked; every failure along the way becomes an ``error`` frame
and the loop moves on. A valid request is looked up in the handler table
(filled in by the server; this module knows no op semantics) and served:

* a handler returns either the fields of its terminal frame (served inline, for
  cheap ops like ``ping``) or an awaitable, which runs in its own task;
* ``cancel`` and ``timeout_ms`` are implemented here, for every op: the
  context's ``cancel_reason`` is set, then the task is cancelled;
* whatever happens, :meth:`_finish` sends exactly one terminal frame per id,
  built by :func:`error_payload` for failures.

Outgoing frames go through one ``write`` callable (the transport's writer);
``drain`` lets a producer wait while the output buffer is above its mark.

What a handler sees (:class:`RequestContext`, :data:`current_request_id`) lives in
``axon_port._context`` and the exception-to-wire mapping (:func:`error_payload`,
:func:`interrupted_error`) in ``axon_port._wire_errors``; both are re-exported here,
which is where the rest of the package imports them from.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from axon_port._context import Fields, Handler, Notification, RequestContext, current_request_id
from axon_port._framing import OversizeFrame, TruncatedFrame, encode_frame
from axon_port._wire_errors import error_payload, interrupted_error
from axon_port.codecs import Codec
from axon_port.errors import AxonError, BadFrame, BadRequest, Busy, EncodeError
from axon_port.messages import NOTIFICATION_OPS, check_fields, parse_request

__all__ = [
    "Dispatcher",
    "Handler",
    "RequestContext",
    "current_request_id",
    "error_payload",
    "interrupted_error",
]

logger = logging.getLogger(__name__)


class _Inflight:
    __slots__ = ("ctx", "task", "timer")

    def __init__(self, ctx: RequestContext) -> None:
        self.ctx = ctx
        self.task: asyncio.Task[Fields] | None = None
        self.timer: asyncio.TimerHandle | None = None


async def _no_drain() -> None:
    return None


class Dispatcher:
    """Owns request ids, in-flight tasks and cancellation; knows no op semantics."""

    def __init__(
        self,
        codec: Codec,
        write: Callable[[bytes], None],
        *,
        drain: Callable[[], Awaitable[None]] = _no_drain,
        max_inflight: int = 10_000,
    ) -> None:
        self.codec = codec
        self._write = write
        self._drain = drain
        self.max_inflight = max_inflight
        self._handlers: dict[str, tuple[Handler, str]] = {}
        self._closing_ops: set[str] = set()
        self._rid: int | None = None  # the id being started, for handle_payload's net
        self._notifications: dict[str, Notification] = {}
        self.inflight: dict[int, _Inflight] = {}
        self.accepting = True
        self.served: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.started = time.monotonic()

    # -- registration ------------------------------------------------------

    def register(
        self, op: str, handler: Handler, *, reply: str = "result", closes: bool = False
    ) -> None:
        """Serve ``op`` with ``handler``; its success frame has type ``reply``.

        ``closes``: once such a request is accepted, every later request is answered
        ``shutting_down`` (even those decoded in the same batch)."""
        self._handlers[op] = (handler, reply)
        if closes:
            self._closing_ops.add(op)

    def register_notification(self, op: str, handler: Notification) -> None:
        """Route ``op`` (no id of its own, no reply) to ``handler``."""
        self._notifications[op] = handler

    # -- output --------------------------------------------------------------

    def send(self, frame: Fields) -> None:
        """Encode and write one frame; an unencodable frame becomes an ``error`` frame.

        Never raises: a terminal frame always leaves as itself or as an ``error``."""
        try:
            payload = self.codec.encode_frame(frame)
        except Exception as exc:
            if not isinstance(exc, EncodeError):  # a codec bug: still answer the id
                exc = EncodeError(f"cannot encode frame: {type(exc).__name__}: {exc}")
            if frame.get("type") not in ("result", "error", "pong"):
                logger.warning("dropped an unencodable %s frame: %s", frame.get("type"), exc)
                return
            self.errors[exc.kind] += 1
            err = {
                "kind": exc.kind, "message": exc.message[:2000], "details": None,
                "retryable": False,
            }  # fmt: skip
            payload = self.codec.encode_frame({"type": "error", "id": frame.get("id"),
                                               "error": err})  # fmt: skip
        self._write(encode_frame(payload))

    async def drain(self) -> None:
        """Wait until the transport's output buffer is below its high-water mark."""
        await self._drain()

    def _send_error(self, req_id: int | None, exc: BaseException) -> None:
        err = error_payload(exc)
        self.errors[err["kind"]] += 1
        self.send({"type": "error", "id": req_id, "error": err})

    # -- input ---------------------------------------------------------------

    def feed(self, events: list[bytes | OversizeFrame | TruncatedFrame]) -> None:
        """Serve a batch of framing events, in order."""
        for event in events:
            if isinstance(event, bytes):
                # handle_payload() inlined: one Python call fewer per request.
                self._rid = None
                try:
                    self._handle_payload(event)
                except Exception as exc:
                    self._payload_failed(exc)
                continue
            try:
                self._frame_event(event)
            except Exception:
                logger.exception("framing event %r could not be answered", event)

    def _frame_event(self, event: OversizeFrame | TruncatedFrame) -> None:
        if isinstance(event, OversizeFrame):
            self._send_error(
                None,
                BadFrame(
                    f"frame of {event.size} bytes exceeds max_frame ({event.max_frame}); skipped",
                    details={"size": event.size, "max_frame": event.max_frame},
                ),
            )
        elif isinstance(event, TruncatedFrame):
            logger.warning("input ended inside a frame (%d bytes buffered)", event.buffered)

    def handle_payload(self, payload: bytes) -> None:
        """Decode one payload and serve it. Never raises: whatever goes wrong between
        decoding and the reply becomes that request's ``internal`` error."""
        self._rid = None
        try:
            self._handle_payload(payload)
        except Exception as exc:
            self._payload_failed(exc)

    def _payload_failed(self, exc: Exception) -> None:
        """The net under :meth:`_handle_payload`: answer the id it was starting (if any)."""
        rid, self._rid = self._rid, None
        logger.error("request %s failed before it started: %s", rid, type(exc).__name__)
        entry = self.inflight.get(rid) if rid is not None else None
        if entry is not None:
            if entry.task is not None:  # its task will answer it
                return
            del self.inflight[entry.ctx.id]  # registered, never started
        self._send_error(rid, exc)

    def _handle_payload(self, payload: bytes) -> None:
        try:
            term = self.codec.decode(payload)
        except AxonError as exc:
            self._send_error(None, exc)
            return
        try:
            request = parse_request(term)
        except BadRequest as exc:
            rid = exc.details.get("id") if isinstance(exc.details, dict) else None
            self._send_error(rid, exc)
            return
        op, params = request.op, request.params
        if op in NOTIFICATION_OPS:
            self._notify(op, params)
            return
        req_id = request.id
        assert req_id is not None
        self._rid = req_id
        entry = self._handlers.get(op)
        if (
            entry is None
            or req_id in self.inflight
            or not self.accepting
            or len(self.inflight) >= self.max_inflight
        ):
            self._refuse(op, req_id)
            return
        if op in self._closing_ops:
            self.accepting = False
        handler, reply = entry
        # Started here rather than in a helper: every request takes this path.
        ctx = RequestContext(self, op, req_id, params)
        token = current_request_id.set(req_id)
        try:
            check_fields(op, params)
            outcome = handler(ctx)
        except BaseException as exc:
            self.served[op] += 1
            self._send_error(req_id, exc)
            if not isinstance(exc, Exception):
                raise
            return
        finally:
            current_request_id.reset(token)
        if isinstance(outcome, dict):
            # The terminal frame's fields: answered now, without a task or in-flight entry.
            self.served[op] += 1
            self.send({"type": reply, "id": req_id, **outcome})
            return
        self._start_task(ctx, reply, outcome)

    def _refuse(self, op: str, req_id: int) -> None:
        """Answer a well-formed request that cannot be started now."""
        if op not in self._handlers:
            exc: AxonError = BadRequest(f"op {op!r} is not served by this worker")
        elif req_id in self.inflight:
            exc = BadRequest(f"id {req_id} is already in flight")
        elif not self.accepting:
            exc = AxonError("worker is shutting down", kind="shutting_down", retryable=True)
        else:
            exc = Busy(
                f"{len(self.inflight)} requests in flight (max_inflight {self.max_inflight})"
            )
        self._send_error(req_id, exc)

    def _notify(self, op: str, params: Mapping[str, Any]) -> None:
        if op == "cancel":
            self.cancel(params["target"], "cancelled")
            return
        handler = self._notifications.get(op)
        try:
            check_fields(op, params)
            if handler is None:
                raise BadRequest(f"op {op!r} is not served by this worker")
            handler(params)
        except Exception as exc:
            logger.warning("%s ignored: %s", op, exc)

    def _start_task(self, ctx: RequestContext, reply: str, outcome: Awaitable[Fields]) -> None:
        """Run ``outcome`` in its own task, in flight under ``ctx.id`` until :meth:`_finish`."""
        inflight = _Inflight(ctx)
        self.inflight[ctx.id] = inflight
        # The task copies the current context: set the id for it (and its logs).
        token = current_request_id.set(ctx.id)
        try:
            task = asyncio.ensure_future(outcome)
        finally:
            current_request_id.reset(token)
        inflight.task = task
        task.add_done_callback(lambda t: self._finish(inflight, reply, t))
        timeout_ms = ctx.params.get("timeout_ms")  # checked by check_fields: 1..MAX_MS
        if timeout_ms is not None:
            loop = asyncio.get_running_loop()
            inflight.timer = loop.call_later(timeout_ms / 1000, self.cancel, ctx.id, "timeout")

    def _finish(self, inflight: _Inflight, reply: str, task: asyncio.Task[Fields]) -> None:
        try:
            self._finish_inner(inflight, reply, task)
        except Exception as exc:
            self.inflight.pop(inflight.ctx.id, None)
            logger.error("request %s: reply failed: %s", inflight.ctx.id, type(exc).__name__)
            self._send_error(inflight.ctx.id, exc)

    def _finish_inner(self, inflight: _Inflight, reply: str, task: asyncio.Task[Fields]) -> None:
        ctx = inflight.ctx
        if self.inflight.get(ctx.id) is not inflight:
            return  # abandoned (answered already) by abandon_all()
        del self.inflight[ctx.id]
        if inflight.timer is not None:
            inflight.timer.cancel()
        self.served[ctx.op] += 1
        if task.cancelled():
            self._send_error(ctx.id, interrupted_error(ctx.cancel_reason))
            return
        exc = task.exception()
        if exc is not None:
            self._send_error(ctx.id, exc)
            return
        fields = task.result()
        if not isinstance(fields, dict):
            self._send_error(ctx.id, TypeError(f"handler returned {type(fields).__name__}"))
            return
        self.send({"type": reply, "id": ctx.id, **fields})

    # -- control -------------------------------------------------------------

    def cancel(self, req_id: int, reason: str) -> bool:
        """Cancel in-flight request ``req_id`` with ``reason``; False if it is not in flight."""
        inflight = self.inflight.get(req_id)
        if inflight is None or inflight.task is None:
            if reason == "cancelled":
                logger.info("cancel: request %s is not in flight", req_id)
            return False
        if inflight.ctx.cancel_reason is None:
            inflight.ctx.cancel_reason = reason
        inflight.task.cancel()
        return True

    def cancel_all(self, reason: str, *, exclude: int | None = None) -> int:
        """Cancel every in-flight request (but ``exclude``); returns how many."""
        targets = [rid for rid in self.inflight if rid != exclude]
        for rid in targets:
            self.cancel(rid, reason)
        return len(targets)

    def abandon_all(self, reason: str) -> int:
        """Answer every request still in flight with ``reason`` now, without waiting for
        its task (which may ignore cancellation); their later outcomes are dropped."""
        stuck = list(self.inflight.values())
        self.inflight.clear()
        for entry in stuck:
            if entry.timer is not None:
                entry.timer.cancel()
            self.served[entry.ctx.op] += 1
            self._send_error(entry.ctx.id, interrupted_error(reason))
        return len(stuck)

    async def wait_idle(self, *, exclude: int | None = None) -> None:
        """Wait until no request (other than ``exclude``) is in flight."""
        while any(rid != exclude for rid in self.inflight):
            tasks = [f.task for rid, f in self.inflight.items() if rid != exclude and f.task]
            if not tasks:
                return
            await asyncio.wait(tasks)
            # Done callbacks run on the next loop iteration; let them clear the table.
            await asyncio.sleep(0)

    def stats(self) -> Fields:
        """Counters for ``stats``: in-flight, served by op, errors by kind, uptime."""
        return {
            "inflight": len(self.inflight),
            "served": dict(self.served),
            "served_total": sum(self.served.values()),
            "errors": dict(self.errors),
            "uptime_ms": int((time.monotonic() - self.started) * 1000),
        }
