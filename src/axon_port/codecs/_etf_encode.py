"""ETF encoding, pure Python (the reference implementation; see ``_etf`` for the design).

``encode`` writes any supported value with ``Atom`` as atoms; ``encode_frame``
writes a reply frame: top-level keys and the ``type`` value as atoms, nested
``Atom``s as binaries.  The C accelerator (``_etf_speedups``) mirrors both.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from typing import Any

from axon_port._types import Atom, FrozenList
from axon_port.errors import EncodeError

__all__ = ["atom_bytes", "encode", "encode_frame", "int_bytes", "str_bytes"]

_P_BI = struct.Struct(">BI").pack
_P_Bi = struct.Struct(">Bi").pack
_P_Bd = struct.Struct(">Bd").pack
_P_BH = struct.Struct(">BH").pack
_P_BIB = struct.Struct(">BIB").pack

_CACHE_MAX = 4096
_atom_enc_cache: dict[str, bytes] = {}


def _make_encoder(atoms: bool) -> Callable[[Any, Callable[[bytes], None], int], None]:
    """Build the recursive encoder; ``atoms=False`` writes ``Atom``s as binaries."""

    def atom_or_bin(x: str) -> bytes:
        return atom_bytes(x) if atoms else str_bytes(x)

    def enc(x: Any, out: Callable[[bytes], None], depth: int) -> None:
        t = type(x)
        if t is str:
            b = x.encode()
            out(_P_BI(109, len(b)))
            out(b)
        elif t is int:
            out(_SMALL_INTS[x] if 0 <= x < 256 else int_bytes(x))
        elif t is dict or t is list or t is tuple:
            if not depth and x:  # empty containers do not count, as in decoding
                raise EncodeError("value nesting is too deep (or cyclic)")
            depth -= 1
            if t is dict:
                out(_P_BI(116, len(x)))
                for k, v in x.items():
                    tk = type(k)
                    if tk is Atom:
                        out(atom_or_bin(k))
                    elif tk is str:
                        b = k.encode()
                        out(_P_BI(109, len(b)))
                        out(b)
                    else:
                        enc(k, out, depth)
                    tv = type(v)
                    if tv is str:
                        b = v.encode()
                        out(_P_BI(109, len(b)))
                        out(b)
                    elif tv is int and 0 <= v < 256:
                        out(_SMALL_INTS[v])
                    else:
                        enc(v, out, depth)
                return
            n = len(x)
            if t is list:
                if not n:
                    out(b"j")
                    return
                out(_P_BI(108, n))
            else:
                out(bytes((104, n)) if n < 256 else _P_BI(105, n))
            for v in x:
                tv = type(v)
                if tv is int and 0 <= v < 256:
                    out(_SMALL_INTS[v])
                elif tv is str:
                    b = v.encode()
                    out(_P_BI(109, len(b)))
                    out(b)
                else:
                    enc(v, out, depth)
            if t is list:
                out(b"j")
        elif t is Atom:
            out(atom_or_bin(x))
        elif x is None:
            out(b"w\x03nil")
        elif t is bool:
            out(b"w\x04true" if x else b"w\x05false")
        elif t is float:
            if x - x != 0.0:
                raise EncodeError(f"cannot encode non-finite float {x!r}")
            out(_P_Bd(70, x))
        elif t is bytes or t is bytearray:
            out(_P_BI(109, len(x)))
            out(bytes(x))
        elif isinstance(x, FrozenList):
            enc(list(x), out, depth)
        elif isinstance(x, Mapping):
            enc(dict(x.items()), out, depth)
        elif isinstance(x, Atom):
            out(atom_or_bin(x))
        elif isinstance(x, str):  # str subclasses (e.g. StrEnum): their value
            b = x.encode()
            out(_P_BI(109, len(b)))
            out(b)
        elif isinstance(x, int):  # IntEnum & co: the plain value
            enc(int(x), out, depth)
        elif isinstance(x, float):
            enc(float(x), out, depth)
        elif isinstance(x, tuple):
            enc(tuple(x), out, depth)
        elif isinstance(x, list):
            enc(list(x), out, depth)
        else:
            raise EncodeError(f"cannot encode a value of type {t.__qualname__}")

    return enc


def str_bytes(x: str) -> bytes:
    """A ``str`` as BINARY_EXT bytes."""
    b = x.encode()
    return _P_BI(109, len(b)) + b


def atom_bytes(x: str) -> bytes:
    """A ``str`` as SMALL_ATOM_UTF8_EXT / ATOM_UTF8_EXT bytes (cached)."""
    b = _atom_enc_cache.get(x)
    if b is None:
        if len(x) > 255:
            raise EncodeError(f"atom longer than 255 characters: {x[:40]!r}...")
        name = x.encode()
        b = bytes((119, len(name))) + name if len(name) < 256 else _P_BH(118, len(name)) + name
        if len(_atom_enc_cache) < _CACHE_MAX:
            _atom_enc_cache[str(x)] = b
    return b


def int_bytes(x: int) -> bytes:
    """An ``int`` as INTEGER_EXT, SMALL_BIG_EXT or LARGE_BIG_EXT bytes."""
    if -0x80000000 <= x <= 0x7FFFFFFF:
        return _P_Bi(98, x)
    sign = x < 0
    a = -x if sign else x
    n = (a.bit_length() + 7) // 8
    digits = a.to_bytes(n, "little")
    if n < 256:
        return bytes((110, n, sign)) + digits
    return _P_BIB(111, n, sign) + digits


_SMALL_INTS = [bytes((97, i)) for i in range(256)]
_enc_atoms = _make_encoder(True)
_enc_binaries = _make_encoder(False)


def encode(term: Any, max_depth: int) -> bytes:
    """Encode ``term`` (``Atom`` as atoms). Raises ``EncodeError`` only."""
    parts: list[bytes] = [b"\x83"]
    try:
        _enc_atoms(term, parts.append, max_depth)
    except EncodeError:
        raise
    except RecursionError:
        raise EncodeError("value nesting is too deep (or cyclic)") from None
    except Exception as e:  # user code run while walking the value (items(), __index__, ...)
        raise EncodeError(f"cannot encode value: {type(e).__name__}: {e}") from None
    return b"".join(parts)


def encode_frame(frame: Mapping[str, Any], max_depth: int) -> bytes:
    """Encode a reply frame: top-level keys and ``type`` as atoms, nested atoms as binaries."""
    parts: list[bytes] = [b"\x83", b""]
    out = parts.append
    try:
        # A snapshot: the header must count exactly the pairs written, even if
        # a user Mapping changes while it is walked.
        items = list(frame.items())
        parts[1] = _P_BI(116, len(items))
        for k, v in items:
            if isinstance(k, str):
                out(atom_bytes(k))
            else:
                _enc_binaries(k, out, max_depth)
            if k == "type" and isinstance(v, str):
                out(atom_bytes(v))
            else:
                _enc_binaries(v, out, max_depth)
    except EncodeError:
        raise
    except RecursionError:
        raise EncodeError("value nesting is too deep (or cyclic)") from None
    except Exception as e:  # user code run while walking the value (items(), __index__, ...)
        raise EncodeError(f"cannot encode frame: {type(e).__name__}: {e}") from None
    return b"".join(parts)
