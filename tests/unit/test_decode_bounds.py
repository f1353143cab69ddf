"""Decoded size is bounded by the frame limit, in both codecs and both ETF decoders."""

from __future__ import annotations

import random
import zlib
from typing import Any

import msgpack
import pytest

from axon_port.codecs import DECODE_BUDGET_FACTOR, get_codec
from axon_port.codecs._etf import SPEEDUPS_AVAILABLE, EtfCodec
from axon_port.errors import DecodeError, EncodeError, FrameTooLarge

SPEEDUPS = [False, True] if SPEEDUPS_AVAILABLE else [False]


def compressed(term: bytes) -> bytes:
    """``term_to_binary(t, [:compressed])`` of the ETF body ``term`` (no version byte)."""
    return b"\x83\x50" + len(term).to_bytes(4, "big") + zlib.compress(term, 9)


def list_of_empty_lists(n: int) -> bytes:
    return b"\x6c" + n.to_bytes(4, "big") + b"\x6a" * n + b"\x6a"


def etf(max_frame: int, speedups: bool) -> EtfCodec:
    return EtfCodec(max_frame, budget_factor=DECODE_BUDGET_FACTOR, speedups=speedups)


@pytest.mark.parametrize("speedups", SPEEDUPS)
def test_compressed_etf_may_not_inflate_past_max_frame(speedups: bool) -> None:
    codec = etf(1 << 20, speedups)
    bomb = compressed(b"\x6d" + (16 << 20).to_bytes(4, "big") + bytes(16 << 20))
    assert len(bomb) < 32 * 1024
    with pytest.raises(FrameTooLarge) as info:
        codec.decode(bomb)
    assert info.value.kind == "frame_too_large"
    # Within the limit it decodes, in C when the accelerator is there.
    assert codec.decode(compressed(b"\x6d\x00\x00\x00\x03abc")) == "abc"


@pytest.mark.parametrize("speedups", SPEEDUPS)
def test_a_32kb_compressed_bomb_of_empty_lists_stops_at_the_budget(speedups: bool) -> None:
    codec = etf(64 << 20, speedups)  # the default --max-frame
    bomb = compressed(list_of_empty_lists(30 << 20))
    assert len(bomb) < 40 * 1024
    with pytest.raises(FrameTooLarge):
        codec.decode(bomb)


@pytest.mark.parametrize("speedups", SPEEDUPS)
def test_uncompressed_amplification_is_bounded_by_the_budget(speedups: bool) -> None:
    max_frame = 8 << 20
    codec = etf(max_frame, speedups)
    payload = b"\x83" + list_of_empty_lists(max_frame - 16)  # fits in a frame, 64x in objects
    assert len(payload) <= max_frame
    with pytest.raises(FrameTooLarge):
        codec.decode(payload)
    # Ordinary frames of the same size are well within the budget.
    for value in (
        {"prompt": "x" * (max_frame - 100)},
        {"m": [{"a": i, "b": "c"} for i in range(200_000)]},
    ):
        wire = get_codec("etf").encode(value)
        assert len(wire) <= max_frame
        assert codec.decode(wire) == value
        assert codec.decode(compressed(wire[1:])) == value


def test_msgpack_amplification_is_bounded_by_the_budget() -> None:
    max_frame = 8 << 20
    codec = get_codec("msgpack", max_frame=max_frame)
    n = max_frame - 16
    payload = b"\xdd" + n.to_bytes(4, "big") + b"\x90" * n
    with pytest.raises(FrameTooLarge):
        codec.decode(payload)
    maps = b"\xdd" + (n // 3).to_bytes(4, "big") + b"\x81\x00\x80" * (n // 3)
    with pytest.raises(FrameTooLarge):
        codec.decode(maps)
    ordinary: Any = {"k": ["x" * 100] * 5000, "n": list(range(100_000)), "m": [{"a": 1}] * 9000}
    assert codec.decode(codec.encode(ordinary)) == ordinary


@pytest.mark.skipif(not SPEEDUPS_AVAILABLE, reason="the C accelerator is not built")
def test_the_c_msgpack_budget_scan_charges_exactly_as_the_python_one() -> None:
    from axon_port.codecs import _msgpack

    def python_scan(data: bytes, budget: int) -> bool:
        try:
            _msgpack._check_budget(data, budget)
        except FrameTooLarge:
            return False
        return True

    rng = random.Random(2026)
    for _ in range(5000):
        if rng.random() < 0.4:  # arbitrary bytes, truncated lengths included
            data = rng.randbytes(rng.randrange(1, 60))
        else:
            term: Any = [[] for _ in range(rng.randrange(50))] + [
                {"a" * rng.randrange(40): b"x" * rng.randrange(300), "n": 2**40}
                for _ in range(rng.randrange(5))
            ]
            data = msgpack.packb(term, use_bin_type=True)
            if rng.random() < 0.3:
                data = data[: rng.randrange(1, len(data) + 1)]
        budget = rng.randrange(0, 4000)
        assert _msgpack._c_within_budget(data, budget) == python_scan(data, budget), data


def test_get_codec_without_a_frame_limit_is_unbounded() -> None:
    assert get_codec("msgpack").decode(b"\x93\x90\x90\x90") == [[], [], []]


class GrowingMapping:
    """A Mapping (by registration) whose items() grows every time it is walked."""

    def __init__(self) -> None:
        self.d: dict[str, int] = {"type": 1}

    def __len__(self) -> int:
        return len(self.d)

    def __getitem__(self, k: str) -> int:
        return self.d[k]

    def __iter__(self) -> Any:
        return iter(list(self.d))

    def keys(self) -> Any:
        return list(self.d)

    def items(self) -> Any:
        def gen() -> Any:
            for k in list(self.d):
                yield k, self.d[k]
                self.d[f"k{len(self.d)}"] = 0

        return gen()


class RaisingItems(GrowingMapping):
    def items(self) -> Any:
        raise ValueError("items() is broken")


def _register() -> None:
    from collections.abc import Mapping

    Mapping.register(GrowingMapping)


_register()


@pytest.mark.parametrize("speedups", SPEEDUPS)
@pytest.mark.parametrize("cls", [GrowingMapping, RaisingItems])
def test_a_mapping_that_misbehaves_while_encoded_is_an_encode_error(
    speedups: bool, cls: type
) -> None:
    codec = EtfCodec(speedups=speedups)
    for encode in (codec.encode, codec.encode_frame):
        try:
            out = encode(cls())
        except EncodeError:
            continue
        assert codec.decode(out)  # if it encoded, the bytes are a valid term


@pytest.mark.parametrize("speedups", SPEEDUPS)
def test_a_dict_that_grows_while_a_value_is_encoded_is_an_encode_error(speedups: bool) -> None:
    codec = EtfCodec(speedups=speedups)
    target: dict[Any, Any] = {}

    class Sneaky(int):
        def __index__(self) -> int:
            target[len(target)] = 0
            return 1

    class Grower(GrowingMapping):
        def items(self) -> Any:
            target[len(target) + 100] = 1
            return iter([("a", 1)])

    target["x"] = Grower()
    target["y"] = 2
    for encode in (codec.encode, codec.encode_frame):
        try:
            out = encode(target)
        except EncodeError:
            continue
        codec.decode(out)


def test_msgpack_misbehaving_mappings_are_encode_errors() -> None:
    codec = get_codec("msgpack")
    with pytest.raises(EncodeError):
        codec.encode(RaisingItems())
    with pytest.raises(DecodeError):
        codec.decode(b"\xc1")
