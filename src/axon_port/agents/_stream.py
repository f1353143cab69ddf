"""pydantic-ai stream events → ``chunk`` frames.

Theory of operation: :class:`EventForwarder` sees every event of a streamed run
(``run_stream_events``) or ``complete`` (``model_request_stream``) and emits
zero or more ``(event, data)`` chunks through a callback; the caller applies
back-pressure (``ctx.drain()``) between events. Only JSON-like data with
binary keys leaves this module. Events and their ``data``:

``part_start``    ``{"index", "part_kind"}`` + ``"tool_name", "tool_call_id"`` for a
                  tool call — a new response part (text, thinking, tool-call, …)
``text_delta``    ``{"index", "delta"}`` — text; concatenating every ``delta`` of an
                  index gives the part's full text (the part's initial content is
                  sent as the first delta)
``thinking_delta``  ``{"index", "delta"}`` — the model's reasoning text, likewise
``part_end``      ``{"index", "part_kind"}`` — the part is complete
``final_result``  ``{"tool_name"}`` — the model has started the final output
                  (``tool_name`` is ``nil`` for text output)
``output_partial``  ``{"output"}`` — the structured output parsed so far, sent only
                  when it changed since the last one, at most every
                  ``partial_interval`` seconds, and always once complete
``tool_call``     ``{"tool_name", "tool_call_id", "args", "remote"}`` — the model
                  called a tool (remote tools additionally get a ``tool_call`` frame)
``tool_result``   ``{"tool_name", "tool_call_id", "content", "outcome"}`` — a tool
                  returned (``outcome`` ``"success"``, ``"failed"``, …)
``retry``         ``{"source": "tool" | "output", "tool_name", "tool_call_id",
                  "message"}`` — a tool call or the output was rejected and the
                  model is asked to try again
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from typing import Any

from pydantic_ai import messages as m
from pydantic_core import from_json

from axon_port.agents._messages import jsonable

__all__ = ["EventForwarder"]

Emit = Callable[[str, Any], None]
_NOTHING = object()


class _Partial:
    """The JSON arguments of a tool-call part as they stream in."""

    __slots__ = ("buf", "call_id", "is_output", "last", "last_at")

    def __init__(self, call_id: str, buf: str) -> None:
        self.call_id = call_id
        self.buf = buf
        self.is_output = False
        self.last: Any = _NOTHING
        self.last_at = float("-inf")


class EventForwarder:
    """Translates one run's (or one request's) stream events to chunks."""

    def __init__(
        self,
        emit: Emit,
        *,
        remote_tools: Collection[str] = (),
        partial_interval: float = 0.05,
    ) -> None:
        self._emit = emit
        self._remote = remote_tools
        self._interval = partial_interval
        self._parts: dict[int, _Partial] = {}

    def handle(self, event: Any) -> None:
        """Emit the chunks for one event (unknown event kinds are ignored)."""
        if isinstance(event, m.PartDeltaEvent):
            self._delta(event.index, event.delta)
        elif isinstance(event, m.PartStartEvent):
            self._start(event.index, event.part)
        elif isinstance(event, m.PartEndEvent):
            self._end(event.index, event.part)
        elif isinstance(event, m.FinalResultEvent):
            self._final(event)
        elif isinstance(event, m.FunctionToolCallEvent):
            part = event.part
            self._emit(
                "tool_call",
                {
                    "tool_name": part.tool_name,
                    "tool_call_id": part.tool_call_id,
                    "args": jsonable(part.args_as_dict()) if _args_ok(part) else part.args,
                    "remote": part.tool_name in self._remote,
                },
            )
        elif isinstance(event, m.ToolResultEvent):
            self._result(event)

    # -- response parts ------------------------------------------------------

    def _start(self, index: int, part: Any) -> None:
        data: dict[str, Any] = {"index": index, "part_kind": part.part_kind}
        if isinstance(part, m.BaseToolCallPart):
            data["tool_name"] = part.tool_name
            data["tool_call_id"] = part.tool_call_id
        self._emit("part_start", data)
        if isinstance(part, m.TextPart) and part.content:
            self._emit("text_delta", {"index": index, "delta": part.content})
        elif isinstance(part, m.ThinkingPart) and part.content:
            self._emit("thinking_delta", {"index": index, "delta": part.content})
        elif isinstance(part, m.ToolCallPart):
            self._parts[index] = _Partial(part.tool_call_id, _args_text(part.args))

    def _delta(self, index: int, delta: Any) -> None:
        if isinstance(delta, m.TextPartDelta):
            if delta.content_delta:
                self._emit("text_delta", {"index": index, "delta": delta.content_delta})
        elif isinstance(delta, m.ThinkingPartDelta):
            if delta.content_delta:
                self._emit("thinking_delta", {"index": index, "delta": delta.content_delta})
        elif isinstance(delta, m.ToolCallPartDelta):
            partial = self._parts.get(index)
            if partial is not None and delta.args_delta:
                if isinstance(delta.args_delta, str):
                    partial.buf += delta.args_delta
                else:
                    partial.buf = _args_text(delta.args_delta)
                if partial.is_output:
                    self._partial(partial, final=False)

    def _end(self, index: int, part: Any) -> None:
        partial = self._parts.pop(index, None)
        if partial is not None and partial.is_output and isinstance(part, m.ToolCallPart):
            partial.buf = _args_text(part.args)
            self._partial(partial, final=True)
        self._emit("part_end", {"index": index, "part_kind": part.part_kind})

    def _final(self, event: m.FinalResultEvent) -> None:
        self._emit("final_result", {"tool_name": event.tool_name})
        if event.tool_name is None:
            return
        for partial in self._parts.values():
            if partial.call_id == event.tool_call_id:
                partial.is_output = True
                self._partial(partial, final=False)

    def _partial(self, partial: _Partial, *, final: bool) -> None:
        try:
            value = from_json(partial.buf or "{}", allow_partial=True)
        except ValueError:
            return
        if value == partial.last:
            return
        now = time.monotonic()
        if not final and now - partial.last_at < self._interval:
            return  # debounced: a later delta or the part's end sends the newer value
        partial.last, partial.last_at = value, now
        self._emit("output_partial", {"output": value})

    # -- tool results ----------------------------------------------------------

    def _result(self, event: m.ToolResultEvent) -> None:
        part = event.part
        is_output = isinstance(event, m.OutputToolResultEvent)
        if part.outcome == "retried":
            self._emit(
                "retry",
                {
                    "source": "output" if is_output else "tool",
                    "tool_name": part.tool_name,
                    "tool_call_id": part.tool_call_id,
                    "message": part.model_response_str(),
                },
            )
        elif not is_output:
            self._emit(
                "tool_result",
                {
                    "tool_name": part.tool_name,
                    "tool_call_id": part.tool_call_id,
                    "content": jsonable(part.content),
                    "outcome": part.outcome,
                },
            )


def _args_text(args: Any) -> str:
    if args is None:
        return ""
    if isinstance(args, str):
        return args
    return m.ToolCallPart("x", args).args_as_json_str()


def _args_ok(part: m.ToolCallPart) -> bool:
    try:
        part.args_as_dict()
    except ValueError:
        return False
    return True
