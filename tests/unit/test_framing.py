"""The sans-IO {packet, 4} framer, fed every way bytes can arrive."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from axon_port._framing import FrameDecoder, OversizeFrame, TruncatedFrame, encode_frame


def frames_of(*payloads: bytes) -> bytes:
    return b"".join(encode_frame(p) for p in payloads)


def feed_in_pieces(decoder: FrameDecoder, data: bytes, cuts: list[int]) -> list[object]:
    events: list[object] = []
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    for a, b in itertools.pairwise(points):
        events += decoder.feed(data[a:b])
    return events


def test_a_whole_frame_is_returned_as_its_payload() -> None:
    assert FrameDecoder().feed(b"\x00\x00\x00\x03abc") == [b"abc"]


def test_an_empty_payload_is_a_frame() -> None:
    assert FrameDecoder().feed(b"\x00\x00\x00\x00") == [b""]


def test_frames_fed_one_byte_at_a_time_come_out_whole_and_in_order() -> None:
    data = frames_of(b"first", b"", b"x" * 300)
    decoder = FrameDecoder()
    events = [e for i in range(len(data)) for e in decoder.feed(data[i : i + 1])]
    assert events == [b"first", b"", b"x" * 300]
    assert decoder.buffered == 0


def test_an_oversize_frame_is_reported_skipped_and_the_next_frame_served() -> None:
    decoder = FrameDecoder(max_frame=10)
    data = frames_of(b"y" * 11, b"ok")
    events = [e for i in range(len(data)) for e in decoder.feed(data[i : i + 1])]
    assert events == [OversizeFrame(11, 10), b"ok"]


def test_a_huge_declared_size_does_not_allocate_and_is_skipped() -> None:
    decoder = FrameDecoder(max_frame=1024)
    assert decoder.feed(b"\xff\xff\xff\xff" + b"z" * 100) == [OversizeFrame(2**32 - 1, 1024)]
    assert decoder.buffered == 0


def test_eof_inside_a_frame_reports_a_truncated_frame() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(b"\x00\x00\x00\x09abc") == []
    assert decoder.feed(b"") == [TruncatedFrame(7)]
    assert decoder.at_eof


def test_eof_between_frames_is_clean() -> None:
    decoder = FrameDecoder()
    decoder.feed(frames_of(b"a"))
    assert decoder.feed(b"") == []


def test_feeding_after_eof_is_a_programming_error() -> None:
    decoder = FrameDecoder()
    decoder.feed(b"")
    with pytest.raises(RuntimeError):
        decoder.feed(b"x")


def test_max_frame_must_be_representable() -> None:
    with pytest.raises(ValueError):
        FrameDecoder(max_frame=2**32)


@settings(max_examples=300)
@given(
    payloads=st.lists(st.binary(max_size=64), max_size=12),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=20),
    max_frame=st.integers(min_value=1, max_value=80),
)
def test_any_split_of_any_frames_decodes_to_the_same_events(
    payloads: list[bytes], cuts: list[int], max_frame: int
) -> None:
    data = frames_of(*payloads)
    expected = [p if len(p) <= max_frame else OversizeFrame(len(p), max_frame) for p in payloads]
    assert feed_in_pieces(FrameDecoder(max_frame), data, cuts) == expected
