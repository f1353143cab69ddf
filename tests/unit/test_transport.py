"""FdTransport on real pipes: ordering, back-pressure, EOF and broken output."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from axon_port._framing import FrameEvent, encode_frame
from axon_port._transport import FdTransport


def make(in_fd: int, out_fd: int, events: list[FrameEvent], eofs: list[bool]) -> FdTransport:
    return FdTransport(
        in_fd,
        out_fd,
        on_events=events.extend,
        on_eof=lambda: eofs.append(True),
        max_frame=1 << 20,
        high_water=64 * 1024,
        exit_after_eof=False,  # the watchdog would end the test process itself
    )


def test_a_slow_reader_makes_drain_wait_and_every_byte_arrives_in_order() -> None:
    async def main() -> None:
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        t = make(in_r, out_w, [], [])
        t.start(asyncio.get_running_loop())
        frames = [encode_frame(bytes([i % 256]) * 50_000) for i in range(40)]
        for f in frames:
            t.write(f)
        assert t.buffered > t.high_water  # the pipe (64 KiB) cannot take 2 MB
        drained = asyncio.ensure_future(t.drain())
        await asyncio.sleep(0.05)
        assert not drained.done()  # nobody reads: the producer must wait
        received = bytearray()
        loop = asyncio.get_running_loop()
        while len(received) < sum(map(len, frames)):
            received += await loop.run_in_executor(None, os.read, out_r, 1 << 20)
        await asyncio.wait_for(drained, 5)
        assert bytes(received) == b"".join(frames)
        assert t.buffered == 0
        os.close(in_w)

    asyncio.run(main())


def test_input_frames_and_eof_are_delivered_to_the_loop() -> None:
    async def main() -> None:
        in_r, in_w = os.pipe()
        _out_r, out_w = os.pipe()
        events: list[FrameEvent] = []
        eofs: list[bool] = []
        t = make(in_r, out_w, events, eofs)
        t.start(asyncio.get_running_loop())
        os.write(in_w, encode_frame(b"one") + encode_frame(b"two")[:3])
        os.write(in_w, encode_frame(b"two")[3:])
        os.close(in_w)
        for _ in range(500):
            if eofs:
                break
            await asyncio.sleep(0.01)
        assert events == [b"one", b"two"]
        assert eofs == [True]

    asyncio.run(main())


def test_a_closed_reader_is_treated_like_eof_and_writes_stop() -> None:
    async def main() -> None:
        in_r, _in_w = os.pipe()
        out_r, out_w = os.pipe()
        eofs: list[bool] = []
        t = make(in_r, out_w, [], eofs)
        os.close(out_r)
        t.write(encode_frame(b"lost"))
        assert eofs == [True]
        assert t.closed
        t.write(encode_frame(b"ignored"))
        await t.drain()

    asyncio.run(main())


@pytest.mark.parametrize("source", ["pipe", "file"])
def test_a_full_output_queue_holds_back_the_rest_of_a_read_in_order_even_past_eof(
    source: str, tmp_path: Path
) -> None:
    """A read of 300 small requests whose replies are large: serving stops once the
    output queue is past max_output (checked every FEED_CHUNK requests), the rest waits
    in order until the client reads, and EOF is delivered only after all are served.
    The same from a file, which a reader thread reads (not the loop)."""

    async def main() -> None:
        from axon_port import _transport

        requests = [encode_frame(i.to_bytes(2, "big")) for i in range(300)]
        if source == "pipe":
            in_r, in_w = os.pipe()
        else:
            path = tmp_path / "requests"
            path.write_bytes(b"".join(requests))
            in_r = os.open(path, os.O_RDONLY)
        out_r, out_w = os.pipe()
        served: list[bytes] = []
        eofs: list[int] = []
        reply = b"r" * 20_000

        def on_events(events: list[FrameEvent]) -> None:
            for e in events:
                assert isinstance(e, bytes)
                served.append(e)
                t.write(encode_frame(reply))

        t = FdTransport(
            in_r,
            out_w,
            on_events=on_events,
            on_eof=lambda: eofs.append(len(served)),
            max_frame=1 << 20,
            high_water=64 * 1024,
            max_output=256 * 1024,
            exit_after_eof=False,
        )
        t.start(asyncio.get_running_loop())
        if source == "pipe":
            os.write(in_w, b"".join(requests))  # 1.8 KB: one read
            os.close(in_w)
        await asyncio.sleep(0.1)
        # Nobody reads: at most max_output plus one chunk's replies are queued.
        assert len(served) < 300 and not eofs
        assert t.buffered <= 256 * 1024 + _transport.FEED_CHUNK * (len(reply) + 4)
        received = 0
        loop = asyncio.get_running_loop()
        while received < 300 * (len(reply) + 4):
            received += len(await loop.run_in_executor(None, os.read, out_r, 1 << 20))
        for _ in range(100):
            if eofs:
                break
            await asyncio.sleep(0.01)
        assert served == [i.to_bytes(2, "big") for i in range(300)]  # all, in order, once
        assert eofs == [300]  # EOF after the last of them

    asyncio.run(main())
