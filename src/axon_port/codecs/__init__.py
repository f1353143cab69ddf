"""Payload codecs: bytes <-> Python values, behind one small :class:`Codec` protocol.

The Python <-> ETF/msgpack mapping is defined here (``_etf``, ``_msgpack``) and in
``docs/protocol.md`` only. Decoding failures raise :class:`axon_port.errors.DecodeError`;
values the wire cannot carry raise :class:`axon_port.errors.EncodeError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from axon_port.codecs._budget import DECODE_BUDGET_FACTOR, DECODE_BUDGET_FLOOR

__all__ = ["CODEC_NAMES", "DECODE_BUDGET_FACTOR", "DECODE_BUDGET_FLOOR", "Codec", "get_codec"]

CODEC_NAMES = ("etf", "msgpack")


class Codec(Protocol):
    """What the transport and dispatcher need from a payload codec."""

    name: str

    def decode(self, payload: bytes) -> Any:
        """Decode one payload into one term. Raises ``DecodeError``; never anything else."""

    def encode(self, term: Any) -> bytes:
        """Encode any supported value (``Atom`` becomes an atom). Raises ``EncodeError``."""

    def encode_frame(self, frame: Mapping[str, Any]) -> bytes:
        """Encode a reply frame (a map).

        Top-level keys and the value under ``"type"`` become atoms; every other
        value is encoded with nested ``Atom``s as binaries, so clients can decode
        with ``binary_to_term(bin, [:safe])``. Raises ``EncodeError``.
        """


def get_codec(name: str, *, max_frame: int | None = None, keep_encoded: str | None = None) -> Codec:
    """Return the codec called ``name`` (``"etf"`` or ``"msgpack"``); ``ValueError`` otherwise.

    With ``max_frame``, decoding is bounded: compressed ETF may inflate to at most
    ``max_frame`` bytes, and a payload decodes to at most the decoded-size budget
    (:data:`DECODE_BUDGET_FACTOR`); past either, ``FrameTooLarge``.
    ``keep_encoded`` (ETF only; msgpack decodes everything): the top-level map key
    whose list value stays encoded (``axon_port._types.EncodedTerms``).
    """
    factor = None if max_frame is None else DECODE_BUDGET_FACTOR
    if name == "etf":
        from axon_port.codecs._etf import DEFAULT_MAX_DECOMPRESSED, EtfCodec

        return EtfCodec(
            DEFAULT_MAX_DECOMPRESSED if max_frame is None else max_frame,
            budget_factor=factor,
            keep_encoded=keep_encoded,
        )
    if name == "msgpack":
        from axon_port.codecs._msgpack import MsgpackCodec

        return MsgpackCodec(factor)
    raise ValueError(f"unknown codec {name!r}; expected one of {', '.join(CODEC_NAMES)}")
