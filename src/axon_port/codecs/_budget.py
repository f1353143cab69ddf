"""The decoded-size budget shared by both codecs (see ``axon_port.codecs``)."""

from __future__ import annotations

__all__ = ["DECODE_BUDGET_FACTOR", "DECODE_BUDGET_FLOOR"]

#: A payload of N bytes (as framed: compressed ETF counts its compressed size) may
#: decode to at most ``DECODE_BUDGET_FACTOR * N + DECODE_BUDGET_FLOOR`` estimated
#: bytes of Python objects; past it, decoding stops with ``frame_too_large``.
#: Measured: real requests cost 5-13x their ETF size; empty containers nested in
#: a container reach 64x. The floor lets compressed frames of ordinary data
#: (which cost 30-60x their compressed size) through, while a 32 KB deflate bomb
#: stops after ~1 M objects (~0.15 s) instead of 33 M.
DECODE_BUDGET_FACTOR = 16
DECODE_BUDGET_FLOOR = 64 << 20
