"""ETF decoding, pure Python (the reference implementation; see ``_etf`` for the design).

``decode`` is the whole decoder: it checks the version byte, inflates a
compressed term, decodes the term with the iterative ``_dec`` and refuses
trailing bytes.  With ``keep_encoded`` (a key name), the list under that key of
a top-level map is not decoded: ``_etf_encoded.encoded_list`` finds each element's
bytes and returns them as an ``EncodedTerms``.  The C accelerator
(``_etf_speedups``) mirrors it step by step and hands the rare paths
(compressed terms, FLOAT_EXT, unhashable map keys) back to this module.
"""

from __future__ import annotations

import math
import struct
import zlib
from typing import Any

from axon_port._types import Atom, FrozenList, FrozenMap
from axon_port.codecs._etf_encoded import encoded_list
from axon_port.errors import DecodeError, FrameTooLarge

__all__ = ["decode", "inflate"]

_U16 = struct.Struct(">H").unpack_from
_U32 = struct.Struct(">I").unpack_from
_I32 = struct.Struct(">i").unpack_from
_F64 = struct.Struct(">d").unpack_from

_MISS: Any = object()
_SPECIAL: dict[str, Any] = {"nil": None, "true": True, "false": False}
_CACHE_MAX = 4096
_CACHE_KEY_MAX = 260  # longer atoms (legal up to 64 KB) are not cached: bounded memory
_atom_dec_cache: dict[bytes, Any] = {}

_TAG_NAMES = {
    88: "NEW_PID_EXT", 103: "PID_EXT", 89: "NEW_PORT_EXT", 102: "PORT_EXT",
    120: "V4_PORT_EXT", 90: "NEWER_REFERENCE_EXT", 114: "NEW_REFERENCE_EXT",
    101: "REFERENCE_EXT", 112: "NEW_FUN_EXT", 117: "FUN_EXT", 113: "EXPORT_EXT",
    82: "ATOM_CACHE_REF", 68: "DIST_HEADER", 80: "COMPRESSED (nested)",
    121: "LOCAL_EXT",
}  # fmt: skip


class _Truncated(Exception):
    pass


def _atom(data: bytes, pos: int, start: int, end: int, utf8: bool) -> Any:
    """Decode the atom whose name is ``data[start:end]`` (tag at ``pos``), via the cache."""
    if end > len(data):
        raise _Truncated
    raw = data[start:end]
    try:
        name = raw.decode("utf-8" if utf8 else "latin-1")
    except UnicodeDecodeError:
        raise DecodeError(f"atom name is not valid UTF-8: {raw[:40]!r}") from None
    value = _SPECIAL.get(name, _MISS)
    if value is _MISS:
        value = Atom(name)
    if len(_atom_dec_cache) < _CACHE_MAX and end - pos <= _CACHE_KEY_MAX:
        _atom_dec_cache[data[pos:end]] = value
    return value


def _freeze(k: Any) -> Any:
    """The hashable form of a decoded map key (lists and maps nested anywhere inside)."""
    if type(k) is list:
        return FrozenList(_freeze(x) for x in k)
    if type(k) is dict:
        return FrozenMap({_freeze(a): _freeze(b) for a, b in k.items()})
    if type(k) is tuple:
        return tuple(_freeze(x) for x in k)
    return k


def _over_budget() -> FrameTooLarge:
    return FrameTooLarge("decoded term exceeds the decoded-size budget")


