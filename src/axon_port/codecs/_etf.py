"""Erlang External Term Format codec: pure Python, with an optional C accelerator.

Theory of operation
-------------------
Decoding is one recursive function, ``_dec(data, pos, depth) -> (value, pos)``,
that branches on the tag byte (hottest tags first).  Containers (map, list,
tuple) decode their elements in a loop and handle the commonest leaves --
atoms, binaries, small integers -- inline, so a typical request map costs one
Python call per nested container rather than one per term.  Atoms are looked up
in a bounded cache keyed by their raw encoded bytes (tag, length and name), so
a repeated key costs one slice and one dict lookup.  ``depth`` counts *down*;
reaching zero is a ``DecodeError``.  Truncation shows up as ``IndexError`` or
``struct.error`` from the unchecked fast paths and is turned into a
``DecodeError`` once, at the top; every length that drives a slice or an
allocation is checked against the remaining bytes first.  Compressed terms
(tag 80) are inflated with a bounded ``zlib.decompressobj`` after the declared
size has been checked against ``max_decompressed``.

Encoding is the mirror image: ``_make_encoder`` builds a recursive function that
appends byte strings to a list (joined once at the end), dispatching on the
exact ``type()`` with ``isinstance`` fallbacks for subclasses.  One variant
writes ``Atom`` as an atom, the other (for the nested values of reply frames)
as a binary, so clients can use ``binary_to_term(bin, [:safe])``.

Layout
------
The decoder lives in ``_etf_decode``, the encoder in ``_etf_encode``; this
module keeps :class:`EtfCodec` and the limits.  ``_etf_speedups`` (C, built by
``setup.py`` when a compiler is available) implements the same decoder and
encoder with the same results and the same exceptions; its decoder returns
``NotImplemented`` for the rare inputs it leaves to Python (compressed terms,
FLOAT_EXT, maps with list or map keys), which are then decoded here from the
start.  ``EtfCodec`` uses the accelerator when it is importable, unless
``AXON_PORT_PURE_PYTHON=1`` is set (then it is not even imported) or the codec
is built with ``speedups=False``.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from typing import Any

from axon_port._types import EncodedTerms
from axon_port.codecs._budget import DECODE_BUDGET_FLOOR
from axon_port.codecs._etf_decode import decode as _py_decode
from axon_port.codecs._etf_decode import inflate
from axon_port.codecs._etf_encode import atom_bytes, int_bytes, str_bytes
from axon_port.codecs._etf_encode import encode as _py_encode
from axon_port.codecs._etf_encode import encode_frame as _py_encode_frame
from axon_port.errors import DecodeError, EncodeError

__all__ = [
    "DEFAULT_MAX_DECOMPRESSED",
    "DEFAULT_MAX_DEPTH",
    "SPEEDUPS_AVAILABLE",
    "EtfCodec",
    "atom_bytes",
    "int_bytes",
    "str_bytes",
]

DEFAULT_MAX_DEPTH = 1000
DEFAULT_MAX_DECOMPRESSED = 64 * 1024 * 1024


def _load_speedups() -> Any:
    """The C accelerator module, or ``None`` (not built, or ``AXON_PORT_PURE_PYTHON=1``)."""
    if os.environ.get("AXON_PORT_PURE_PYTHON", "") not in ("", "0"):
        return None
    try:
        return importlib.import_module("axon_port.codecs._etf_speedups")
    except ImportError:
        return None


_speedups = _load_speedups()
SPEEDUPS_AVAILABLE: bool = _speedups is not None


class EtfCodec:
    """Erlang External Term Format (``term_to_binary``/``binary_to_term``) codec.

    ``speedups``: ``None`` (default) uses the C accelerator when it is available,
    ``False`` forces pure Python, ``True`` requires the accelerator (``RuntimeError``
    if it is not available).  Both give the same results and raise the same errors.
    """

    name = "etf"

    def __init__(
        self,
        max_decompressed: int = DEFAULT_MAX_DECOMPRESSED,
        max_depth: int = DEFAULT_MAX_DEPTH,
        *,
        speedups: bool | None = None,
        budget_factor: int | None = None,
        keep_encoded: str | None = None,
    ) -> None:
        self.max_decompressed = max_decompressed
        self.max_depth = max_depth
        #: The top-level map key whose list value :meth:`decode` keeps encoded (an
        #: ``EncodedTerms``, elements decoded on demand with :meth:`decode_item`).
        self.keep_encoded = keep_encoded
        #: A payload of N bytes may decode to ``budget_factor * N + DECODE_BUDGET_FLOOR``
        #: estimated bytes of Python objects (``None``: unbounded).
        self.budget_factor = budget_factor
        if speedups and not SPEEDUPS_AVAILABLE:
            raise RuntimeError("the ETF C accelerator (_etf_speedups) is not available")
        use_c = SPEEDUPS_AVAILABLE if speedups is None else speedups
        self._c: Any = _speedups if use_c and type(max_depth) is int else None
        self.speedups = self._c is not None

    def decode(self, payload: bytes) -> Any:
        """Decode one ``term_to_binary`` payload. Raises ``DecodeError`` only.

        With ``keep_encoded``, a non-empty proper list of plain terms under that
        key of a top-level map comes back as an ``EncodedTerms`` whose
        ``decode_item`` is :meth:`decode_item`.
        """
        keep = self.keep_encoded
        value = self._decode(payload, self.max_depth, keep)
        if keep is not None and type(value) is dict:
            kept = value.get(keep)
            if type(kept) is EncodedTerms:
                kept.decode_item = self.decode_item
        return value

    def decode_item(self, item: bytes) -> Any:
        """Decode one element of an ``EncodedTerms`` this codec made: the checks and
        limits it would have had inside the payload (its depth is two below the
        top: the map and the list)."""
        return self._decode(b"\x83" + item, self.max_depth - 2, None)

    def _decode(self, payload: bytes, max_depth: int, keep: str | None) -> Any:
        c = self._c
        factor = self.budget_factor
        budget = None if factor is None else factor * len(payload) + DECODE_BUDGET_FLOOR
        if c is None:
            return _py_decode(payload, max_depth, self.max_decompressed, budget, keep)
        value = c.decode(payload, max_depth, budget, keep)
        if value is not NotImplemented:
            return value
        if payload[1:2] == b"\x50":  # compressed: inflate (bounded), then decode in C
            if len(payload) < 6:
                raise DecodeError("truncated term")
            data = b"\x83" + inflate(payload[2:], self.max_decompressed)
            if data[1:2] == b"\x50":
                raise DecodeError("unsupported term type 80 (COMPRESSED (nested))")
            value = c.decode(data, max_depth, budget, keep)
            if value is not NotImplemented:
                return value
            return _py_decode(data, max_depth, self.max_decompressed, budget, keep)
        return _py_decode(payload, max_depth, self.max_decompressed, budget, keep)

    def encode(self, term: Any) -> bytes:
        """Encode ``term`` (``Atom`` as atoms). Raises ``EncodeError`` only."""
        c = self._c
        if c is None:
            return _py_encode(term, self.max_depth)
        try:
            return c.encode(term, self.max_depth)  # type: ignore[no-any-return]
        except EncodeError:
            raise
        except RecursionError:
            raise EncodeError("value nesting is too deep (or cyclic)") from None
        except Exception as e:  # user code run by the encoder (items(), __index__, ...)
            raise EncodeError(f"cannot encode value: {type(e).__name__}: {e}") from None

    def encode_frame(self, frame: Mapping[str, Any]) -> bytes:
        """Encode a reply frame: top-level keys and ``type`` as atoms, nested atoms as binaries."""
        c = self._c
        if c is None:
            return _py_encode_frame(frame, self.max_depth)
        try:
            return c.encode_frame(frame, self.max_depth)  # type: ignore[no-any-return]
        except EncodeError:
            raise
        except RecursionError:
            raise EncodeError("value nesting is too deep (or cyclic)") from None
        except Exception as e:  # user code run by the encoder (items(), __index__, ...)
            raise EncodeError(f"cannot encode frame: {type(e).__name__}: {e}") from None
