"""Lists kept encoded: the element spans of an ETF list, without decoding it.

The worker keeps a ``run`` request's ``history`` encoded (``EtfCodec(keep_encoded=
"history")``): each message's bytes key the cache of validated messages
(``agents._history_cache``) as they are, and a cached message is never decoded.
``_skip`` finds where a term ends; it refuses (``-1``) anything it is not sure
of -- truncation, lengths past the end, tags other than the plain ones -- and
the decoder then decodes the list normally, which raises the same error or takes
the same fallback as without ``keep_encoded``. The C accelerator mirrors both
functions (``skip_term``, ``encoded_list`` in ``_etf_speedups.c``).
"""

from __future__ import annotations

import struct

from axon_port._types import EncodedTerms

__all__ = ["encoded_list"]

_U16 = struct.Struct(">H").unpack_from
_U32 = struct.Struct(">I").unpack_from


def _skip(data: bytes, pos: int) -> int:
    """The end of the term at ``data[pos]``, or -1 when it is truncated, declares
    more elements than there are bytes left, or holds a tag other than the plain
    ones (the caller then decodes it normally, which reports the error).

    Counts the terms still to skip instead of recursing: depth is checked when the
    element is decoded on its own, not here.
    """
    ndata = len(data)
    todo = 1
    while todo:
        if pos >= ndata:
            return -1
        tag = data[pos]
        left = ndata - pos
        todo -= 1
        if tag == 97:
            pos += 2
        elif tag == 98:
            pos += 5
        elif tag == 70:
            pos += 9
        elif tag == 106:
            pos += 1
        elif tag == 109:
            if left < 5:
                return -1
            pos += 5 + _U32(data, pos + 1)[0]
        elif tag == 77:
            if left < 6:
                return -1
            pos += 6 + _U32(data, pos + 1)[0]
        elif tag == 107 or tag == 100 or tag == 118:
            if left < 3:
                return -1
            pos += 3 + _U16(data, pos + 1)[0]
        elif tag == 115 or tag == 119:
            if left < 2:
                return -1
            pos += 2 + data[pos + 1]
        elif tag == 110:
            if left < 2:
                return -1
            pos += 3 + data[pos + 1]
        elif tag == 111:
            if left < 5:
                return -1
            pos += 6 + _U32(data, pos + 1)[0]
        elif tag == 104:
            if left < 2:
                return -1
            todo += data[pos + 1]
            pos += 2
        elif tag == 105 or tag == 108 or tag == 116:
            if left < 5:
                return -1
            cnt = _U32(data, pos + 1)[0]
            pos += 5
            if cnt > ndata - pos:  # every element takes at least one byte
                return -1
            todo += cnt + cnt if tag == 116 else cnt + 1 if tag == 108 else cnt
        else:
            return -1
        if pos > ndata:
            return -1
    return pos


def encoded_list(data: bytes, pos: int, count: int) -> tuple[EncodedTerms, int, int] | None:
    """The ``count`` elements of the list whose first element is at ``data[pos]``,
    kept encoded: ``(EncodedTerms, position after the tail, budget cost)``, or
    ``None`` if the list is not a proper list of plain terms (then it is decoded
    normally). The cost is the list's (64 + 8 per element) plus each element's as a
    binary of its size (48 + size), priced before anything is sliced.
    """
    if count > len(data) - pos:
        return None
    start = pos
    cost = 64 + 8 * count
    for _ in range(count):
        end = _skip(data, pos)
        if end < 0:
            return None
        cost += 48 + end - pos
        pos = end
    if pos >= len(data) or data[pos] != 106:
        return None
    items = []
    pos = start
    for _ in range(count):
        end = _skip(data, pos)
        items.append(data[pos:end])
        pos = end
    return EncodedTerms(tuple(items)), pos + 1, cost
