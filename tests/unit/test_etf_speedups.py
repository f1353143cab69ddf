"""The C accelerator of the ETF codec against the pure-Python reference.

Differential tests: for random values (including the exotic ones: subclasses,
mappings that are not dicts, unencodable values, cyclic and too-deep values) and
for random and mutated byte strings, the C and the Python codec give identical
results -- same bytes, or decoded values equal with the same types all the way
down -- or raise the same exception type (and, for decoding, the same message).
The shared tables in ``test_etf.py``, ``test_etf_golden.py`` and
``test_codec_properties.py`` run against both implementations too.
"""

from __future__ import annotations

import collections
import contextlib
import enum
import os
import struct
import tracemalloc
import zlib
from typing import Any, NamedTuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typed_equality import assert_same

from axon_port._types import Atom, FrozenList, FrozenMap
from axon_port.codecs._etf import SPEEDUPS_AVAILABLE, EtfCodec

PY = EtfCodec(speedups=False)


def test_the_accelerator_is_built_when_ci_requires_it() -> None:
    """CI sets ``AXON_PORT_REQUIRE_SPEEDUPS=1``: there, a missing ``.so`` is a failure."""
    if os.environ.get("AXON_PORT_REQUIRE_SPEEDUPS") != "1":
        pytest.skip("AXON_PORT_REQUIRE_SPEEDUPS=1 is not set")
    assert SPEEDUPS_AVAILABLE, "axon_port.codecs._etf_speedups is not built (or is disabled)"
    assert EtfCodec().speedups


def test_speedups_true_without_the_accelerator_is_an_error_and_false_is_pure_python() -> None:
    assert not PY.speedups
    if SPEEDUPS_AVAILABLE:
        assert EtfCodec(speedups=True).speedups
    else:
        with pytest.raises(RuntimeError):
            EtfCodec(speedups=True)


needs_c = pytest.mark.skipif(not SPEEDUPS_AVAILABLE, reason="the C accelerator is not built")
C = EtfCodec(speedups=True) if SPEEDUPS_AVAILABLE else PY


class Color(enum.StrEnum):
    RED = "red"


class Num(enum.IntEnum):
    ONE = 1
    BIG = 2**70


class Ratio(float):
    pass


class Point(NamedTuple):
    x: Any
    y: Any


class MyList(list[Any]):
    pass


class MyDict(dict[Any, Any]):
    pass


BOUNDARY_INTS = [
    s * (2**k + d) for k in (8, 31, 32, 63, 64, 2040, 2048) for d in (-1, 0, 1) for s in (1, -1)
]
OPAQUE = [object(), 1j, {1}, frozenset(), Ellipsis, type, range(3)]


def hashable_scalars() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(-(2**2100), 2**2100),
        st.floats(),
        st.text(max_size=8),
        st.binary(max_size=8),
        st.text(max_size=300).map(Atom),
        st.sampled_from(
            [Color.RED, Num.ONE, Num.BIG, Ratio(2.5), Atom("nil"), Atom("true"), "\ud800"]
        ),
        st.sampled_from([Atom("\udc00"), frozenset(), 1j, Ellipsis]),
        st.sampled_from(BOUNDARY_INTS),
    )


def keys() -> st.SearchStrategy[Any]:
    return st.recursive(
        hashable_scalars(),
        lambda c: st.one_of(
            st.tuples(c, c),
            st.lists(c, max_size=3).map(FrozenList),
            st.dictionaries(c, c, max_size=3).map(FrozenMap),
            st.tuples(c, c).map(lambda t: Point(*t)),
        ),
        max_leaves=6,
    )


def values() -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        hashable_scalars(),
        st.binary(max_size=8).map(bytearray),
        st.sampled_from(OPAQUE),
    )
    return st.recursive(
        scalars,
        lambda c: st.one_of(
            st.lists(c, max_size=4),
            st.lists(c, max_size=4).map(tuple),
            st.lists(c, max_size=300).map(tuple),
            st.dictionaries(keys(), c, max_size=4),
            st.lists(c, max_size=3).map(FrozenList),
            st.lists(c, max_size=3).map(MyList),
            st.dictionaries(keys(), c, max_size=3).map(MyDict),
            st.dictionaries(keys(), c, max_size=3).map(collections.OrderedDict),
            st.tuples(c, c).map(lambda t: Point(*t)),
        ),
        max_leaves=25,
    )


