"""FdTransport on real pipes: ordering, back-pressure, EOF and broken output."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
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


def _spinner(in_fd: int, out_fd: int, events: list[FrameEvent], spin: float) -> FdTransport:
    return FdTransport(
        in_fd,
        out_fd,
        on_events=events.extend,
        on_eof=lambda: None,
        max_frame=1 << 20,
        exit_after_eof=False,
        idle_spin=spin,
    )


async def _until(check: Callable[[], bool], what: str) -> None:
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never: {what}")


@pytest.fixture
def cpu_to_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every sched_yield finds the CPU free (another test's threads may not let it)."""
    monkeypatch.setattr(FdTransport, "_yield_to_others", staticmethod(lambda: False))


@pytest.mark.usefixtures("cpu_to_itself")
def test_an_idle_write_keeps_the_loop_polling_for_the_window_then_it_blocks() -> None:
    async def main() -> None:
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        events: list[FrameEvent] = []
        t = _spinner(in_r, out_w, events, spin=0.05)
        t.start(asyncio.get_running_loop(), is_idle=lambda: True)
        assert not t.spinning
        t.write(encode_frame(b"reply"))
        assert t.spinning
        os.write(in_w, encode_frame(b"next"))  # arrives while it spins: served as ever
        await _until(lambda: events == [b"next"], "the request read during the spin")
        await _until(lambda: not t.spinning, "the spin ends after its window")
        os.write(in_w, encode_frame(b"later"))  # and the blocked loop still reads
        await _until(lambda: events == [b"next", b"later"], "the request after the spin")
        assert os.read(out_r, 100) == encode_frame(b"reply")
        os.close(in_w)

    asyncio.run(main())


@pytest.mark.usefixtures("cpu_to_itself")
def test_no_spin_while_a_request_is_in_flight_without_a_window_or_after_eof() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        busy = {"inflight": 1}
        in_r, in_w = os.pipe()
        _out_r, out_w = os.pipe()
        t = _spinner(in_r, out_w, [], spin=10.0)
        t.start(loop, is_idle=lambda: busy["inflight"] == 0)
        t.write(encode_frame(b"chunk"))  # a request is still in flight: no spin
        assert not t.spinning
        busy["inflight"] = 0
        t.write(encode_frame(b"result"))
        assert t.spinning
        busy["inflight"] = 1  # the next request came in: the spin stops at its next turn
        await _until(lambda: not t.spinning, "the spin stops once busy")
        busy["inflight"] = 0
        t.write(encode_frame(b"result 2"))
        assert t.spinning
        os.close(in_w)  # EOF: nothing more to wait for
        await _until(lambda: not t.spinning, "the spin stops at EOF")

        in_r2, in_w2 = os.pipe()
        _out_r2, out_w2 = os.pipe()
        off = _spinner(in_r2, out_w2, [], spin=0.0)
        off.start(loop, is_idle=lambda: True)
        off.write(encode_frame(b"result"))
        assert not off.spinning
        os.close(in_w2)

    asyncio.run(main())


def test_no_spin_when_a_yield_shows_another_process_needs_this_cpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    company = [True]
    monkeypatch.setattr(FdTransport, "_yield_to_others", staticmethod(lambda: company[0]))

    async def main() -> None:
        in_r, in_w = os.pipe()
        _out_r, out_w = os.pipe()
        t = _spinner(in_r, out_w, [], spin=10.0)
        t.start(asyncio.get_running_loop(), is_idle=lambda: True)
        t.write(encode_frame(b"result"))  # the client ran during the first yield
        assert not t.spinning
        company[0] = False
        t.write(encode_frame(b"result 2"))  # the CPU was free: spin
        assert t.spinning
        company[0] = True  # then someone needed it: the next turn stops
        await _until(lambda: not t.spinning, "the spin stops when the CPU is shared")
        os.close(in_w)

    asyncio.run(main())


def _probe(parent_cpu: int | None, child_cpu: int) -> bool:
    """shares_one_cpu_with_parent() in a child pinned to ``child_cpu`` whose parent
    (an intermediate Python process) is pinned to ``parent_cpu`` (or left as it is)."""
    child = (
        f"import os; os.sched_setaffinity(0, {{{child_cpu}}}); "
        "from axon_port._transport import shares_one_cpu_with_parent as f; print(f())"
    )
    parent = (
        "import os, subprocess, sys; "
        + (f"os.sched_setaffinity(0, {{{parent_cpu}}}); " if parent_cpu is not None else "")
        + f"sys.exit(subprocess.run([sys.executable, '-c', {child!r}]).returncode)"
    )
    out = subprocess.run([sys.executable, "-c", parent], capture_output=True, text=True, check=True)
    return out.stdout.strip() == "True"


@pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs CPU affinity and two CPUs",
)
def test_the_spin_is_off_only_when_the_worker_and_its_client_are_pinned_to_one_cpu() -> None:
    a, b = sorted(os.sched_getaffinity(0))[:2]
    assert _probe(a, a) is True  # both on one CPU: a spin would only delay the client
    assert _probe(a, b) is False  # pinned apart
    assert _probe(None, a) is False  # the client may run elsewhere
