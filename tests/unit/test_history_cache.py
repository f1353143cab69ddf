"""The history cache: hits equal misses, callers never share objects, bounds hold."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelMessagesTypeAdapter, ModelRequest, TextPart
from pydantic_ai.models.test import TestModel
from test_etf_speedups import values
from typed_equality import assert_same

from axon_port import Atom
from axon_port._types import EncodedTerms
from axon_port.agents._history_cache import SPEEDUPS_AVAILABLE, HistoryCache, fresh_copy
from axon_port.agents._messages import HISTORY_CACHE, dump_messages, load_history, plain
from axon_port.codecs import get_codec
from axon_port.errors import BadRequest, DecodeError

ETF = get_codec("etf")


def wire_history(prompt: str = "hello", tool: bool = False) -> list[Any]:
    """Real pydantic-ai messages as they come back from the wire (ETF round trip)."""
    agent: Agent[None, str] = Agent(TestModel())
    if tool:

        @agent.tool_plain
        def lookup(key: str) -> dict[str, list[int]]:
            return {"values": [1, 2, 3]}

    messages = agent.run_sync(prompt).all_messages()
    return list(ETF.decode(ETF.encode(dump_messages(messages))))


def validate(items: list[Any]) -> list[ModelMessage]:
    return ModelMessagesTypeAdapter.validate_python(plain(items))


def test_hit_returns_messages_equal_to_a_fresh_validation() -> None:
    cache = HistoryCache(ETF.encode)
    history = wire_history(tool=True)
    first = cache.load(history, validate)
    assert (cache.hits, cache.misses) == (0, len(history))
    second = cache.load(history, validate)
    assert cache.hits == len(history)
    assert first == second == validate(history)
    assert dump_messages(second) == dump_messages(validate(history))


def test_hit_and_miss_mix_keeps_order() -> None:
    cache = HistoryCache(ETF.encode)
    a, b = wire_history("one"), wire_history("two")
    cache.load(a, validate)
    mixed = b[:1] + a + b[1:]
    assert cache.load(mixed, validate) == validate(mixed)
    assert cache.hits == len(a)


def test_callers_never_share_objects_with_the_cache_or_each_other() -> None:
    cache = HistoryCache(ETF.encode)
    history = wire_history(tool=True)
    expected = dump_messages(validate(history))
    cache.load(history, validate)  # miss: stored
    one = cache.load(history, validate)
    # Mutate everything a run could touch: attributes, parts lists, nested dicts/lists.
    for message in one:
        message.parts.append(TextPart("injected"))  # type: ignore[arg-type]
        message.run_id = "mutated"
        for part in message.parts:
            args = getattr(part, "args", None)
            if isinstance(args, dict):
                args["key"] = "mutated"
            content = getattr(part, "content", None)
            if isinstance(content, dict):
                content["values"].append(99)
    two = cache.load(history, validate)
    assert dump_messages(two) == expected
    assert not {id(m) for m in one} & {id(m) for m in two}


def test_a_run_over_cached_history_leaves_the_cache_unchanged() -> None:
    HISTORY_CACHE.clear()
    history = wire_history(tool=True)
    expected = dump_messages(validate(history))
    agent: Agent[None, str] = Agent(TestModel())
    for _ in range(3):
        agent.run_sync("next", message_history=load_history(history))
    assert dump_messages(load_history(history)) == expected
    assert HISTORY_CACHE.hits >= 2 * len(history)


def test_count_bound_evicts_least_recently_used() -> None:
    cache = HistoryCache(ETF.encode, max_items=2)
    h = [wire_history(f"p{i}")[0] for i in range(3)]  # three distinct requests
    cache.load([h[0], h[1]], validate)
    cache.load([h[0]], validate)  # h0 most recently used
    cache.load([h[2]], validate)  # evicts h1
    assert len(cache) == 2
    hits = cache.hits
    cache.load([h[0], h[2]], validate)
    assert cache.hits == hits + 2
    cache.load([h[1]], validate)
    assert cache.hits == hits + 2  # h1 was a miss


def test_byte_bound_is_respected() -> None:
    many = [wire_history(f"prompt {i}")[0] for i in range(60)]
    size = max(cache_size(m) for m in many)
    cache = HistoryCache(ETF.encode, max_bytes=size * 16)  # room for ~16 of them
    assert cache.load(many, validate) == validate(many)
    assert 0 < cache.bytes <= cache.max_bytes
    assert 10 <= len(cache) <= 16


def cache_size(message: Any) -> int:
    return len(ETF.encode(message))


def test_oversized_and_zero_bounds_store_nothing() -> None:
    history = wire_history()
    none = HistoryCache(ETF.encode, max_items=0)
    assert none.load(history, validate) == validate(history)
    assert len(none) == 0
    tiny = HistoryCache(ETF.encode, max_bytes=16)
    assert tiny.load(history, validate) == validate(history)
    assert len(tiny) == 0
    with pytest.raises(ValueError):
        HistoryCache(ETF.encode, max_items=-1)


def test_atoms_and_binaries_validate_alike_but_key_apart() -> None:
    cache = HistoryCache(ETF.encode)
    message = wire_history()[0]
    atomised = {Atom(k): v for k, v in message.items()}
    assert cache.key(atomised) != cache.key(message)
    assert cache.load([atomised], validate) == cache.load([message], validate)


def test_invalid_history_is_a_bad_request_indexed_as_sent() -> None:
    good = wire_history()
    with pytest.raises(BadRequest) as info:
        load_history([*good, {"kind": "nope"}])
    locs = [tuple(e["loc"]) for e in info.value.details]
    assert all(loc[0] == len(good) for loc in locs), locs
    # The valid messages of a rejected history still validate next time.
    assert load_history(good) == validate(good)


KEEP = get_codec("etf", keep_encoded="history")


def encoded(history: list[Any]) -> EncodedTerms:
    """``history`` as an ETF worker receives it: kept encoded by its codec."""
    kept = KEEP.decode(ETF.encode({"history": history}))["history"]
    assert type(kept) is EncodedTerms
    return kept


def test_encoded_history_validates_like_decoded_history_and_hits_without_decoding() -> None:
    history = wire_history(tool=True)
    cache = HistoryCache(ETF.encode)
    decoded: list[bytes] = []
    kept = encoded(history)
    decode_item = kept.decode_item
    assert decode_item is not None

    def counting(raw: bytes) -> Any:
        decoded.append(raw)
        return decode_item(raw)

    kept.decode_item = counting
    first = cache.load_encoded(kept, validate)
    assert first == validate(history) and len(decoded) == len(history)
    assert (cache.hits, cache.misses) == (0, len(history))
    again = cache.load_encoded(kept, validate)
    assert again == first and len(decoded) == len(history)  # hits: nothing decoded
    assert cache.hits == len(history)
    assert dump_messages(again) == dump_messages(validate(history))
    # a hit is a private copy, as for decoded history
    again[0].parts.clear()
    assert cache.load_encoded(kept, validate) == first


def test_load_history_takes_encoded_history_and_names_a_bad_message_by_index() -> None:
    good = wire_history()
    assert load_history(encoded(good)) == validate(good)
    with pytest.raises(BadRequest) as info:
        load_history(encoded([*good, {"kind": "nope"}]))
    locs = [tuple(e["loc"]) for e in info.value.details]
    assert all(loc[0] == len(good) for loc in locs), locs
    # a message whose bytes do not decode (an atom that is not UTF-8) is a DecodeError
    # naming its index; the messages before it are fine
    kept = KEEP.decode(ETF.encode({"history": [*good, Atom("zz")]}).replace(b"zz", b"\xff\xfe"))
    with pytest.raises(DecodeError, match=rf"^history\[{len(good)}\]: .*UTF-8") as bad:
        load_history(kept["history"])
    assert bad.value.details == {"index": len(good)}


def test_fresh_copy_is_deep_for_containers_and_shares_immutables() -> None:
    message = ModelRequest.user_text_prompt("hi")
    copied = fresh_copy(message)
    assert copied == message and copied is not message
    assert copied.parts is not message.parts and copied.parts[0] is not message.parts[0]
    assert copied.timestamp is message.timestamp
    nested = {"a": [1, {"b": (2, [3])}], "s": {4}}
    clone = fresh_copy(nested)
    assert clone == nested
    assert clone["a"][1]["b"][1] is not nested["a"][1]["b"][1]


def _mutables(value: Any, seen: set[int] | None = None) -> list[Any]:
    """Every mutable object reachable from ``value`` (what a copy must not share)."""
    import dataclasses
    import enum

    from axon_port.agents._history_cache import _IMMUTABLE

    seen = set() if seen is None else seen
    if type(value) in _IMMUTABLE or isinstance(value, enum.Enum) or id(value) in seen:
        return []
    seen.add(id(value))
    found = [value]
    if isinstance(value, dict):
        children: Any = value.values()
    elif isinstance(value, list | tuple | set):
        children = value
    elif dataclasses.is_dataclass(value):
        children = [getattr(value, f.name) for f in dataclasses.fields(value)]
    else:
        return []
    for child in children:
        found += _mutables(child, seen)
    return found


def test_the_c_copy_equals_the_python_one_and_shares_nothing_mutable() -> None:
    from axon_port.agents import _history_cache as hc

    if not hc.SPEEDUPS_AVAILABLE:
        # CI (scripts/test) builds the accelerators and sets AXON_PORT_REQUIRE_SPEEDUPS=1
        assert os.environ.get("AXON_PORT_REQUIRE_SPEEDUPS") != "1", "_copy_speedups not built"
        pytest.skip("the _copy_speedups accelerator is not built")
    assert hc.fresh_copy is not hc.py_fresh_copy
    image = {"kind": "binary", "data": b"\x89PNG", "media_type": "image/png"}
    rich = [
        *wire_history(tool=True),
        {
            "kind": "request",
            "parts": [
                {"part_kind": "user-prompt", "content": ["look", image]},
                {"part_kind": "retry-prompt", "content": "again", "tool_name": "lookup"},
            ],
        },
    ]
    messages = validate(rich)
    for value in [*messages, {"a": [1, {"b": (2, [3])}], "s": {4}}, [[], {}], "x", 3]:
        c, py = hc.fresh_copy(value), hc.py_fresh_copy(value)
        assert c == py == value
        assert type(c) is type(value)
        originals = {id(m) for m in _mutables(value)}
        assert not originals & {id(m) for m in _mutables(c)}


@pytest.mark.skipif(not SPEEDUPS_AVAILABLE, reason="the C half is not built")
@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(values())
def test_the_c_plain_equals_the_python_one(value: Any) -> None:
    """``plain`` in C gives what the Python ``py_plain`` gives, types included, for any
    decoded or Python value (Atoms, str subclasses such as StrEnum, mappings that are
    not dicts, subclasses of list and tuple, opaque leaves), or raises the same."""
    from axon_port.agents._messages import py_plain

    assert plain is not py_plain
    for v in (value, [value, {"k": value, Atom("a"): (value,)}]):
        try:
            want = py_plain(v)
        except Exception as e:  # e.g. a FrozenMap key becomes an unhashable dict
            with pytest.raises(type(e)):
                plain(v)
            continue
        assert_same(plain(v), want, nan_equal=True)
