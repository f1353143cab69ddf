"""FdTransport on real pipes: ordering, back-pressure, EOF and broken output."""

from __future__ import annotations

import asyncio
import os

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
