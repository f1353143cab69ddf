"""msgpack codec: the shared Python mapping on top of the msgpack C library."""

from __future__ import annotations

import struct
from typing import Any

import msgpack
import pytest

from axon_port._types import Atom, FrozenList, FrozenMap
from axon_port.codecs import get_codec
from axon_port.codecs._msgpack import MsgpackCodec
from axon_port.errors import DecodeError, EncodeError

CODEC = MsgpackCodec()

# (python value, exact msgpack bytes, value decoded back)
TABLE: list[tuple[Any, bytes, Any]] = [
    (1, b"\x01", 1),
    (-(2**63), b"\xd3\x80" + b"\x00" * 7, -(2**63)),
    (2**64 - 1, b"\xcf" + b"\xff" * 8, 2**64 - 1),
    (1.5, b"\xcb" + struct.pack(">d", 1.5), 1.5),
    ("hé", b"\xa3h\xc3\xa9", "hé"),
    (Atom("ok"), b"\xa2ok", "ok"),
    (b"\xff", b"\xc4\x01\xff", b"\xff"),
    (None, b"\xc0", None),
    (True, b"\xc3", True),
    ([1, "a"], b"\x92\x01\xa1a", [1, "a"]),
    ((1, 2), b"\x92\x01\x02", [1, 2]),
    ({"a": {}}, b"\x81\xa1a\x80", {"a": {}}),
    ({FrozenList([1]): 2}, b"\x81\x91\x01\x02", {FrozenList([1]): 2}),
    ({FrozenMap({"a": FrozenList([1])}): [3]}, b"\x81\x81\xa1a\x91\x01\x91\x03",
     {FrozenMap({"a": FrozenList([1])}): [3]}),
]  # fmt: skip


@pytest.mark.parametrize(("value", "wire", "back"), TABLE, ids=[repr(t[0])[:40] for t in TABLE])
def test_encoding_writes_the_exact_bytes_and_decoding_reads_the_mapped_value(
    value: Any, wire: bytes, back: Any
) -> None:
    assert CODEC.encode(value) == wire
    got = CODEC.decode(wire)
    assert got == back
    assert type(got) is type(back)


def test_nested_frozen_keys_are_frozen_all_the_way_down_but_values_stay_plain() -> None:
    got = CODEC.decode(CODEC.encode({FrozenList([FrozenMap({"k": FrozenList([1])})]): [[1]]}))
    [(key, value)] = got.items()
    assert type(key) is FrozenList and type(key[0]) is FrozenMap
    assert type(key[0]["k"]) is FrozenList
    assert value == [[1]] and type(value[0]) is list


def test_encode_frame_is_plain_encode() -> None:
    frame = {"type": Atom("pong"), "id": 1}
    assert (
        CODEC.encode_frame(frame) == CODEC.encode(frame) == msgpack.packb({"type": "pong", "id": 1})
    )
    assert get_codec("msgpack").name == "msgpack"


@pytest.mark.parametrize(
    "value",
    [2**64, -(2**63) - 1, float("nan"), float("inf"), -float("inf"), {1}, object(), "\ud800"],
    ids=repr,
)
def test_values_the_wire_cannot_carry_are_an_encode_error(value: Any) -> None:
    with pytest.raises(EncodeError):
        CODEC.encode({"x": [value]})


def test_a_string_that_merely_looks_like_a_nan_marker_still_encodes() -> None:
    tricky = "\xcb\x7f\xf8".encode("latin-1")
    assert CODEC.decode(CODEC.encode({"b": tricky, "f": 1.0})) == {"b": tricky, "f": 1.0}


def test_cyclic_values_are_an_encode_error() -> None:
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    with pytest.raises(EncodeError):
        CODEC.encode(cyclic)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "malformed"),
        (b"\x92\x01", "malformed"),
        (b"\x01\x02", "trailing"),
        (b"\xa2\xff\xfe", "UTF-8"),
        (b"\x81\xa2\xff\xfe\x01", "UTF-8"),
        (b"\xc1", "malformed"),
        (b"\xd6\xff\x00\x00\x00\x01", "ext"),
        (b"\x91\xc7\x01\x05a", "ext"),
        (b"\x81\x91\xd6\xff\x00\x00\x00\x01\x01", "ext"),
        (b"\x91" * 100_000 + b"\x90", "malformed"),
        (b"\xdd\xff\xff\xff\xff", "malformed"),
    ],
)
def test_malformed_payloads_are_a_decode_error(payload: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        CODEC.decode(payload)


def test_duplicate_map_keys_keep_the_last_value_like_msgpack_does() -> None:
    assert CODEC.decode(b"\x82\x01\x01\x01\x02") == {1: 2}
    assert CODEC.decode(b"\x82\x91\x01\x01\x91\x01\x02") == {FrozenList([1]): 2}
