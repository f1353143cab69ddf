"""ETF codec: one table drives encoder and decoder; then the error and robustness cases."""

from __future__ import annotations

import functools
import struct
import zlib
from collections.abc import Callable
from typing import Any

import pytest

from axon_port._types import Atom, FrozenList, FrozenMap
from axon_port.codecs import get_codec
from axon_port.codecs._etf import SPEEDUPS_AVAILABLE, EtfCodec
from axon_port.errors import DecodeError, EncodeError

MakeCodec = Callable[..., EtfCodec]


@pytest.fixture(scope="module", params=["c", "python"])
def make_codec(request: pytest.FixtureRequest) -> MakeCodec:
    """``EtfCodec`` with the C accelerator, then pure Python (same tables, same results)."""
    if request.param == "c" and not SPEEDUPS_AVAILABLE:
        pytest.skip("the C accelerator (_etf_speedups) is not built")
    return functools.partial(EtfCodec, speedups=request.param == "c")


@pytest.fixture(scope="module")
def codec(make_codec: MakeCodec) -> EtfCodec:
    return make_codec()


def b(*parts: bytes | int) -> bytes:
    return b"".join(bytes([p]) if isinstance(p, int) else p for p in parts)


def u32(n: int) -> bytes:
    return struct.pack(">I", n)


def binary(s: bytes) -> bytes:
    return b(109, u32(len(s)), s)


# (python value, exact ETF bytes without the version byte); encode(value) == bytes and
# decode(bytes) == value, with types checked.
TABLE: list[tuple[Any, bytes]] = [
    (0, b(97, 0)),
    (255, b(97, 255)),
    (256, b(98, u32(256))),
    (-1, b(98, b"\xff\xff\xff\xff")),
    (2**31, b(110, 4, 0, b"\x00\x00\x00\x80")),
    (-(2**64), b(110, 9, 1, b"\x00" * 8 + b"\x01")),
    (2**2048, b(111, u32(257), 0, b"\x00" * 256 + b"\x01")),
    (1.5, b(70, struct.pack(">d", 1.5))),
    ("héllo", binary("héllo".encode())),
    ("", binary(b"")),
    (b"\xff\x00", binary(b"\xff\x00")),
    (Atom("ok"), b(119, 2, b"ok")),
    (Atom("héllo"), b(119, 6, "héllo".encode())),
    (None, b(119, 3, b"nil")),
    (True, b(119, 4, b"true")),
    (False, b(119, 5, b"false")),
    ([], b(106)),
    ([1, "a"], b(108, u32(2), 97, 1, binary(b"a"), 106)),
    ((), b(104, 0)),
    ((Atom("ok"), 1), b(104, 2, 119, 2, b"ok", 97, 1)),
    (tuple(range(256)), b(105, u32(256), *[b(97, i) for i in range(256)])),
    ({}, b(116, u32(0))),
    ({"a": [1]}, b(116, u32(1), binary(b"a"), 108, u32(1), 97, 1, 106)),
    ({FrozenList([1]): 2}, b(116, u32(1), 108, u32(1), 97, 1, 106, 97, 2)),
    ({FrozenMap({Atom("a"): 1}): ([],)},
     b(116, u32(1), 116, u32(1), 119, 1, b"a", 97, 1, 104, 1, 106)),
    ({(1, FrozenList([2])): 3}, b(116, u32(1), 104, 2, 97, 1, 108, u32(1), 97, 2, 106, 97, 3)),
]  # fmt: skip


@pytest.mark.parametrize(("value", "wire"), TABLE, ids=[repr(v)[:40] for v, _ in TABLE])
def test_encoding_writes_the_exact_bytes_and_decoding_reads_them_back(
    value: Any, wire: bytes, codec: EtfCodec
) -> None:
    assert codec.encode(value) == b"\x83" + wire
    got = codec.decode(b"\x83" + wire)
    assert got == value
    assert type(got) is type(value)


