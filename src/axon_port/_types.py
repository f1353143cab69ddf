"""Python-side value types of the codec mapping (stdlib only).

``Atom`` is how an Erlang atom looks in Python: a ``str`` subclass, so
``Atom("run") == "run"`` and dict lookups with plain strings work. ``FrozenMap``
and ``FrozenList`` are the hashable forms used when a map or a list is itself a
map *key* (legal in Erlang, impossible for ``dict``/``list`` in Python); they
encode back to a map and a list. ``EncodedTerms`` is a list the decoder kept
encoded (see ``EtfCodec(keep_encoded=...)``): one ``bytes`` per element, decoded
only when asked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

__all__ = ["Atom", "EncodedTerms", "FrozenList", "FrozenMap"]


class Atom(str):
    """An Erlang atom. Compares and hashes like the equal ``str``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Atom({str.__repr__(self)})"


class FrozenList(tuple[Any, ...]):
    """A hashable list: a list that appeared as (part of) a map key."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"FrozenList({list(self)!r})"


class FrozenMap(Mapping[Any, Any]):
    """A hashable, immutable map: a map that appeared as (part of) a map key."""

    __slots__ = ("_d", "_h")

    def __init__(self, items: Mapping[Any, Any] | None = None) -> None:
        self._d: dict[Any, Any] = dict(items or {})
        self._h: int | None = None

    def __getitem__(self, key: Any) -> Any:
        return self._d[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._d)

    def __len__(self) -> int:
        return len(self._d)

    def __hash__(self) -> int:
        if self._h is None:
            self._h = hash(frozenset(self._d.items()))
        return self._h

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self._d == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"FrozenMap({self._d!r})"


class EncodedTerms:
    """A list whose elements stay encoded until asked for.

    ``items`` holds each element's own External Term Format encoding (without the
    version byte), sliced from the payload it came in; equal bytes are equal
    terms, so the bytes can key a cache of what the terms turn into without
    decoding them. The codec that made it sets ``decode_item``, which decodes one
    element with the limits the whole payload had (``DecodeError`` if it is not a
    term the codec accepts).
    """

    __slots__ = ("decode_item", "items")

    def __init__(self, items: tuple[bytes, ...]) -> None:
        self.items = items
        self.decode_item: Callable[[bytes], Any] | None = None

    def decode(self) -> list[Any]:
        """Every element, decoded."""
        if self.decode_item is None:
            raise RuntimeError("EncodedTerms has no decoder")
        return [self.decode_item(b) for b in self.items]

    def __len__(self) -> int:
        return len(self.items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, EncodedTerms):
            return self.items == other.items
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"EncodedTerms({len(self.items)} items)"
