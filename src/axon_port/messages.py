"""Typed request envelopes, validated once at the boundary.

Theory of operation: a decoded payload is any term. :func:`parse_request`
turns it into a :class:`Request` (op, id, params) or raises
:class:`~axon_port.errors.BadRequest` carrying whatever ``id`` could be
recovered, so the error frame still reaches the right caller. Keys and enum
values may arrive as atoms or binaries (``Atom`` is a ``str`` subclass, so
both compare equal); ``op`` is normalised to a plain ``str``. Only the
envelope is checked by :func:`parse_request`; :func:`check_fields` then checks
every field of the op against :data:`OP_FIELDS` (presence, type, range), once,
before any handler runs. Ids must be integers in ``ID_MIN..ID_MAX``; an id out
of that range is answered with ``id`` ``nil``. This module knows the op *names*,
not what they do.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from axon_port._types import EncodedTerms
from axon_port.errors import BadRequest

__all__ = [
    "ID_MAX",
    "ID_MIN",
    "KEPT_ENCODED",
    "MAX_MS",
    "NOTIFICATION_OPS",
    "OP_FIELDS",
    "REPLY_KEYS",
    "REPLY_TYPES",
    "TERMINAL_TYPES",
    "Field",
    "Kind",
    "Request",
    "check_fields",
    "describe_value",
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
    "call_id", "tool", "args", "level", "logger", "message", "time", "deferred",
)  # fmt: skip

# Ops that do not open an id of their own and get no reply.
NOTIFICATION_OPS = frozenset({"cancel", "tool_result"})

#: Ids (and ``cancel`` targets) are integers in this range: 64-bit, either sign,
#: so every codec can echo them back.
ID_MIN, ID_MAX = -(2**63), 2**64 - 1
#: ``timeout_ms`` and ``grace_ms`` are at most this (Erlang's largest timer, ~24.8 days).
MAX_MS = 2**31 - 1
_NAME_MAX = 255
_MODEL_NAME_MAX = 1024


class Kind(enum.Enum):
    """What a request field may hold (``None`` is always allowed for optional fields)."""

    ANY = "any"
    BOOL = "boolean"
    NAME = "non-empty atom or binary of at most 255 characters"
    TEXT = "binary"
    MAP = "map"
    LIST = "list"
    MAP_OR_NAME = "map, atom or binary"
    PROMPT = "binary, content-part map, or list of them"
    TIMEOUT = f"integer in 1..{MAX_MS}"
    GRACE = f"integer in 0..{MAX_MS}"
    ID = f"integer in {ID_MIN}..{ID_MAX}"


@dataclass(frozen=True, slots=True)
class Field:
    """One request field: its kind and whether it must be present."""

    kind: Kind
    required: bool = False


def _f(kind: Kind) -> Field:
    return Field(kind, required=True)


_opt = Field

#: The request field a worker's ETF codec keeps encoded (``EtfCodec(keep_encoded=...)``):
#: a ``run``'s ``history`` arrives as an ``EncodedTerms`` (each message's own bytes),
#: which the agents layer validates through its cache without decoding what it holds.
KEPT_ENCODED = "history"

# op -> field -> Field, besides "op" and "id". The one table every field is checked
# against, once, before a handler runs.
OP_FIELDS: dict[str, dict[str, Field]] = {
    "ping": {},
    "define_agent": {"name": _f(Kind.NAME), "spec": _f(Kind.ANY)},
    "run": {
        "prompt": _f(Kind.PROMPT),
        "agent": _opt(Kind.NAME),
        "spec": _opt(Kind.ANY),
        "history": _opt(Kind.LIST),
        "deps": _opt(Kind.ANY),
        "model_settings": _opt(Kind.MAP),
        "usage_limits": _opt(Kind.MAP),
        "stream": _opt(Kind.BOOL),
        "timeout_ms": _opt(Kind.TIMEOUT),
        "deferred_tool_results": _opt(Kind.MAP),
        "model": _opt(Kind.MAP_OR_NAME),
        "instructions": _opt(Kind.ANY),
        "metadata": _opt(Kind.MAP),
        "usage": _opt(Kind.MAP),
    },
    "complete": {
        "model": _f(Kind.MAP_OR_NAME),
        "messages": _f(Kind.ANY),  # a prompt binary or a message list: the agents layer checks
        "tools": _opt(Kind.LIST),
        "model_settings": _opt(Kind.MAP),
        "stream": _opt(Kind.BOOL),
        "timeout_ms": _opt(Kind.TIMEOUT),
        "output_schema": _opt(Kind.MAP),
    },
    "tool_result": {
        "call_id": _f(Kind.TEXT),
        "ok": _opt(Kind.ANY),
        "error": _opt(Kind.ANY),
        "retry": _opt(Kind.BOOL),
    },
    "call": {
        "function": _f(Kind.NAME),
        "args": _opt(Kind.LIST),
        "kwargs": _opt(Kind.MAP),
        "timeout_ms": _opt(Kind.TIMEOUT),
    },
    "cancel": {"target": _f(Kind.ID)},
    "describe": {},
    "shutdown": {"grace_ms": _opt(Kind.GRACE)},
    "stats": {},
    "set_log_level": {"level": _f(Kind.NAME)},
}


def _int_in(value: Any, lo: int, hi: int) -> bool:
    return type(value) is int and lo <= value <= hi


def _is_name(value: Any, most: int = _NAME_MAX) -> bool:
    return isinstance(value, str) and 0 < len(value) <= most


# One checker per kind, looked up once per field when the tables below are built: a
# request's check is then one call per field it carries, with no chain of kind tests.
_CHECKS: dict[Kind, Callable[[Any], bool]] = {
    Kind.ANY: lambda value: True,
    Kind.BOOL: lambda value: type(value) is bool,
    Kind.NAME: _is_name,
    Kind.TEXT: lambda value: isinstance(value, str),
    Kind.MAP: lambda value: isinstance(value, dict),
    # EncodedTerms: a list the codec kept encoded (``history``).
    Kind.LIST: lambda value: isinstance(value, (list, tuple, EncodedTerms)),
    # A model spec's name ("provider:model") may be longer than other names.
    Kind.MAP_OR_NAME: lambda value: isinstance(value, dict) or _is_name(value, _MODEL_NAME_MAX),
    # Each part's shape is checked by the agents layer, which names it by index.
    Kind.PROMPT: lambda value: isinstance(value, str | Mapping | list),
    Kind.TIMEOUT: lambda value: _int_in(value, 1, MAX_MS),
    Kind.GRACE: lambda value: _int_in(value, 0, MAX_MS),
    Kind.ID: lambda value: _int_in(value, ID_MIN, ID_MAX),
}


def describe_value(value: Any) -> str:
    """A short, safe description of a bad value for an error message (never huge)."""
    if type(value) is int:
        return "an integer out of range" if value.bit_length() > 64 else f"{value}"
    if isinstance(value, str):
        text = repr(str(value)[:40])
        return text if len(value) <= 40 else text + "..."
    return f"a {type(value).__name__}"


@dataclass(slots=True)
class Request:
    """One decoded request: ``op``, the ``id`` it opens (``None`` for ``cancel``), its params."""

    op: str
    id: int | None
    params: Mapping[str, Any]


def _is_int(value: Any) -> bool:
    return type(value) is int and ID_MIN <= value <= ID_MAX


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
        op = str(raw_op)[:64]
    elif op == "cancel":
        if not _is_int(term.get("target")):
            raise BadRequest(f"cancel needs an integer target ({Kind.ID.value})",
                             details={"id": req_id})  # fmt: skip
        return Request(op, None, term)
    if req_id is None:
        what = (
            "missing" if raw_id is None
            else "out of range" if type(raw_id) is int
            else f"not an integer ({type(raw_id).__name__})"
        )  # fmt: skip
        raise BadRequest(f"request id is {what}", details={"id": None, "op": op})
    if op not in _OP_NAMES:
        raise BadRequest(f"unknown op {op!r}", details={"id": req_id, "op": op})
    return Request(op, req_id, term)


def check_fields(op: str, params: Mapping[str, Any]) -> None:
    """Raise ``BadRequest`` unless ``params`` has every required field of ``op``, no
    unknown one, and each value of its field's kind and range (``None`` stands for an
    absent optional field)."""
    fields, allowed, required, checks = _ALLOWED[op]
    keys = params.keys()
    # Atom keys hash and compare like str, so these set tests run at C speed.
    if not (keys <= allowed and required <= keys):
        names = {str(k) for k in keys if isinstance(k, str)}
        missing = required - names
        if missing:
            raise BadRequest(f"{op}: missing field(s) {', '.join(sorted(missing))}")
        unknown = sorted(
            str(k)[:40] if isinstance(k, str) else describe_value(k)
            for k in keys
            if k not in allowed
        )
        raise BadRequest(f"{op}: unknown field(s) {', '.join(unknown)}")
    # Only the fields present (every required one is): "op" and "id" have no entry,
    # parse_request checked them.
    for name, value in params.items():
        entry = checks.get(name)
        if entry is None:
            continue
        check, nil_ok = entry
        if value is None:
            if not nil_ok:
                kind = fields[name].kind.value
                raise BadRequest(f"{op}: {name!s} must be a {kind}, got nil")
            continue
        if not check(value):
            kind = fields[name].kind.value
            raise BadRequest(f"{op}: {name!s} must be a {kind}, got {describe_value(value)}")


_OP_NAMES = {op: op for op in OP_FIELDS}
# op -> (its fields, the keys allowed, the keys required, name -> (checker, whether
# nil is allowed)). A nil prompt is the agents layer's to refuse (it names the part).
_ALLOWED = {
    op: (
        fields,
        frozenset(fields) | {"op", "id"},
        frozenset(name for name, f in fields.items() if f.required),
        {
            name: (_CHECKS[f.kind], not f.required or f.kind is Kind.PROMPT)
            for name, f in fields.items()
        },
    )
    for op, fields in OP_FIELDS.items()
}
