"""Lists kept encoded (``EtfCodec(keep_encoded=...)``): what they promise.

* C and Python give the same result (same ``EncodedTerms`` bytes, same decoded
  values, same errors) for random and mutated payloads;
* keeping a list encoded never changes what the payload means: where the full
  decode succeeds, decoding each kept element gives the very same elements; where
  it fails, either the kept decode fails the same way or one of the elements does
  (with a ``DecodeError``), so bad input is still refused, only later;
* only a non-empty proper list directly under that key of a top-level map is
  kept; anything the element walker is not sure of is decoded as before;
* the elements are charged to the decoded-size budget, and decoded on their own
  with the depth they had inside the payload.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_etf_speedups import MUTATIONS, mutate, outcome, values
from typed_equality import assert_same

from axon_port._types import Atom, EncodedTerms
from axon_port.codecs import get_codec
from axon_port.codecs._etf import SPEEDUPS_AVAILABLE, EtfCodec
from axon_port.codecs._etf_decode import decode as _py_decode
from axon_port.errors import DecodeError, FrameTooLarge

KEY = "history"
needs_c = pytest.mark.skipif(not SPEEDUPS_AVAILABLE, reason="the C accelerator is not built")
PLAIN = EtfCodec(speedups=False)


def codecs(max_depth: int = 512, **kw: Any) -> list[EtfCodec]:
    impls = [False, True] if SPEEDUPS_AVAILABLE else [False]
    return [EtfCodec(max_depth=max_depth, speedups=s, keep_encoded=KEY, **kw) for s in impls]


def expand(value: Any) -> Any:
    """``value`` with its kept list decoded (or the error that decoding raises)."""
    if type(value) is dict and type(value.get(KEY)) is EncodedTerms:
        return {**value, KEY: value[KEY].decode()}
    return value


def request(history: Any, **extra: Any) -> bytes:
    return PLAIN.encode({"op": Atom("run"), "id": 7, KEY: history, "prompt": "hi", **extra})


def check(payload: bytes, max_depth: int = 512) -> None:
    """C == Python with keep_encoded, and keep_encoded == the full decode."""
    impls = codecs(max_depth)
    full = EtfCodec(max_depth=max_depth, speedups=False)
    results = [outcome(c.decode, payload) for c in impls]
    if len(results) == 2:
        (rp, vp), (rc, vc) = results
        assert rp == rc, (results, payload)
        if rp == "ok":
            assert_same(vc, vp)
            assert expand_outcome(vc) == expand_outcome(vp)
        else:
            with pytest.raises(vp) as e_py:
                impls[0].decode(payload)
            with pytest.raises(vp) as e_c:
                impls[1].decode(payload)
            assert str(e_c.value) == str(e_py.value)
    kind, kept = results[0]
    want_kind, want = outcome(full.decode, payload)
    if want_kind == "ok":
        assert kind == "ok", (kept, payload)
        assert_same(expand(kept), want)
    elif kind == "ok":  # refused later, by one of the kept elements
        with pytest.raises(DecodeError):
            expand(kept)
    else:
        assert kept == want


def expand_outcome(value: Any) -> tuple[str, Any]:
    return outcome(expand, value)


@settings(max_examples=800, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(values(), max_size=4), st.integers(0, 6) | st.just(512))
def test_kept_lists_mean_what_the_full_decode_means(history: list[Any], max_depth: int) -> None:
    try:
        payload = request(history)
    except Exception:
        payload = request([{"kind": "request", "parts": [{"content": "x", "n": 1.5}]}])
    check(payload, max_depth)


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(values(), min_size=1, max_size=3), MUTATIONS, st.booleans())
def test_mutated_requests_decode_alike_in_c_and_python_and_as_before(
    history: list[Any], ops: list[tuple[str, int, int]], compress: bool
) -> None:
    try:
        data = request(history)
    except Exception:
        data = request([[1, "a", Atom("b"), (2.5, b"\xff"), {"k": [None]}]])
    if compress:
        data = b"\x83\x50" + len(data[1:]).to_bytes(4, "big") + zlib.compress(data[1:])
    check(mutate(data, ops))


def test_a_kept_list_holds_each_elements_own_encoding() -> None:
    msgs = [{"kind": "request", "parts": [{"content": "hé", "n": 2**70}]}, {"kind": "response"}]
    for codec in codecs():
        value = codec.decode(request(msgs))
        kept = value[KEY]
        assert type(kept) is EncodedTerms and len(kept) == 2
        assert kept.items == tuple(PLAIN.encode(m)[1:] for m in msgs)
        assert kept.decode() == msgs
        assert value["prompt"] == "hi" and value["op"] == "run"


@pytest.mark.parametrize(
    "term",
    [
        {KEY: []},  # empty: nothing to keep
        {"other": [1, 2]},  # another key
        {"nested": {KEY: [1, 2]}},  # not the top-level map
        [{KEY: [1, 2]}],  # the top level is not a map
        {KEY: "text"},  # not a list
        {KEY: (1, 2)},  # a tuple
        {KEY: [1.0, 2]},  # FLOAT_EXT inside (below): the walker refuses it
    ],
    ids=repr,
)
def test_only_a_non_empty_list_under_the_top_level_key_is_kept(term: Any) -> None:
    payload = PLAIN.encode(term)
    if term == {KEY: [1.0, 2]}:  # write the float as FLOAT_EXT (99), which C leaves to Python
        payload = payload.replace(
            b"F" + struct.pack(">d", 1.0), b"c" + (b"%.20e" % 1.0).ljust(31, b"\0")
        )
    for codec in codecs():
        assert_same(codec.decode(payload), PLAIN.decode(payload))


def test_an_atom_key_and_a_binary_key_are_both_kept() -> None:
    for key in (KEY, Atom(KEY)):
        payload = PLAIN.encode({key: [1, 2]})
        for codec in codecs():
            kept = codec.decode(payload)[key]
            assert type(kept) is EncodedTerms and kept.decode() == [1, 2]


def test_an_improper_history_list_is_refused_as_before() -> None:
    # [1 | 2] under the key: LIST_EXT, one element, tail 2
    payload = PLAIN.encode({KEY: [1]})
    bad = payload[:-1] + b"a\x02"
    for codec in codecs():
        with pytest.raises(DecodeError, match="improper list"):
            codec.decode(bad)


def test_a_bad_element_is_refused_when_it_is_decoded() -> None:
    # an invalid UTF-8 atom inside an element: the walker skips it, decoding refuses it
    payload = PLAIN.encode({KEY: [Atom("ok"), Atom("zz")]}).replace(b"zz", b"\xff\xfe")
    for codec in codecs():
        with pytest.raises(DecodeError, match="UTF-8"):
            EtfCodec(speedups=False).decode(payload)
        kept = codec.decode(payload)[KEY]
        assert codec.decode_item(kept.items[0]) == "ok"
        with pytest.raises(DecodeError, match="UTF-8"):
            kept.decode()


def test_elements_are_decoded_with_the_depth_they_had_in_the_payload() -> None:
    deep: Any = 1
    for _ in range(8):
        deep = [deep]
    payload = request([deep])
    # depth: top map 1, history list 2, the element's 8 lists: 10 in all
    assert EtfCodec(max_depth=10, speedups=False).decode(payload)
    with pytest.raises(DecodeError, match="too deep"):
        EtfCodec(max_depth=9, speedups=False).decode(payload)
    for limit, ok in ((10, True), (9, False)):
        for codec in codecs(limit):
            kept = codec.decode(payload)[KEY]
            if ok:
                assert kept.decode() == [deep]
            else:
                with pytest.raises(DecodeError, match="too deep"):
                    kept.decode()


def test_max_depth_of_two_or_less_decodes_normally() -> None:
    payload = PLAIN.encode({KEY: [1, 2]})
    for codec in codecs(max_depth=2):
        assert codec.decode(payload) == {KEY: [1, 2]}


def test_kept_elements_are_charged_to_the_budget() -> None:
    """A kept element costs what a binary of its size does (48 + size), the list 64 + 8
    per element; C and Python agree on the smallest budget that suffices."""
    items = ["x" * 5000, "y" * 300, "z"]
    payload = request(items)
    sizes = [len(PLAIN.encode(i)) - 1 for i in items]
    kept_cost = 64 + 8 * len(items) + sum(48 + n for n in sizes)

    def fits(budget: int) -> bool:
        try:
            _py_decode(payload, 512, 1 << 20, budget, KEY)
        except FrameTooLarge:
            return False
        return True

    lo, hi = 0, 1 << 20
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if fits(mid) else (mid + 1, hi)
    assert lo >= kept_cost
    assert fits(lo) and not fits(lo - 1)
    if SPEEDUPS_AVAILABLE:
        from axon_port.codecs import _etf_speedups  # type: ignore[attr-defined]

        assert type(_etf_speedups.decode(payload, 512, lo, KEY)[KEY]) is EncodedTerms
        with pytest.raises(FrameTooLarge):
            _etf_speedups.decode(payload, 512, lo - 1, KEY)


def test_get_codec_keeps_encoded_for_etf_only() -> None:
    payload = PLAIN.encode({KEY: [1]})
    assert type(get_codec("etf", keep_encoded=KEY).decode(payload)[KEY]) is EncodedTerms
    assert get_codec("etf").decode(payload) == {KEY: [1]}
    msgpack = get_codec("msgpack", keep_encoded=KEY)
    assert msgpack.decode(msgpack.encode({KEY: [1]})) == {KEY: [1]}