def test_bytes_like_values_and_frozen_forms_encode_as_binaries_lists_and_maps(
    codec: EtfCodec,
) -> None:
    assert codec.encode(bytearray(b"\xff")) == codec.encode(b"\xff")
    assert codec.encode(FrozenList([1])) == codec.encode([1])
    assert codec.encode(FrozenMap({"a": 1})) == codec.encode({"a": 1})


def test_old_atom_tags_decode_as_latin1_and_special_atoms_become_none_and_bools(
    codec: EtfCodec,
) -> None:
    assert codec.decode(b(131, 100, 0, 5, "héllo".encode("latin-1"))) == Atom("héllo")
    assert codec.decode(b(131, 115, 3, b"nil")) is None
    assert codec.decode(b(131, 118, 0, 4, b"true")) is True
    assert type(codec.decode(b(131, 115, 2, b"ok"))) is Atom


def test_a_charlist_decodes_to_a_list_of_ints(codec: EtfCodec) -> None:
    assert codec.decode(b(131, 107, 0, 3, b"abc")) == [97, 98, 99]


def test_old_float_text_form_decodes(codec: EtfCodec) -> None:
    text = b"%.20e" % 0.1
    assert codec.decode(b(131, 99, text + b"\0" * (31 - len(text)))) == 0.1


def test_a_bitstring_with_whole_bytes_is_bytes_and_otherwise_an_error(codec: EtfCodec) -> None:
    assert codec.decode(b(131, 77, u32(2), 8, b"ab")) == b"ab"
    with pytest.raises(DecodeError, match="bitstring"):
        codec.decode(b(131, 77, u32(2), 3, b"ab"))


def test_encode_frame_writes_top_level_keys_and_type_as_atoms_and_nested_atoms_as_binaries(
    codec: EtfCodec,
) -> None:
    frame = {"type": "error", "id": None, "error": {Atom("kind"): Atom("bad_frame")}}
    got = codec.decode(codec.encode_frame(frame))
    assert got == frame
    assert [type(k) for k in got] == [Atom, Atom, Atom]
    assert type(got["type"]) is Atom
    [(k, v)] = got["error"].items()
    assert type(k) is str and type(v) is str


def test_get_codec_returns_the_etf_codec() -> None:
    assert get_codec("etf").name == "etf"


@pytest.mark.parametrize(
    "value",
    [{1, 2}, object(), 1j, float("nan"), float("inf"), -float("inf"), "\ud800", Atom("a" * 256)],
    ids=repr,
)
def test_values_the_wire_cannot_carry_are_an_encode_error(value: Any, codec: EtfCodec) -> None:
    with pytest.raises(EncodeError):
        codec.encode([value])


def test_an_encode_error_names_the_offending_type(codec: EtfCodec) -> None:
    with pytest.raises(EncodeError, match="set"):
        codec.encode({"x": {1}})


def test_cyclic_and_too_deep_values_are_an_encode_error(codec: EtfCodec) -> None:
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    for value in (cyclic, deep):
        with pytest.raises(EncodeError, match="deep"):
            codec.encode(value)


def test_decoding_an_improper_list_is_a_clear_error(codec: EtfCodec) -> None:
    with pytest.raises(DecodeError, match="improper list"):
        codec.decode(b(131, 108, u32(1), 97, 1, 97, 2))


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "truncated"),
        (b(130, 97, 1), "version"),
        (b(131, 88, b"\x00" * 20), "unsupported term type 88"),
        (b(131, 103), "unsupported term type 103"),
        (b(131, 112), "NEW_FUN_EXT"),
        (b(131, 70, struct.pack(">d", float("nan"))), "non-finite"),
        (b(131, 119, 2, b"\xff\xfe"), "UTF-8"),
        (b(131, 118, 0, 1, b"\x80"), "UTF-8"),
        (b(131, 111, u32(2**32 - 1), 0, b"\x01"), "big integer declares"),
        (b(131, 109, u32(2**32 - 1), b"abc"), "truncated"),
        (b(131, 108, u32(2**32 - 1), 106), "declared length"),
        (b(131, 116, u32(2**31), 97, 1), "declared length"),
        (b(131, 105, u32(2**32 - 1), 97, 1), "declared length"),
        (b(131, 107, 255, 255, b"ab"), "truncated"),
        (b(131, 116, u32(2), 119, 1, b"a", 97, 1, 109, u32(1), b"a", 97, 2), "collide"),
        (b(131, 97, 1, 0), "trailing"),
    ],
)
def test_malformed_payloads_are_a_decode_error(
    payload: bytes, message: str, codec: EtfCodec
) -> None:
    with pytest.raises(DecodeError, match=message):
        codec.decode(payload)


