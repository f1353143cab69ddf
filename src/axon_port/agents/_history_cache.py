"""A bounded, content-addressed cache of validated history messages.

A conversation's history comes back with every ``run``: turn *n* re-sends the
*n - 1* earlier turns' messages unchanged. Validating them into pydantic-ai
objects again (``plain`` + ``ModelMessagesTypeAdapter``) costs ~30 µs per
message, so a long conversation would pay O(n²) over its life. The worker stays
stateless: nothing here is per client or per conversation, it only remembers
what a given wire message validates to.

* **Key**: the message's ETF encoding itself. When the codec kept the history
  encoded (:meth:`HistoryCache.load_encoded`, an ETF worker's case) that is the
  bytes it came in, and a cached message is never decoded; otherwise it is the
  re-encoding of the decoded value by the C encoder (~1.5 µs for a ~400 B
  message). The dict hashes the key and compares it byte for byte, so two
  different messages can never share an entry (no digest to collide, whoever
  sends the history), at the price of keeping the encoding (counted in
  ``max_bytes``). Equal bytes decode to equal terms, and the re-encoding is a
  deterministic function of the decoded value that keeps every distinction
  validation can see (int vs float, binary vs list, map keys and order), so
  equal keys mean equal validated messages. The same message sent in different
  encodings (an ``Atom`` for a binary, another integer width, another key
  order) has different keys: that is only a miss.
* **Miss**: the message is validated exactly as without the cache (errors are
  the same ``BadRequest``) and stored.
* **Hit**: a fresh structural copy of the stored objects is returned (new
  message, part, list and dict objects; immutable leaves shared), so nothing a
  run does to its history — pydantic-ai, capabilities, user code — can reach the
  stored value or another run's. A hit costs ~8 µs per message (key ~3, copy
  ~5) against ~32 for a miss (measured, ~400 B messages).
* **Bound**: LRU by count (``max_items``, default 50 000) and by the summed encoded
  size (``max_bytes``, default 64 MiB; a message's objects take a small multiple
  of its encoding, which is also kept as the key). A message larger than
  ``max_bytes // 16`` is never stored.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from axon_port._types import EncodedTerms

__all__ = ["SPEEDUPS_AVAILABLE", "HistoryCache", "fresh_copy", "py_fresh_copy"]

DEFAULT_MAX_ITEMS = 50_000
DEFAULT_MAX_BYTES = 64 * 1024 * 1024

_IMMUTABLE: frozenset[type] = frozenset(
    {
        str,
        bytes,
        int,
        float,
        bool,
        complex,
        type(None),
        datetime.datetime,
        datetime.date,
        datetime.time,
        datetime.timedelta,
        datetime.timezone,
        decimal.Decimal,
        uuid.UUID,
        frozenset,
    }
)
_PLANS: dict[type, tuple[str, ...]] = {}
# The dataclasses copied through their ``__dict__`` (the C half copies those itself).
_DICT_TYPES: set[type] = set()


def py_fresh_copy(value: Any) -> Any:
    """A copy of ``value`` sharing only immutable leaves with it.

    Dataclass instances (pydantic-ai's messages and parts) are rebuilt without
    running ``__init__``; lists, dicts, tuples and sets are copied recursively.
    Values of other types (enums and the immutable scalars) are shared.
    :func:`fresh_copy` is this, in C when ``_copy_speedups`` is built (the C code
    handles lists, dicts and ``__dict__`` dataclasses and calls back here for the
    rest); children are copied through :func:`fresh_copy`.
    """
    cls = type(value)
    if cls in _IMMUTABLE:
        return value
    if cls is list:
        return [fresh_copy(v) for v in value]
    if cls is dict:
        return {k: fresh_copy(v) for k, v in value.items()}
    plan = _PLANS.get(cls)
    if plan is None:
        if isinstance(value, enum.Enum):
            return value
        if cls is tuple:
            return tuple(fresh_copy(v) for v in value)
        if cls is set:
            return {fresh_copy(v) for v in value}
        if not dataclasses.is_dataclass(value):
            return value
        plan = _PLANS[cls] = _plan(cls)
        if plan is _DICT:
            _DICT_TYPES.add(cls)
    new = object.__new__(cls)
    if plan is _DICT:
        fields = value.__dict__.copy()
        for name, v in fields.items():
            if type(v) not in _IMMUTABLE:
                fields[name] = fresh_copy(v)
        new.__dict__.update(fields)
    else:
        setter = object.__setattr__
        for name in plan:
            setter(new, name, fresh_copy(getattr(value, name)))
    return new


_DICT: tuple[str, ...] = ()


def _plan(cls: type) -> tuple[str, ...]:
    """How to copy a dataclass: through its ``__dict__`` (``_DICT``), or field by field
    (the field names) when it has slots."""
    if "__slots__" in cls.__dict__ or not hasattr(cls, "__dict__"):
        return tuple(f.name for f in dataclasses.fields(cls))
    return _DICT


def _load_speedups() -> Any:
    try:
        from axon_port.agents import _copy_speedups  # type: ignore[attr-defined]
    except ImportError:
        return None
    _copy_speedups.configure(frozenset(_IMMUTABLE), _DICT_TYPES, py_fresh_copy)
    return _copy_speedups


_speedups = _load_speedups()
#: ``py_fresh_copy`` in C (~4x faster on history messages) when it is built.
fresh_copy: Callable[[Any], Any] = _speedups.fresh_copy if _speedups else py_fresh_copy
SPEEDUPS_AVAILABLE = _speedups is not None


class HistoryCache:
    """Encoded message → validated message, LRU-bounded by count and bytes."""

    def __init__(
        self,
        encode: Callable[[Any], bytes],
        *,
        max_items: int = DEFAULT_MAX_ITEMS,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        if max_items < 0 or max_bytes < 0:
            raise ValueError("max_items and max_bytes must be >= 0")
        self._encode = encode
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._entries: OrderedDict[bytes, tuple[Any, int]] = OrderedDict()
        self.bytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def key(self, data: Any) -> bytes:
        """The content key of one wire message: its encoding."""
        return self._encode(data)

    def load(self, items: list[Any], validate: Callable[[list[Any]], list[Any]]) -> list[Any]:
        """``items`` (wire messages) as validated messages, through the cache.

        ``validate`` turns a list of wire messages into the list of validated
        ones (and raises on bad input); it is called once, for the misses only.
        Every returned object is private to the caller.
        """
        keys = [self.key(item) for item in items]
        return self._load(keys, lambda missing: [items[i] for i in missing], validate)

    def load_encoded(
        self, encoded: EncodedTerms, validate: Callable[[list[Any]], list[Any]]
    ) -> list[Any]:
        """:meth:`load` for messages still encoded as they came (ETF, kept by the
        codec): each message's bytes are its key as they are, and only the misses
        are decoded (``DecodeError`` if one is not a term the codec accepts)."""
        decode = encoded.decode_item
        if decode is None:
            raise ValueError("EncodedTerms without a decoder")
        keys = encoded.items
        return self._load(keys, lambda missing: [decode(keys[i]) for i in missing], validate)

    def _load(
        self,
        keys: Sequence[bytes],
        wire: Callable[[list[int]], list[Any]],
        validate: Callable[[list[Any]], list[Any]],
    ) -> list[Any]:
        entries = self._entries
        out: list[Any] = [None] * len(keys)
        missing: list[int] = []
        for i, k in enumerate(keys):
            entry = entries.get(k)
            if entry is None:
                missing.append(i)
            else:
                entries.move_to_end(k)
                out[i] = fresh_copy(entry[0])
        self.hits += len(keys) - len(missing)
        if missing:
            self.misses += len(missing)
            validated = validate(wire(missing))
            for i, message in zip(missing, validated, strict=True):
                self._store(keys[i], fresh_copy(message))
                out[i] = message
        return out

    def _store(self, key: bytes, message: Any) -> None:
        size = len(key)
        if self.max_items == 0 or size > self.max_bytes // 16 or key in self._entries:
            return
        self._entries[key] = (message, size)
        self.bytes += size
        while len(self._entries) > self.max_items or self.bytes > self.max_bytes:
            _, (_, old) = self._entries.popitem(last=False)
            self.bytes -= old

    def clear(self) -> None:
        """Forget every entry (the counters stay)."""
        self._entries.clear()
        self.bytes = 0
