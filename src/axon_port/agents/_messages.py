"""Conversions between wire data and pydantic-ai values.

Wire data arrives with Elixir atoms as :class:`axon_port.Atom` (a ``str``
subclass) in keys and values; :func:`plain` turns those into plain ``str`` so
pydantic, jsonschema and user tools see ordinary JSON-like data. Message
history goes out as pydantic-ai's own JSON form
(``ModelMessagesTypeAdapter.dump_python(mode="json")``: maps with binary keys,
timestamps as ISO-8601 binaries) and comes back in through the same adapter, so
a client can store it, inspect it and send it back as ``history`` unchanged.

History is validated through :data:`HISTORY_CACHE` (see ``_history_cache``): a
message seen before, in any run, costs a hash and a copy instead of a validation.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pydantic
from pydantic_ai.messages import ModelMessage, ModelMessagesTypeAdapter, ModelRequest, ModelResponse
from pydantic_ai.usage import RunUsage
from pydantic_core import to_jsonable_python

from axon_port._secrets import redact
from axon_port._types import EncodedTerms
from axon_port.agents._history_cache import HistoryCache
from axon_port.codecs import get_codec
from axon_port.errors import BadRequest, DecodeError, EncodeError

__all__ = [
    "HISTORY_CACHE", "dump_messages", "dump_usage", "jsonable", "load_history", "plain", "py_plain",
]  # fmt: skip

#: Validated history messages by the hash of their ETF encoding, shared by all runs.
HISTORY_CACHE = HistoryCache(get_codec("etf").encode)


def py_plain(value: Any) -> Any:
    """``value`` with every ``Atom`` (keys and values) replaced by the equal plain ``str``.

    Maps become ``dict`` and lists stay lists; tuples stay tuples. Other values
    are returned as they are. :func:`plain` is this, in C when ``_copy_speedups``
    is built (~10x faster on history messages); children go through :func:`plain`.
    """
    if isinstance(value, str):
        return value if type(value) is str else str(value)
    if isinstance(value, Mapping):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(plain(v) for v in value)
    return value


def _load_plain() -> Callable[[Any], Any]:
    try:
        from axon_port.agents import _copy_speedups  # type: ignore[attr-defined]
    except ImportError:
        return py_plain
    _copy_speedups.configure_plain(py_plain)
    return _copy_speedups.plain  # type: ignore[no-any-return]


plain: Callable[[Any], Any] = _load_plain()


def jsonable(value: Any) -> Any:
    """``value`` as JSON-like data (pydantic models and dataclasses become maps)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return to_jsonable_python(value, fallback=repr)


# The keys pydantic-ai's own serialisation gives a ``RunUsage``, in its order.
_USAGE_SAMPLE: dict[str, Any] = to_jsonable_python(RunUsage())
_USAGE_KEYS = tuple(_USAGE_SAMPLE)
_USAGE_FLOATS = frozenset(k for k, v in _USAGE_SAMPLE.items() if type(v) is float)
_USAGE_FIELDS = frozenset(f.name for f in dataclasses.fields(RunUsage))
_usage_values = operator.attrgetter(*_USAGE_KEYS)  # one C call for every key


def dump_usage(usage: Any) -> Any:
    """A run's usage as pydantic-ai serialises it (what ``jsonable`` gives), built
    directly for the plain case: ~10x cheaper than the serializer, once per run."""
    if (
        type(usage) is RunUsage
        and usage.cost is None
        and usage.__dict__.keys() <= _USAGE_FIELDS
        and all(type(v) is int for v in usage.details.values())
    ):
        out = dict(zip(_USAGE_KEYS, _usage_values(usage), strict=True))
        for k in _USAGE_FLOATS:
            out[k] = float(out[k])
        out["details"] = dict(usage.details)
        return out
    return jsonable(usage)


def load_history(data: Any, *, field: str = "history") -> list[ModelMessage]:
    """Messages from a previous ``result`` (or ``None``/``[]``) → pydantic-ai messages.

    Raises ``BadRequest`` with pydantic's error list as details if the data is not
    message history. Goes through :data:`HISTORY_CACHE`; every returned object
    belongs to the caller alone.
    """
    if data is None:
        return []
    if type(data) is EncodedTerms:
        return _load_encoded(data, field)
    if not isinstance(data, Sequence) or isinstance(data, str | bytes):
        raise BadRequest(f"{field} must be a list of messages")
    items = list(data)
    if not items:
        return []
    try:
        return HISTORY_CACHE.load(items, _validate)
    except (EncodeError, pydantic.ValidationError):
        pass
    # Not encodable (only a Python caller can pass such data), or invalid: validate
    # the whole list, so error locations index the history as sent.
    try:
        return _validate(items)
    except pydantic.ValidationError as exc:
        details = jsonable(exc.errors(include_url=False, include_input=False))
        raise BadRequest(f"{field} is not valid message history", details=details) from None


def _load_encoded(data: EncodedTerms, field: str) -> list[ModelMessage]:
    """:func:`load_history` of a history the codec kept encoded: through the cache
    by the messages' own bytes, decoding only what the cache does not hold."""
    try:
        return HISTORY_CACHE.load_encoded(data, _validate)
    except (DecodeError, pydantic.ValidationError):
        pass
    # A message that does not decode, or invalid history: find the first bad
    # message, so the error names it by its index as sent.
    decode = data.decode_item
    assert decode is not None  # load_encoded refuses EncodedTerms without a decoder
    items = []
    for i, raw in enumerate(data.items):
        try:
            items.append(decode(raw))
        except DecodeError as exc:
            raise DecodeError(f"{field}[{i}]: {exc}", details={"index": i}) from None
    return load_history(items, field=field)


def _validate(items: list[Any]) -> list[ModelMessage]:
    return ModelMessagesTypeAdapter.validate_python(plain(items))


# One adapter per message type, with ModelMessagesTypeAdapter's own serialisation
# config. Through the tagged union, pydantic-core serialises a ModelResponse in its
# strict check first, which its usage serialiser fails on every time (an exception
# inside pydantic-core), then again in the lax check: ~7 µs a response. The output is
# the same (pinned by tests/unit/test_message_dump.py).
_MESSAGE_CONFIG = pydantic.ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")
# (A dataclass's TypeAdapter takes no config; a one-item list's does, and passes it on.)
_DUMPERS: dict[type, Callable[..., Any]] = {
    cls: pydantic.TypeAdapter(list[cls], config=_MESSAGE_CONFIG).dump_python  # type: ignore[valid-type]
    for cls in (ModelRequest, ModelResponse)
}


def dump_messages(messages: Sequence[ModelMessage]) -> list[Any]:
    """Messages as JSON-like data for the wire (what ``load_history`` accepts back):
    ``ModelMessagesTypeAdapter.dump_python(messages, mode="json")``."""
    dumpers = _DUMPERS
    if all(type(m) in dumpers for m in messages):
        dumped = [dumpers[type(m)]([m], mode="json")[0] for m in messages]
    else:  # a subclass, or a type this module does not know: pydantic-ai's own adapter
        dumped = ModelMessagesTypeAdapter.dump_python(list(messages), mode="json")
    for message in dumped:
        # A response records the URL it came from: credentials in it stay in the worker.
        url = message.get("provider_url")
        if url:
            message["provider_url"] = redact(url)
    return dumped
