"""Conversions between wire data and pydantic-ai values.

Wire data arrives with Elixir atoms as :class:`axon_port.Atom` (a ``str``
subclass) in keys and values; :func:`plain` turns those into plain ``str`` so
pydantic, jsonschema and user tools see ordinary JSON-like data. Message
history goes out as pydantic-ai's own JSON form
(``ModelMessagesTypeAdapter.dump_python(mode="json")``: maps with binary keys,
timestamps as ISO-8601 binaries) and comes back in through the same adapter, so
a client can store it, inspect it and send it back as ``history`` unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pydantic
from pydantic_ai.messages import ModelMessage, ModelMessagesTypeAdapter
from pydantic_core import to_jsonable_python

from axon_port.errors import BadRequest

__all__ = ["dump_messages", "jsonable", "load_history", "plain"]


def plain(value: Any) -> Any:
    """``value`` with every ``Atom`` (keys and values) replaced by the equal plain ``str``.

    Maps become ``dict`` and lists stay lists; tuples stay tuples. Other values
    are returned as they are.
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


def jsonable(value: Any) -> Any:
    """``value`` as JSON-like data (pydantic models and dataclasses become maps)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return to_jsonable_python(value, fallback=repr)


def load_history(data: Any, *, field: str = "history") -> list[ModelMessage]:
    """Messages from a previous ``result`` (or ``None``/``[]``) → pydantic-ai messages.

    Raises ``BadRequest`` with pydantic's error list as details if the data is not
    message history.
    """
    if data is None:
        return []
    if not isinstance(data, Sequence) or isinstance(data, str | bytes):
        raise BadRequest(f"{field} must be a list of messages")
    try:
        return ModelMessagesTypeAdapter.validate_python(plain(list(data)))
    except pydantic.ValidationError as exc:
        details = jsonable(exc.errors(include_url=False, include_input=False))
        raise BadRequest(f"{field} is not valid message history", details=details) from None


def dump_messages(messages: Sequence[ModelMessage]) -> list[Any]:
    """Messages as JSON-like data for the wire (what ``load_history`` accepts back)."""
    dumped: list[Any] = ModelMessagesTypeAdapter.dump_python(list(messages), mode="json")
    return dumped
