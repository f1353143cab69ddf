"""Typed request envelopes, validated once at the boundary.

Theory of operation: a decoded payload is any term. :func:`parse_request`
turns it into a :class:`Request` (op, id, params) or raises
:class:`~axon_port.errors.BadRequest` carrying whatever ``id`` could be
recovered, so the error frame still reaches the right caller. Keys and enum
values may arrive as atoms or binaries (``Atom`` is a ``str`` subclass, so
both compare equal); ``op`` is normalised to a plain ``str``. Only the
envelope is checked here: each op's own fields are checked by its handler
against :data:`OP_FIELDS`. This module knows the op *names*, not what they do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from axon_port.errors import BadRequest

__all__ = [
    "NOTIFICATION_OPS",
    "OP_FIELDS",
    "REPLY_KEYS",
    "REPLY_TYPES",
    "TERMINAL_TYPES",
    "Request",
    "check_fields",
    "parse_request",
]

# Every frame type the worker emits, and every top-level key of its frames: the
# only atoms it ever writes (besides nil/true/false). Clients pre-create them so
# binary_to_term(bin, [:safe]) succeeds; adding one is a protocol change.
REPLY_TYPES = ("ready", "pong", "result", "error", "chunk", "tool_call", "log")
# The frame types that end a request: exactly one per id it opens.
TERMINAL_TYPES = frozenset({"result", "error", "pong"})
REPLY_KEYS = (
    "type", "id", "protocol", "codec", "pid", "versions", "limits", "capabilities",
    "output", "usage", "messages", "elapsed_ms", "error", "seq", "event", "data",
    "call_id", "tool", "args", "level", "logger", "message", "time",
)  # fmt: skip

# Ops that do not open an id of their own and get no reply.
NOTIFICATION_OPS = frozenset({"cancel", "tool_result"})

# op -> (required fields, optional fields), besides "op" and "id".
OP_FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "ping": (frozenset(), frozenset()),
    "define_agent": (frozenset({"name", "spec"}), frozenset()),
    "run": (
        frozenset({"prompt"}),
        frozenset(
            {
                "agent",
                "spec",
                "history",
                "deps",
                "model_settings",
                "usage_limits",
                "stream",
                "timeout_ms",
                "model",
                "instructions",
                "metadata",
                "usage",
            }
        ),
    ),
    "complete": (
        frozenset({"model", "messages"}),
        frozenset({"tools", "model_settings", "stream", "timeout_ms", "output_schema"}),
    ),
    "tool_result": (frozenset({"call_id"}), frozenset({"ok", "error", "retry"})),
    "call": (frozenset({"function"}), frozenset({"args", "kwargs", "timeout_ms"})),
    "cancel": (frozenset({"target"}), frozenset()),
    "describe": (frozenset(), frozenset()),
    "shutdown": (frozenset(), frozenset({"grace_ms"})),
    "stats": (frozenset(), frozenset()),
    "set_log_level": (frozenset({"level"}), frozenset()),
}


@dataclass(slots=True)
class Request:
    """One decoded request: ``op``, the ``id`` it opens (``None`` for ``cancel``), its params."""

    op: str
    id: int | None
    params: Mapping[str, Any]


def _is_int(value: Any) -> bool:
    return type(value) is int


def parse_request(term: Any) -> Request:
    """Validate the envelope of a decoded term. Raises ``BadRequest`` (``details["id"]``)."""
    if not isinstance(term, dict):
        raise BadRequest(f"a request must be a map, got {type(term).__name__}")
    raw_id = term.get("id")
    req_id = raw_id if _is_int(raw_id) else None
    raw_op = term.get("op")
    if not isinstance(raw_op, str):
        raise BadRequest("a request needs an op (atom or binary)", details={"id": req_id})
    # The canonical plain str for a known op (an Atom key finds it too).
    op = _OP_NAMES.get(raw_op)
    if op is None:
        op = str(raw_op)
    elif op == "cancel":
        if not _is_int(term.get("target")):
            raise BadRequest("cancel needs an integer target", details={"id": req_id})
        return Request(op, None, term)
    if req_id is None:
        what = "missing" if raw_id is None else f"not an integer ({type(raw_id).__name__})"
        raise BadRequest(f"request id is {what}", details={"id": None, "op": op})
    if op not in _OP_NAMES:
        raise BadRequest(f"unknown op {op!r}", details={"id": req_id, "op": op})
    return Request(op, req_id, term)


def check_fields(op: str, params: Mapping[str, Any]) -> None:
    """Raise ``BadRequest`` if ``params`` lacks a required field or has an unknown one."""
    allowed, required = _ALLOWED[op]
    keys = params.keys()
    # Atom keys hash and compare like str, so these set tests run at C speed.
    if keys <= allowed and required <= keys:
        return
    names = {str(k) for k in keys}
    missing = required - names
    if missing:
        raise BadRequest(f"{op}: missing field(s) {', '.join(sorted(missing))}")
    unknown = names - allowed
    raise BadRequest(f"{op}: unknown field(s) {', '.join(sorted(unknown))}")


_OP_NAMES = {op: op for op in OP_FIELDS}
_ALLOWED = {
    op: (required | optional | {"op", "id"}, required)
    for op, (required, optional) in OP_FIELDS.items()
}