def _dec(
    data: bytes, pos: int, max_depth: int, budget: int, keep_encoded: str | None = None
) -> tuple[Any, int]:
    """Decode the term at ``data[pos]``; return it and the position after it.

    Iterative: ``items`` collects the elements of the innermost open container
    (a map collects keys and values alternately), ``remaining`` counts what it
    still expects and ``stack`` holds the enclosing containers.  The outermost
    pseudo-container (``kind`` 0) expects exactly one term.  ``budget`` is the
    decoded-size budget in estimated bytes, charged exactly as the C decoder does.
    A non-empty list under the top-level map key ``keep_encoded`` goes through
    ``encoded_list`` first (when ``max_depth`` > 2, so its elements can be
    decoded on their own with ``max_depth - 2``).
    """
    ndata = len(data)
    acache = _atom_dec_cache
    stack: list[tuple[list[Any], int, int]] = []
    items: list[Any] = []
    append = items.append
    remaining = 1
    kind = 0
    v: Any
    while True:
        tag = data[pos]
        if tag == 109:  # BINARY_EXT
            end = pos + 5 + _U32(data, pos + 1)[0]
            if end > ndata:
                raise _Truncated
            budget -= 43 + end - pos  # 48 + len
            if budget < 0:
                raise _over_budget()
            v = data[pos + 5 : end]
            try:
                v = v.decode()
            except UnicodeDecodeError:
                v = data[pos + 5 : end]
            pos = end
        elif tag == 97:  # SMALL_INTEGER_EXT
            v = data[pos + 1]
            pos += 2
        elif tag == 119 or tag == 100:  # SMALL_ATOM_UTF8_EXT, ATOM_EXT (latin-1)
            end = pos + 2 + data[pos + 1] if tag == 119 else pos + 3 + _U16(data, pos + 1)[0]
            if end > ndata:
                raise _Truncated
            budget -= 8
            if budget < 0:
                raise _over_budget()
            v = acache.get(data[pos:end], _MISS)
            if v is _MISS:
                v = _atom(data, pos, pos + 2 if tag == 119 else pos + 3, end, tag == 119)
            pos = end
        elif tag == 116 or tag == 108 or tag == 104 or tag == 105:  # containers
            if tag == 104:
                n = data[pos + 1]
                pos += 2
            else:
                n = _U32(data, pos + 1)[0]
                pos += 5
            kept = None
            if (
                n
                and tag == 108
                and keep_encoded is not None
                and kind == 116
                and len(stack) == 1
                and len(items) & 1
                and max_depth > 2
                and isinstance(items[-1], str)
                and items[-1] == keep_encoded
            ):
                kept = encoded_list(data, pos, n)
            if kept is not None:
                v, pos, cost = kept
                budget -= cost
                if budget < 0:
                    raise _over_budget()
            elif n:
                if len(stack) >= max_depth:
                    raise DecodeError("term nesting is too deep")
                if n > ndata - pos:
                    raise DecodeError(f"declared length {n} exceeds the {ndata - pos} bytes left")
                budget -= 64 + (48 if tag == 116 else 8) * n
                if budget < 0:
                    raise _over_budget()
                stack.append((items, remaining, kind))
                items = []
                append = items.append
                remaining = n + n if tag == 116 else n
                kind = tag
                continue
            else:
                if tag == 108:  # LIST_EXT with no elements: the tail must still be []
                    if data[pos] != 106:
                        raise DecodeError("improper list (tail is not []) cannot be decoded")
                    pos += 1
                budget -= 64
                if budget < 0:
                    raise _over_budget()
                v = {} if tag == 116 else [] if tag == 108 else ()
        elif tag == 106:  # NIL_EXT
            budget -= 64
            if budget < 0:
                raise _over_budget()
            v = []
            pos += 1
        else:
            before = pos
            v, pos = _dec_rare(data, pos, tag)
            budget -= 32 + (8 if tag == 107 else 1) * (pos - before)
            if budget < 0:
                raise _over_budget()
        append(v)
        remaining -= 1
        while not remaining:  # close finished containers
            if kind == 116:
                it = iter(items)
                try:
                    v = dict(zip(it, it, strict=False))
                except TypeError:  # a list or a map used as a key
                    v = {_freeze(k): x for k, x in zip(items[::2], items[1::2], strict=True)}
                if len(v) + len(v) != len(items):
                    raise DecodeError('map keys collide in Python (e.g. :a and "a", or 1 and 1.0)')
            elif kind == 108:
                if data[pos] != 106:
                    raise DecodeError("improper list (tail is not []) cannot be decoded")
                pos += 1
                v = items
            elif kind:
                v = tuple(items)
            else:
                return items[0], pos
            items, remaining, kind = stack.pop()
            append = items.append
            append(v)
            remaining -= 1


