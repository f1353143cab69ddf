"""What a handler sees of its request: :class:`RequestContext` and the id in context.

Theory of operation: the dispatcher builds one :class:`RequestContext` per request
it starts and passes it to the op's handler. Through it a handler reads its op, id
and params, sends non-terminal frames (``chunk``, ``tool_call``) and waits on
back-pressure; it never writes the terminal frame, which is the dispatcher's job.
While a handler runs, :data:`current_request_id` holds its id, so log records
(``axon_port._logging``) are tagged with it. The dispatcher re-exports these names.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

__all__ = ["Fields", "FrameSink", "Handler", "Notification", "RequestContext", "current_request_id"]

Fields = dict[str, Any]

#: The id of the request being served in this context (``None`` outside one).
current_request_id: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "axon_port_request_id", default=None
)

#: A handler gets the request context and returns its terminal fields, or an
#: awaitable of them (then it runs in its own task).
Handler = Callable[["RequestContext"], "Fields | Awaitable[Fields]"]
Notification = Callable[[Mapping[str, Any]], None]


class FrameSink(Protocol):
    """What a context needs of the dispatcher: the output and its back-pressure."""

    def send(self, frame: Fields) -> None: ...

    async def drain(self) -> None: ...


class RequestContext:
    """What a handler sees of its request and of the wire."""

    __slots__ = ("_dispatcher", "_seq", "cancel_reason", "id", "op", "params")

    def __init__(self, dispatcher: FrameSink, op: str, req_id: int, params: Mapping[str, Any]):
        self._dispatcher = dispatcher
        self.op = op
        self.id = req_id
        self.params = params
        #: Set to ``"cancelled"``, ``"timeout"`` or ``"shutdown"`` before the task is cancelled.
        self.cancel_reason: str | None = None
        self._seq = 0

    def send(self, type_: str, fields: Fields) -> None:
        """Send a non-terminal frame of ``type_`` for this request (e.g. ``tool_call``)."""
        self._dispatcher.send({"type": type_, "id": self.id, **fields})

    def chunk(self, event: str, data: Any) -> None:
        """Send a ``chunk`` frame with the next ``seq`` (0, 1, 2, ... per request)."""
        seq = self._seq
        self._seq += 1
        self._dispatcher.send(
            {"type": "chunk", "id": self.id, "seq": seq, "event": event, "data": data}
        )

    async def drain(self) -> None:
        """Wait while the output buffer is above its high-water mark (back-pressure)."""
        await self._dispatcher.drain()
