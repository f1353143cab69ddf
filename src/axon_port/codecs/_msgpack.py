"""msgpack codec on the ``msgpack`` C extension.

Theory of operation
-------------------
The hot path is one C call each way: ``packb`` / ``unpackb``. Everything the C
library would get wrong for our mapping is detected cheaply and only then fixed
in Python:

* Non-finite floats pack silently, so after packing we search the output with a
  compiled regex for a float64 marker (0xcb) followed by an all-ones exponent.
  Only on a match (rare: it may also hit inside strings) do we walk the value
  exactly to tell a real NaN/inf from a false alarm.
* Ext types (including the timestamp ext, which the C unpacker turns into a
  ``Timestamp`` without calling ``ext_hook``) are not part of the mapping: if
  an ext marker byte occurs anywhere in the payload we walk the decoded value
  for ``ExtType``/``Timestamp`` objects.
* A map key that is an array or a map makes the fast path fail with
  ``TypeError`` (unhashable); we then decode again with arrays as tuples and
  maps as pair lists, and rebuild: keys become ``FrozenList``/``FrozenMap``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import msgpack  # type: ignore[import-untyped]

from axon_port._types import FrozenList, FrozenMap
from axon_port.codecs._budget import DECODE_BUDGET_FLOOR
from axon_port.codecs._etf import _speedups
from axon_port.errors import DecodeError, EncodeError, FrameTooLarge

__all__ = ["MsgpackCodec"]

_NONFINITE_RE = re.compile(rb"\xcb[\x7f\xff][\xf0-\xff]")
_EXT_RE = re.compile(rb"\xd6\xff|\xd7\xff|\xc7\x0c\xff")
_MAX_DEPTH = 1000
# The most estimated bytes of Python objects one payload byte can cost (an empty
# array inside an array: 1 byte, a 56-byte list and its 8-byte slot). A payload
# that cannot reach the budget even so is not scanned.
_WORST_RATIO = 64
_U = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8, 0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8, 0xCA: 4, 0xCB: 8}
_FIXEXT = {0xD4: 2, 0xD5: 3, 0xD6: 5, 0xD7: 9, 0xD8: 17}
_LEN = {0xC4: 1, 0xC5: 2, 0xC6: 4, 0xD9: 1, 0xDA: 2, 0xDB: 4}


# Bytes that may start a token costing more than 8 estimated bytes (containers,
# strings, bins, wide numbers): their count bounds what a payload can cost.
_COSTLY = bytes(range(0x80, 0xC0)) + bytes(range(0xC4, 0xC7)) + bytes(range(0xCA, 0xE0))
_CHEAP = bytes(b for b in range(256) if b not in _COSTLY)


# The same scan as _check_budget, in C (the accelerator is built with the ETF codec):
# an 8 MiB frame of tiny containers is refused in milliseconds, not seconds.
_c_within_budget: Any = getattr(_speedups, "msgpack_within_budget", None)


def _within_budget(data: bytes, budget: int) -> bool:
    """False if ``data`` would decode past ``budget`` (C when available, else Python)."""
    if _c_within_budget is not None:
        return bool(_c_within_budget(data, budget))
    try:
        _check_budget(data, budget)
    except FrameTooLarge:
        return False
    return True


def _might_amplify(data: bytes, budget: int) -> bool:
    """False when even the worst reading of ``data`` fits the budget (one C pass)."""
    costly = len(data.translate(None, _CHEAP))
    return 8 * len(data) + 112 * costly > budget


def _check_budget(data: bytes, budget: int) -> None:
    """Raise ``FrameTooLarge`` if ``data`` would decode past ``budget`` estimated bytes.

    One linear pass over the tokens, charged like the ETF decoder: a container
    64 bytes plus 8 per slot (48 per map pair), a str or bin 48 plus its length,
    a wide number 32. Malformed input stops the scan; ``unpackb`` reports it.
    """
    pos, end = 0, len(data)
    while pos < end:
        b = data[pos]
        if b <= 0x7F or b >= 0xE0 or b in (0xC0, 0xC2, 0xC3):
            pos += 1
            continue
        if b <= 0x8F:
            budget -= 64 + 48 * (b & 0x0F)
            pos += 1
        elif b <= 0x9F:
            budget -= 64 + 8 * (b & 0x0F)
            pos += 1
        elif b <= 0xBF:
            n = b & 0x1F
            budget -= 48 + n
            pos += 1 + n
        elif b in _U:
            budget -= 32
            pos += 1 + _U[b]
        elif b in _LEN:
            w = _LEN[b]
            n = int.from_bytes(data[pos + 1 : pos + 1 + w], "big")
            budget -= 48 + n
            pos += 1 + w + n
        elif b in (0xDC, 0xDD, 0xDE, 0xDF):
            w = 2 if b in (0xDC, 0xDE) else 4
            n = int.from_bytes(data[pos + 1 : pos + 1 + w], "big")
            budget -= 64 + (8 if b <= 0xDD else 48) * n
            pos += 1 + w
        elif b in _FIXEXT:
            pos += _FIXEXT[b]
        elif b in (0xC7, 0xC8, 0xC9):
            w = {0xC7: 1, 0xC8: 2, 0xC9: 4}[b]
            pos += 2 + w + int.from_bytes(data[pos + 1 : pos + 1 + w], "big")
        else:  # 0xC1 (never used): malformed
            return
        if budget < 0:
            raise FrameTooLarge("decoded term exceeds the decoded-size budget")


def _default(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return dict(obj.items())
    raise EncodeError(f"cannot encode a value of type {type(obj).__qualname__}")


def _check_finite(x: Any, depth: int = 0) -> None:
    """Raise ``EncodeError`` if ``x`` holds a NaN or an infinity anywhere."""
    if depth > _MAX_DEPTH:
        return  # the packer already accepted this value; its nesting limit applies
    if type(x) is float or isinstance(x, float):
        if not math.isfinite(x):
            raise EncodeError(f"cannot encode non-finite float {x!r}")
    elif isinstance(x, (list, tuple)):
        for v in x:
            _check_finite(v, depth + 1)
    elif isinstance(x, Mapping):
        for k, v in x.items():
            _check_finite(k, depth + 1)
            _check_finite(v, depth + 1)


def _check_no_ext(x: Any) -> None:
    """Raise ``DecodeError`` if a decoded value holds an ext type anywhere."""
    if isinstance(x, (msgpack.ExtType, msgpack.Timestamp)):
        raise DecodeError("msgpack ext types are not supported")
    if isinstance(x, (list, tuple)):
        for v in x:
            _check_no_ext(v)
    elif isinstance(x, Mapping):
        for k, v in x.items():
            _check_no_ext(k)
            _check_no_ext(v)


def _ext_hook(code: int, data: bytes) -> Any:
    raise DecodeError(f"msgpack ext type {code} is not supported")


class _Pairs(tuple[Any, ...]):
    """A decoded map, as the pair tuple ``object_pairs_hook`` received."""

    __slots__ = ()


def _rebuild(x: Any, as_key: bool) -> Any:
    """Turn the slow path's tuples/_Pairs into lists/dicts (Frozen* inside keys)."""
    if type(x) is _Pairs:
        items = {_rebuild(k, True): _rebuild(v, as_key) for k, v in x}
        return FrozenMap(items) if as_key else items
    if type(x) is tuple:
        elems = [_rebuild(v, as_key) for v in x]
        return FrozenList(elems) if as_key else elems
    return x