def _dec_rare(data: bytes, pos: int, tag: int) -> tuple[Any, int]:
    """Decode the leaf terms that ``_dec`` does not handle inline."""
    if tag == 107:  # STRING_EXT: a list of bytes
        end = pos + 3 + _U16(data, pos + 1)[0]
        if end > len(data):
            raise _Truncated
        return list(data[pos + 3 : end]), end
    if tag == 98:  # INTEGER_EXT
        return _I32(data, pos + 1)[0], pos + 5
    if tag == 70:  # NEW_FLOAT_EXT
        f = _F64(data, pos + 1)[0]
        if f - f != 0.0:
            raise DecodeError("non-finite float")
        return f, pos + 9
    if tag == 110 or tag == 111:  # SMALL_BIG_EXT, LARGE_BIG_EXT
        if tag == 110:
            n = data[pos + 1]
            pos += 2
        else:
            n = _U32(data, pos + 1)[0]
            pos += 5
        end = pos + 1 + n
        if end > len(data):
            raise DecodeError(f"big integer declares {n} bytes, only {len(data) - pos} left")
        i = int.from_bytes(data[pos + 1 : end], "little")
        return (-i if data[pos] else i), end
    if tag == 118 or tag == 115:  # ATOM_UTF8_EXT, SMALL_ATOM_EXT (latin-1)
        start = pos + 3 if tag == 118 else pos + 2
        end = start + (_U16(data, pos + 1)[0] if tag == 118 else data[pos + 1])
        v = _atom_dec_cache.get(data[pos:end], _MISS)
        if v is _MISS:
            v = _atom(data, pos, start, end, tag == 118)
        return v, end
    if tag == 77:  # BIT_BINARY_EXT
        n = _U32(data, pos + 1)[0]
        if data[pos + 5] != 8:
            raise DecodeError("bitstrings (binaries whose size is not whole bytes) are unsupported")
        end = pos + 6 + n
        if end > len(data):
            raise _Truncated
        return data[pos + 6 : end], end
    if tag == 99:  # FLOAT_EXT: 31 bytes of "%.20e" text
        end = pos + 32
        if end > len(data):
            raise _Truncated
        try:
            f = float(data[pos + 1 : end].rstrip(b"\0").decode("ascii"))
        except (ValueError, UnicodeDecodeError):
            raise DecodeError("malformed FLOAT_EXT") from None
        if not math.isfinite(f):
            raise DecodeError("non-finite float")
        return f, end
    raise DecodeError(f"unsupported term type {tag} ({_TAG_NAMES.get(tag, 'unknown tag')})")


def inflate(data: bytes, limit: int) -> bytes:
    """Inflate a COMPRESSED term body (``data`` starts at the size field).

    ``FrameTooLarge`` if it declares more than ``limit`` bytes (nothing is inflated
    then); inflating never produces more than the declared size.
    """
    size = _U32(data, 0)[0]
    if size > limit:
        raise FrameTooLarge(
            f"compressed term declares {size} bytes, above the {limit}-byte limit",
            details={"size": size, "max_frame": limit},
        )
    z = zlib.decompressobj()
    try:
        out = z.decompress(data[4:], max(size, 1))
        if not z.eof and len(out) == size and z.unconsumed_tail:
            out += z.decompress(z.unconsumed_tail, 1)
    except zlib.error as e:
        raise DecodeError(f"corrupt compressed term: {e}") from None
    if len(out) != size:
        raise DecodeError(f"compressed term does not inflate to its declared {size} bytes")
    if not z.eof:
        raise DecodeError("compressed term is truncated")
    if z.unused_data:
        raise DecodeError("trailing bytes after the compressed term")
    return out


def decode(
    payload: bytes,
    max_depth: int,
    max_decompressed: int,
    budget: int | None = None,
    keep_encoded: str | None = None,
) -> Any:
    """Decode one ``term_to_binary`` payload. Raises ``DecodeError`` only
    (``FrameTooLarge``, a subclass, past ``max_decompressed`` or ``budget``).
    ``keep_encoded``: see ``_dec``."""
    if budget is None:
        budget = 1 << 62
    data = payload if type(payload) is bytes else bytes(payload)
    try:
        if data[0] != 131:
            raise DecodeError(f"not an External Term Format payload (version byte {data[0]})")
        if data[1] == 80:
            data = inflate(data[2:], max_decompressed)
            value, pos = _dec(data, 0, max_depth, budget, keep_encoded)
        else:
            value, pos = _dec(data, 1, max_depth, budget, keep_encoded)
    except (IndexError, struct.error, _Truncated):
        raise DecodeError("truncated term") from None
    except RecursionError:
        raise DecodeError("term nesting is too deep") from None
    if pos != len(data):
        raise DecodeError(f"{len(data) - pos} trailing bytes after the term")
    return value
