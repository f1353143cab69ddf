"""Thousands of malformed frames through the sans-IO core: each answered, stream in sync."""

from __future__ import annotations

import asyncio
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from axon_port._framing import FrameDecoder, encode_frame
from axon_port.codecs import get_codec
from axon_port.registry import Registry
from axon_port.worker import Worker, WorkerConfig

TERMINAL = {"result", "error", "pong"}


class Harness:
    """A worker whose output is decoded frame by frame."""

    def __init__(self, codec: str) -> None:
        self.out = FrameDecoder(2**32 - 1)
        self.frames: list[dict[str, object]] = []
        self.worker = Worker(WorkerConfig(codec=codec, max_frame=4096), self._write,
                             registry=Registry())  # fmt: skip
        self.codec = get_codec(codec)
        self.decoder = FrameDecoder(4096)

    def _write(self, data: bytes) -> None:
        for payload in self.out.feed(data):
            assert isinstance(payload, bytes)
            # Every frame the worker writes must decode (and, for ETF, safely).
            self.frames.append(self.codec.decode(payload))

    def feed(self, data: bytes) -> None:
        self.worker.dispatcher.feed(self.decoder.feed(data))


def mutations(codec: str) -> st.SearchStrategy[bytes]:
    valid = get_codec(codec).encode({"op": "ping", "id": 1, "note": [1, 2.5, "x", {"k": None}]})
    flips = st.lists(
        st.tuples(st.integers(0, len(valid) - 1), st.integers(0, 255)), min_size=1, max_size=4
    )

    def mutate(edits: list[tuple[int, int]]) -> bytes:
        b = bytearray(valid)
        for i, v in edits:
            b[i] = v
        return bytes(b)

    return st.one_of(
        st.binary(max_size=200),
        flips.map(mutate),
        st.integers(0, len(valid) - 1).map(lambda n: valid[:n]),
        st.binary(max_size=50).map(lambda b: b"\x83" + b),
    )


@pytest.mark.parametrize("codec", ["etf", "msgpack"])
def test_thousands_of_malformed_frames_each_get_one_answer_and_the_stream_stays_in_sync(
    codec: str,
) -> None:
    @settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow], deadline=None)
    @given(junk=mutations(codec))
    def check(junk: bytes) -> None:
        async def body() -> None:
            h = Harness(codec)
            ping = encode_frame(h.codec.encode({"op": "ping", "id": 999_999}))
            h.feed(encode_frame(junk) + ping)
            await asyncio.sleep(0)
            terminal = [f for f in h.frames if f["type"] in TERMINAL]
            assert terminal[-1] == {"type": "pong", "id": 999_999}
            # The junk frame got exactly one terminal frame of its own.
            assert len(terminal) == 2, terminal
            h.worker.dispatcher.cancel_all("shutdown")
            h.worker.close()

        asyncio.run(body())

    check()


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"\x83" + b"l\x00\x01\x86\xa0" * 100_000 + b"j" * 100_000, id="1e5-deep-list"),
        pytest.param(b"\x83o\xff\xff\xff\xff\x00" + b"\x01" * 10, id="huge-bignum-length"),
        pytest.param(b"\x83m\x7f\xff\xff\xff" + b"a" * 10, id="huge-binary-length"),
        pytest.param(
            b"\x83P\x00\x00\x10\x00" + zlib.compress(b"\x00" * 2_000_000), id="zip-bomb-small-size"
        ),
        pytest.param(
            b"\x83P\x7f\xff\xff\xff" + zlib.compress(b"\x00" * 1000), id="zip-bomb-huge-size"
        ),
        pytest.param(b"\x83m\x00\x00\x00\x02\xff\xfe", id="invalid-utf8-binary-is-bytes-not-op"),
        pytest.param(b"\x83v\x00\x02\xff\xfe", id="invalid-utf8-atom"),
        pytest.param(b"\x83l\x00\x00\x00\x01a\x01a\x02", id="improper-list"),
    ],
)
def test_hostile_etf_terms_get_an_error_frame_and_the_worker_keeps_serving(payload: bytes) -> None:
    async def body() -> None:
        h = Harness("etf")
        h.worker.config.max_frame = 2**31
        h.decoder = FrameDecoder(2**31)
        h.feed(encode_frame(payload) + encode_frame(h.codec.encode({"op": "ping", "id": 5})))
        await asyncio.sleep(0)
        assert h.frames[0]["type"] == "error"
        assert h.frames[0]["error"]["kind"] in ("bad_frame", "bad_request", "frame_too_large")  # type: ignore[index]
        assert h.frames[-1] == {"type": "pong", "id": 5}

    asyncio.run(body())