def test_a_hundred_thousand_deep_list_is_a_decode_error_not_a_crash(codec: EtfCodec) -> None:
    n = 100_000
    payload = b"\x83" + b(108, u32(1)) * n + b"\x6a" + b"\x6a" * n
    with pytest.raises(DecodeError, match="deep"):
        codec.decode(payload)
    map_bomb = b"\x83" + b(116, u32(1), 97, 1) * n + b(116, u32(0))
    with pytest.raises(DecodeError, match="deep"):
        codec.decode(map_bomb)


def test_nesting_within_the_limit_decodes(codec: EtfCodec, make_codec: MakeCodec) -> None:
    shallow = make_codec(max_depth=50)
    value: Any = []
    for _ in range(50):
        value = [value]
    assert shallow.decode(shallow.encode(value)) == value
    with pytest.raises(DecodeError):
        shallow.decode(codec.encode([value]))
    with pytest.raises(EncodeError):
        shallow.encode([value])


def compressed(body: bytes, declared: int | None = None) -> bytes:
    size = len(body) if declared is None else declared
    return b(131, 80, u32(size), zlib.compress(body))


def test_a_compressed_term_inflates_to_the_term(codec: EtfCodec) -> None:
    body = codec.encode(["hello"] * 100)[1:]
    assert codec.decode(compressed(body)) == ["hello"] * 100


def test_a_zip_bomb_declaring_a_small_size_is_a_decode_error_without_inflating_it_all(
    codec: EtfCodec,
) -> None:
    bomb = b(109, u32(500_000_000)) + b"\x00" * 500_000_000
    payload = b(131, 80, u32(100), zlib.compress(bomb[:5] + b"\x00" * 50_000_000, 9))
    with pytest.raises(DecodeError, match="declared"):
        codec.decode(payload)


def test_a_compressed_term_declaring_more_than_the_limit_is_refused_before_inflating(
    codec: EtfCodec, make_codec: MakeCodec
) -> None:
    small = make_codec(max_decompressed=1000)
    with pytest.raises(DecodeError, match="limit"):
        small.decode(compressed(b"\x6a", declared=1001))
    with pytest.raises(DecodeError, match="limit"):
        codec.decode(compressed(b"\x6a", declared=2**32 - 1))


@pytest.mark.parametrize(
    "payload",
    [
        compressed(b"\x6a\x6a"),  # inflates to two terms
        compressed(b"\x6a", declared=5),  # inflates to less than declared
        compressed(b"\x6a") + b"junk",  # bytes after the zlib stream
        compressed(b"\x6a\x6a")[:-3],  # truncated zlib stream
        b(131, 80, u32(1), b"not zlib at all"),
    ],
)
def test_malformed_compressed_terms_are_a_decode_error(payload: bytes, codec: EtfCodec) -> None:
    with pytest.raises(DecodeError):
        codec.decode(payload)


def test_payload_may_be_a_bytearray_or_memoryview(codec: EtfCodec) -> None:
    wire = codec.encode({"a": [1, 2.5]})
    assert codec.decode(bytearray(wire)) == codec.decode(memoryview(wire)) == {"a": [1, 2.5]}