def outcome(fn: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(*args)
    except Exception as e:
        return "error", type(e)


def check_encode(value: Any, max_depth: int = 512) -> None:
    c = EtfCodec(max_depth=max_depth, speedups=True)
    p = EtfCodec(max_depth=max_depth, speedups=False)
    assert outcome(c.encode, value) == outcome(p.encode, value)
    if isinstance(value, dict):
        assert outcome(c.encode_frame, value) == outcome(p.encode_frame, value)


def check_decode(payload: Any, max_depth: int = 512, max_decompressed: int = 1 << 20) -> None:
    c = EtfCodec(max_decompressed, max_depth, speedups=True)
    p = EtfCodec(max_decompressed, max_depth, speedups=False)
    try:
        want = p.decode(payload)
    except Exception as e:
        with pytest.raises(type(e)) as info:
            c.decode(payload)
        assert str(info.value) == str(e)
        return
    assert_same(c.decode(payload), want)


@needs_c
@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(values(), st.integers(-1, 8) | st.just(512))
def test_c_encodes_every_value_exactly_as_python(value: Any, max_depth: int) -> None:
    check_encode(value, max_depth)
    check_encode([value, {"type": value, Atom("k"): [value]}], max_depth)


@needs_c
@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(keys(), values(), max_size=5), st.sampled_from(["type", Atom("type")]))
def test_c_encodes_every_frame_exactly_as_python(frame: dict[Any, Any], type_key: str) -> None:
    frame[type_key] = Atom("result")
    for f in (frame, FrozenMap(frame), collections.OrderedDict(frame), MyDict(frame)):
        c, p = outcome(C.encode_frame, f), outcome(PY.encode_frame, f)
        assert c == p


@needs_c
@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=80))
def test_c_decodes_random_bytes_exactly_as_python(payload: bytes) -> None:
    check_decode(payload)
    check_decode(b"\x83" + payload)


OPS = st.sampled_from(["flip", "insert", "delete", "cut"])
MUTATIONS = st.lists(st.tuples(OPS, st.integers(0, 10**6), st.integers(0, 255)), max_size=4)


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


@needs_c
@settings(max_examples=2000, suppress_health_check=[HealthCheck.too_slow])
@given(values(), MUTATIONS, st.booleans(), st.integers(0, 6) | st.just(512))
def test_c_decodes_mutated_payloads_exactly_as_python(
    value: Any, ops: list[tuple[str, int, int]], compress: bool, max_depth: int
) -> None:
    try:
        data = PY.encode(value)
    except Exception:
        data = PY.encode([1, "a", Atom("b"), (2.5, b"\xff"), {"k": [None]}])
    if compress:
        data = b"\x83\x50" + len(data[1:]).to_bytes(4, "big") + zlib.compress(data[1:])
    check_decode(mutate(data, ops), max_depth)


def t(*parts: bytes | int) -> bytes:
    return b"\x83" + b"".join(bytes([p]) if isinstance(p, int) else p for p in parts)


def u32(n: int) -> bytes:
    return struct.pack(">I", n)