class MsgpackCodec:
    """msgpack codec with the same Python-side mapping as the ETF codec.

    Not thread-safe (it reuses one packer): use it from the event loop thread.
    """

    name = "msgpack"

    def __init__(self, budget_factor: int | None = None) -> None:
        #: A payload of N bytes may decode to ``budget_factor * N + DECODE_BUDGET_FLOOR``
        #: estimated bytes of Python objects (``None``: unbounded).
        self.budget_factor = budget_factor
        # One reusable packer: cheaper than packb()'s new Packer per frame.
        self._packer = msgpack.Packer(use_bin_type=True, default=_default, autoreset=True)

    def decode(self, payload: bytes) -> Any:
        """Decode exactly one msgpack object. Raises ``DecodeError`` only
        (``FrameTooLarge``, a subclass, past the decoded-size budget)."""
        factor = self.budget_factor
        if factor is not None:
            budget = factor * len(payload) + DECODE_BUDGET_FLOOR
            if (
                len(payload) * _WORST_RATIO > budget
                and _might_amplify(payload, budget)
                and not _within_budget(payload, budget)
            ):
                raise FrameTooLarge("decoded term exceeds the decoded-size budget")
        try:
            try:
                value = msgpack.unpackb(
                    payload, raw=False, strict_map_key=False, ext_hook=_ext_hook
                )
            except TypeError:  # an array or map used as a map key
                value = _rebuild(
                    msgpack.unpackb(
                        payload,
                        raw=False,
                        strict_map_key=False,
                        ext_hook=_ext_hook,
                        use_list=False,
                        object_pairs_hook=_Pairs,
                    ),
                    False,
                )
            # Every timestamp marker holds the byte 0xff: memchr first, the regex only
            # then (~0.2 us a frame saved; other exts reach _ext_hook).
            if b"\xff" in payload and _EXT_RE.search(payload) is not None:
                _check_no_ext(value)
        except DecodeError:
            raise
        except msgpack.ExtraData:
            raise DecodeError("trailing bytes after the msgpack object") from None
        except UnicodeDecodeError:
            raise DecodeError("msgpack str is not valid UTF-8") from None
        except RecursionError:
            raise DecodeError("msgpack nesting is too deep") from None
        except (ValueError, TypeError, OverflowError, MemoryError) as e:
            raise DecodeError(f"malformed msgpack payload: {e}") from None
        return value

    def encode(self, term: Any) -> bytes:
        """Encode ``term`` (``Atom`` as str, tuples as arrays). Raises ``EncodeError`` only."""
        try:
            out: bytes = self._packer.pack(term)
        except EncodeError:
            self._packer.reset()
            raise
        except OverflowError:
            self._packer.reset()
            raise EncodeError("integer does not fit in 64 bits") from None
        except Exception as e:  # also user code run by the packer (items(), __index__, ...)
            self._packer.reset()
            raise EncodeError(f"cannot encode value: {type(e).__name__}: {e}") from None
        if _NONFINITE_RE.search(out) is not None:
            _check_finite(term)
        return out

    def encode_frame(self, frame: Mapping[str, Any]) -> bytes:
        """Encode a reply frame; msgpack has no atoms, so this is ``encode``."""
        return self.encode(frame)
