"""Property tests for both codecs: round trips over the full mapping, and fuzzing.

Round trip: ``decode(encode(v))`` equals ``v`` mapped through the codec's documented
Python-side mapping (checked with exact types). Fuzz: random bytes and mutated valid
payloads either decode or raise ``DecodeError`` -- never anything else.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typed_equality import assert_same

from axon_port._types import Atom, FrozenList, FrozenMap
from axon_port.codecs._etf import SPEEDUPS_AVAILABLE, EtfCodec
from axon_port.codecs._msgpack import MsgpackCodec
from axon_port.errors import DecodeError

MSGPACK = MsgpackCodec()


@pytest.fixture(scope="module", params=["c", "python"])
def etf(request: pytest.FixtureRequest) -> EtfCodec:
    """The ETF codec with the C accelerator, then pure Python (the same properties hold)."""
    if request.param == "c" and not SPEEDUPS_AVAILABLE:
        pytest.skip("the C accelerator (_etf_speedups) is not built")
    return EtfCodec(speedups=request.param == "c")


SPECIAL = {"nil", "true", "false"}

atoms = st.text(max_size=20).filter(lambda s: s not in SPECIAL).map(Atom)
floats = st.floats(allow_nan=False, allow_infinity=False)


def distinct_keys(d: dict[Any, Any]) -> bool:
    """Keys stay distinct once mapped (``b"a"`` and ``"a"`` both decode from ETF as ``"a"``)."""
    return len({etf_expected(k, True) for k in d}) == len(d)


def scalars(ints: st.SearchStrategy[int]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), st.booleans(), ints, floats, st.text(), st.binary(), atoms)


def hashables(ints: st.SearchStrategy[int]) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars(ints),
        lambda c: st.one_of(
            st.lists(c, max_size=3).map(FrozenList),
            st.tuples(c, c),
            st.dictionaries(c, c, max_size=3).filter(distinct_keys).map(FrozenMap),
        ),
        max_leaves=8,
    )


def values(ints: st.SearchStrategy[int]) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars(ints),
        lambda c: st.one_of(
            st.lists(c, max_size=5),
            st.lists(c, max_size=5).map(tuple),
            st.dictionaries(hashables(ints), c, max_size=5).filter(distinct_keys),
        ),
        max_leaves=30,
    )


ETF_VALUES = values(st.integers())
MSGPACK_VALUES = values(st.integers(min_value=-(2**63), max_value=2**64 - 1))


def etf_expected(x: Any, key: bool = False) -> Any:
    """What the ETF codec decodes ``x`` to: UTF-8 bytes become str, keys get frozen forms."""
    if isinstance(x, bytes):
        try:
            return x.decode()
        except UnicodeDecodeError:
            return x
    if isinstance(x, list):  # includes nothing else: FrozenList is a tuple subclass
        items = [etf_expected(v, key) for v in x]
        return FrozenList(items) if key else items
    if isinstance(x, FrozenList):
        items = [etf_expected(v, key) for v in x]
        return FrozenList(items) if key else items
    if isinstance(x, tuple):
        return tuple(etf_expected(v, key) for v in x)
    if isinstance(x, dict | FrozenMap):
        d = {etf_expected(k, True): etf_expected(v, key) for k, v in x.items()}
        return FrozenMap(d) if key else d
    return x


def msgpack_expected(x: Any, key: bool = False) -> Any:
    """What the msgpack codec decodes ``x`` to: atoms are str, tuples are arrays."""
    if isinstance(x, Atom):
        return str(x)
    if isinstance(x, list | tuple):
        items = [msgpack_expected(v, key) for v in x]
        return FrozenList(items) if key else items
    if isinstance(x, dict | FrozenMap):
        d = {msgpack_expected(k, True): msgpack_expected(v, key) for k, v in x.items()}
        return FrozenMap(d) if key else d
    return x


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(ETF_VALUES)
def test_etf_round_trips_every_value_of_the_mapping(etf: EtfCodec, value: Any) -> None:
    assert_same(etf.decode(etf.encode(value)), etf_expected(value), nan_equal=True)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(MSGPACK_VALUES)
def test_msgpack_round_trips_every_value_of_the_mapping(value: Any) -> None:
    assert_same(MSGPACK.decode(MSGPACK.encode(value)), msgpack_expected(value), nan_equal=True)


@settings(max_examples=100)
@given(st.dictionaries(st.text(max_size=10).filter(lambda k: k not in SPECIAL), ETF_VALUES))
def test_etf_frames_decode_with_atom_keys_and_binary_nested_atoms(
    etf: EtfCodec, frame: dict[str, Any]
) -> None:
    got = etf.decode(etf.encode_frame(frame))
    assert got == {k: etf_expected(v) for k, v in frame.items()}
    assert all(type(k) is Atom for k in got)


def decode_or_decode_error(codec: Any, payload: bytes) -> None:
    with contextlib.suppress(DecodeError):
        codec.decode(payload)


@settings(max_examples=1000)
@given(st.binary(max_size=64))
def test_random_bytes_decode_or_raise_decode_error_only(etf: EtfCodec, payload: bytes) -> None:
    decode_or_decode_error(etf, payload)
    decode_or_decode_error(etf, b"\x83" + payload)


@settings(max_examples=1000)
@given(st.binary(max_size=64))
def test_random_bytes_decode_or_raise_decode_error_only_msgpack(payload: bytes) -> None:
    decode_or_decode_error(MSGPACK, payload)


OPS = st.sampled_from(["flip", "insert", "delete", "cut"])
MUTATION = st.tuples(OPS, st.integers(0, 10**6), st.integers(0, 255))
mutations = st.lists(MUTATION, min_size=1, max_size=4)


def mutate(data: bytes, ops: list[tuple[str, int, int]]) -> bytes:
    buf = bytearray(data)
    for op, where, byte in ops:
        i = where % (len(buf) + 1)
        if op == "flip" and i < len(buf):
            buf[i] = byte
        elif op == "insert":
            buf.insert(i, byte)
        elif op == "delete" and i < len(buf):
            del buf[i]
        elif op == "cut":
            del buf[i:]
    return bytes(buf)


@settings(max_examples=1000, suppress_health_check=[HealthCheck.too_slow])
@given(ETF_VALUES, mutations, st.booleans())
def test_mutated_etf_payloads_decode_or_raise_decode_error_only(
    etf: EtfCodec, value: Any, ops: list[tuple[str, int, int]], compress: bool
) -> None:
    data = etf.encode(value)
    if compress:
        import zlib

        data = b"\x83\x50" + len(data[1:]).to_bytes(4, "big") + zlib.compress(data[1:])
    decode_or_decode_error(etf, mutate(data, ops))


@settings(max_examples=1000, suppress_health_check=[HealthCheck.too_slow])
@given(MSGPACK_VALUES, mutations)
def test_mutated_msgpack_payloads_decode_or_raise_decode_error_only(
    value: Any, ops: list[tuple[str, int, int]]
) -> None:
    decode_or_decode_error(MSGPACK, mutate(MSGPACK.encode(value), ops))