FLOAT_TEXT = (b"%.20e" % 0.1).ljust(31, b"\0")
EDGE_PAYLOADS = [
    b"",
    b"\x83",
    b"\x82",
    "text",
    3,
    bytearray(t(97, 1)),
    memoryview(t(106)),
    t(99, FLOAT_TEXT),  # FLOAT_EXT: left to Python
    t(99, b"inf".ljust(31, b"\0")),
    t(99, b" 1_0.5 ".ljust(31, b"\0")),
    t(108, u32(2), 99, FLOAT_TEXT, 97, 1, 106),
    t(116, u32(1), 108, u32(1), 97, 1, 106, 97, 2),  # a list key: left to Python
    t(116, u32(2), 108, u32(1), 97, 1, 106, 97, 2, 104, 1, 97, 1, 97, 3),  # [1] vs {1}
    t(116, u32(2), 97, 1, 97, 1, 70, struct.pack(">d", 1.0), 97, 2),  # 1 and 1.0 collide
    t(116, u32(2), 119, 1, b"a", 97, 1, 109, u32(1), b"a", 97, 2),  # :a and "a"
    t(116, u32(1), 116, u32(1), 108, u32(1), 97, 1, 106, 97, 1, 97, 2),
    t(80, u32(1), zlib.compress(b"\x6a")),
    t(108, u32(1), 80, u32(1), zlib.compress(b"\x6a"), 106),
    t(108, u32(1), 97, 1, 97, 2),
    t(108, u32(0), 97, 2),
    t(108, u32(0)),
    t(110, 0, 1),
    t(110, 3, 1, b"\x01\x02\x03"),
    t(110, 3, 7, b"\x01\x02"),
    t(110, 2, 7, b"\x01\x02"),
    t(110, 2, 255, b"\x01\x02"),
    t(111, u32(1), 2, b"\xff"),
    t(119, 4, b"trux"),
    t(119, 3, b"nul"),
    t(119, 5, b"falsy"),
    t(119, 4, b"True"),
    t(100, 0, 5, b"false"),
    t(118, 0, 3, b"nil"),
    t(108, u32(2), 118, 1, 44, b"a" * 300, 118, 1, 44, b"a" * 300, 106),  # long: not cached
    t(100, 1, 44, b"\xe9" * 300),
    t(111, u32(2**32 - 1), 0),
    t(77, u32(1), 8),
    t(77, u32(1)),
    t(77, u32(1), 7, b"a"),
    t(100, 0, 3, b"nil"),
    t(100, 0, 2, b"\xe9t"),
    t(115, 4, b"true"),
    t(118, 0, 2, b"\xc3\xa9"),
    t(119, 2, b"\xff\xfe"),
    t(119, 200, b"abc"),
    t(109, u32(3), b"\xff\xfe\xfd"),
    t(109, u32(3), b"\xed\xa0\x80"),  # an encoded surrogate is not UTF-8
    t(107, 0, 2, b"ab"),
    t(98, b"\x80\x00\x00\x00"),
    t(70, struct.pack(">d", float("-inf"))),
    t(104, 0),
    t(105, u32(0)),
    t(104, 2, 97, 1),
    t(88),
    t(250),
    t(97, 1, 0),
    t(108, u32(1)) * 1 + t(108, u32(1))[1:] * 100_000 + b"\x6a" * 100_001,
    t(116, u32(1), 97, 1) + t(116, u32(1), 97, 1)[1:] * 100_000 + t(116, u32(0))[1:],
]


@needs_c
@pytest.mark.parametrize("payload", EDGE_PAYLOADS, ids=lambda p: repr(p)[:50])
@pytest.mark.parametrize("max_depth", [0, 1, 2, 512])
def test_c_decodes_edge_cases_exactly_as_python(payload: Any, max_depth: int) -> None:
    check_decode(payload, max_depth)
    check_decode(payload, max_depth, max_decompressed=0)


@needs_c
def test_c_refuses_cyclic_deep_and_unencodable_values_like_python() -> None:
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    deep_frozen: Any = FrozenList()
    for _ in range(100_000):
        deep_frozen = FrozenList([deep_frozen])
    for value in (cyclic, deep, deep_frozen, [float("nan")], {"k": {1}}, Atom("a" * 256)):
        for max_depth in (512, -1, 10**30):
            check_encode(value, max_depth)
            check_encode({"v": value}, max_depth)


def test_the_accelerator_does_not_leak() -> None:
    """Encode and decode (values, frames, errors, fallbacks, lists kept encoded) in a
    loop: memory stays flat."""
    if not SPEEDUPS_AVAILABLE:
        pytest.skip("the C accelerator is not built")
    value = {
        "type": "result",
        Atom("k"): [1, -5, 2**80, -(2**3000), 1.5, None, True, b"\xff", "é" * 10, (1, "x")],
        (1, 2): FrozenMap({"a": FrozenList([1])}),
        "big": tuple(range(300)),
    }
    wire = C.encode(value)
    bad = [
        wire[:-3],
        wire + b"\0",
        t(116, u32(1), 108, u32(1), 97, 1, 106, 97, 2),
        t(99, FLOAT_TEXT),
    ]
    bad += EDGE_PAYLOADS[:-2]
    keep = EtfCodec(speedups=True, keep_encoded="history")
    kept = [C.encode({"history": [value, value]}), C.encode({"history": [1, 2, 3]})[:-2]]

    def work() -> None:
        for _ in range(200):
            C.decode(wire)
            for p in kept:  # lists kept encoded: built, then refused by the second
                with contextlib.suppress(Exception):
                    keep.decode(p)["history"].decode()
            C.encode(value)
            C.encode_frame(value)
            for p in bad:
                with contextlib.suppress(Exception):
                    C.decode(p)
            for v in ([{1}], [float("inf")], Atom("x" * 300), [1, "\ud800"]):
                with contextlib.suppress(Exception):
                    C.encode(v)

    work()  # warm the atom cache and the interpreter's free lists
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        work()
        work()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024, f"{grown} bytes not released"
