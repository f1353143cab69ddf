"""Frames over file descriptors: frame input, frame output, EOF.

Theory of operation:

* The fds it is given were claimed at start-up by :mod:`._fds` (private
  duplicates; fd 1 points at stderr, so nothing but frames reaches the output).
* Input from a pipe or socket is read by the event loop itself (``add_reader``,
  non-blocking), framed by :class:`~axon_port._framing.FrameDecoder`, and each
  batch of events is dispatched at once. A daemon *watchdog thread* polls the
  same fd for hang-up only (it consumes nothing), so it notices that the client
  is gone even while the loop is stuck in synchronous code; if the process has
  not ended ``eof_grace`` seconds later it ends it with ``os._exit`` (a worker
  must never outlive its client). Other inputs (a file, a tty) are read by a
  thread with blocking reads, which hands batches over with
  ``call_soon_threadsafe`` and runs the same grace-then-exit at EOF.
* Output is written from the loop thread. A pipe or socket is made
  non-blocking: a frame is written at once when nothing is queued, otherwise
  it is queued and flushed by a loop writer callback. ``drain()`` waits while
  more than ``high_water`` bytes are queued, which is how streaming producers
  feel back-pressure from a slow reader.
* Idle spin: after a write that leaves the worker idle (nothing in flight), the
  loop keeps polling (``call_soon`` chain, so each turn polls with a zero timeout
  and yields the CPU with ``sched_yield``) for up to ``idle_spin`` seconds before
  it blocks. A sequential caller's next request then lands on a running process:
  on a virtual machine a process that blocked wakes slowly and runs its next
  request ~20-30 % slower (caches, the halted vCPU's wake-up). The BEAM's
  schedulers busy-wait the same way (``+sbwt``). Nothing spins while a request is
  in flight, reading is paused, or the input is closed; nor when a ``sched_yield``
  shows that another process needed this CPU (the client, pinned to it): there a
  spin could only delay the client.
* Replies and events share that one output queue, and it is bounded: while more
  than ``max_output`` bytes wait for the client, the transport stops reading
  requests (the loop reader is removed, or the reader thread waits), so a client
  that sends without reading cannot make the worker queue without limit. Nothing
  is dropped: reading resumes once the queue is back under ``high_water``.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import logging
import os
import select
import stat
import threading
import time
from collections.abc import Callable
from typing import Any

from axon_port._framing import FrameDecoder, FrameEvent

__all__ = ["FEED_CHUNK", "READ_SIZE", "FdTransport"]

logger = logging.getLogger(__name__)

#: A ``sched_yield`` that takes longer than this (seconds) let another process run:
#: the client shares the worker's CPU, and spinning would only delay it.
SHARED_CPU_YIELD = 10e-6
READ_SIZE = 256 * 1024
#: Requests of one read are served this many at a time, the output queue checked between.
FEED_CHUNK = 64


class FdTransport:
    """Frames over a pair of file descriptors, driven by an asyncio loop."""

    def __init__(
        self,
        in_fd: int,
        out_fd: int,
        *,
        on_events: Callable[[list[FrameEvent]], None],
        on_eof: Callable[[], None],
        max_frame: int,
        eof_grace: float = 0.75,
        high_water: int = 4 * 1024 * 1024,
        max_output: int = 16 * 1024 * 1024,
        exit_after_eof: bool = True,
        idle_spin: float = 0.0,
    ) -> None:
        self.in_fd = in_fd
        self.out_fd = out_fd
        self._on_events = on_events
        self._on_eof = on_eof
        self._decoder = FrameDecoder(max_frame)
        self.eof_grace = eof_grace
        self.exit_after_eof = exit_after_eof
        self.high_water = high_water
        self.max_output = max(max_output, high_water)
        self._paused = False  # not reading requests: the output queue is full
        self._resume = threading.Event()
        self._resume.set()
        self._loop_reader = False
        self.pauses = 0
        self._queue: collections.deque[memoryview] = collections.deque()
        self._queued = 0
        self._writer_armed = False
        self._cork: list[bytes] | None = None
        self._corked = 0  # bytes in the cork
        # Requests read but not served yet: the output queue filled up while serving
        # their batch. Served (in order) before anything more is read.
        self._backlog: list[FrameEvent] = []
        self._eof_pending = False  # input ended with a backlog still to serve
        self._drain_waiters: list[asyncio.Future[None]] = []
        self.closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.idle_spin = idle_spin  # seconds; 0: block at once
        self._is_idle: Callable[[], bool] | None = None
        self._spin_until = 0.0
        self._spinning = False
        mode = os.fstat(out_fd).st_mode
        self._nonblocking = stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)
        if self._nonblocking:
            os.set_blocking(out_fd, False)

    # -- input ---------------------------------------------------------------

    def start(
        self, loop: asyncio.AbstractEventLoop, *, is_idle: Callable[[], bool] | None = None
    ) -> None:
        """Start reading; events and EOF are delivered on ``loop``.

        A pipe or socket is read by the loop itself (no thread hop per frame)
        while a watchdog thread polls it for hang-up only; anything else (a
        file, a tty) is read by a thread with blocking reads. ``is_idle`` says
        whether nothing is in flight: the idle spin (``idle_spin``) needs it.
        """
        self._loop = loop
        self._is_idle = is_idle
        mode = os.fstat(self.in_fd).st_mode
        if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            os.set_blocking(self.in_fd, False)
            self._loop_reader = True
            loop.add_reader(self.in_fd, self._on_readable)
            if self.exit_after_eof:
                threading.Thread(
                    target=self._watch_hangup,
                    args=(stat.S_ISSOCK(mode),),
                    name="axon-port-eof-watchdog",
                    daemon=True,
                ).start()
        else:
            threading.Thread(target=self._read_loop, name="axon-port-reader", daemon=True).start()

    def _read(self) -> bytes | None:
        try:
            return os.read(self.in_fd, READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as exc:
            logger.warning("input read failed: %s", exc)
            return b""

    def _on_readable(self) -> None:
        data = self._read()
        if data is None:
            return
        events = self._decoder.feed(data)
        if events:
            self._serve(events)
        if not data:
            assert self._loop is not None
            self._loop.remove_reader(self.in_fd)
            self._loop_reader = False
            if self._backlog:
                self._eof_pending = True  # EOF once the backlog is served
                self._pause_reading()
            else:
                self._on_eof()
        elif self._backlog or self._queued > self.max_output:
            self._pause_reading()

    def _serve(self, events: list[FrameEvent]) -> None:
        """Serve ``events`` in order, ``FEED_CHUNK`` at a time; once the output queue
        (replies of this batch included) is past ``max_output``, keep the rest in the
        backlog. So a burst of small requests with large replies queues at most about
        ``max_output`` plus one chunk's replies, not a whole read's."""
        # Replies produced while serving this batch leave in one write.
        self._cork = []
        self._corked = 0
        try:
            n = len(events)
            if n <= FEED_CHUNK:
                self._on_events(events)
            else:
                for start in range(0, n, FEED_CHUNK):
                    if self._queued + self._corked > self.max_output:
                        self._backlog = events[start:]
                        break
                    self._on_events(events[start : start + FEED_CHUNK])
        finally:
            batch, self._cork = self._cork, None
            self._corked = 0
            if batch:
                self.write(batch[0] if len(batch) == 1 else b"".join(batch))

    def _thread_batch(self, events: list[FrameEvent]) -> None:
        # The reader thread may read on before a pause reaches it: what it read then
        # waits behind the backlog, in order.
        if self._backlog:
            self._backlog.extend(events)
        else:
            self._serve(events)
        if self._backlog or self._queued > self.max_output:
            self._pause_reading()

    def _thread_eof(self) -> None:
        if self._backlog:
            self._eof_pending = True  # EOF once the backlog is served
            self._pause_reading()
        else:
            self._on_eof()

    def _pause_reading(self) -> None:
        if self._paused or self.closed:
            return
        self._paused = True
        self.pauses += 1
        self._resume.clear()
        if self._loop_reader and self._loop is not None:
            self._loop.remove_reader(self.in_fd)
        self._arm_writer()

    def _resume_reading(self) -> None:
        if not self._paused:
            return
        if self._backlog:
            backlog, self._backlog = self._backlog, []
            self._serve(backlog)
            if self._backlog or self._queued > self.max_output:
                return  # still full: the writer is armed, we come back here
        if self._eof_pending:
            self._eof_pending = False
            self._paused = False
            self._on_eof()
            return
        self._paused = False
        self._resume.set()
        if self._loop_reader and self._loop is not None and not self._loop.is_closed():
            self._loop.add_reader(self.in_fd, self._on_readable)

    def _watch_hangup(self, is_socket: bool) -> None:
        # Wait for the client to hang up without consuming input: poll() reports
        # POLLHUP on a pipe whose writers are gone (and POLLRDHUP on a socket)
        # even while the loop is stuck in synchronous code.
        poller = select.poll()
        poller.register(self.in_fd, select.POLLRDHUP if is_socket else 0)
        hangup = select.POLLHUP | select.POLLERR | select.POLLNVAL | select.POLLRDHUP
        while not any(ev & hangup for _, ev in poller.poll()):
            pass
        self._exit_after_grace()

    def _read_loop(self) -> None:
        loop = self._loop
        assert loop is not None
        decoder = self._decoder
        while True:
            # Back-pressure: wait (bounded, re-checked) while the output queue is full.
            while not self._resume.wait(1.0):
                pass
            data = self._read()
            if data is None:
                continue
            events = decoder.feed(data)
            try:
                if events:
                    loop.call_soon_threadsafe(self._thread_batch, events)
                if not data:
                    loop.call_soon_threadsafe(self._thread_eof)
            except RuntimeError:  # the loop is closed: we are exiting anyway
                pass
            if not data:
                break
        if self.exit_after_eof:
            self._exit_after_grace()

    def _exit_after_grace(self) -> None:
        # Input is gone, so is our client. If the loop cannot finish within the
        # grace period (a synchronous tool is blocking it), end the process.
        threading.Event().wait(self.eof_grace)
        os._exit(0)

    # -- output --------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Write one encoded frame (header included). Never blocks a non-blocking fd."""
        if self.closed:
            return
        if self._cork is not None:
            self._cork.append(data)
            self._corked += len(data)
            return
        if not self._nonblocking:
            self._write_blocking(data)
            return
        if self._queue:  # keep order: behind what is already waiting
            self._queue.append(memoryview(data))
            self._queued += len(data)
            return
        try:
            sent = os.write(self.out_fd, data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self._broken(exc)
            return
        if sent < len(data):
            self._queue.append(memoryview(data)[sent:])
            self._queued += len(data) - sent
            self._arm_writer()
        elif self.idle_spin and self._is_idle is not None and self._is_idle():
            self._start_spin()

    def _start_spin(self) -> None:
        """The reply that left the worker idle is out: spin (see the module's docs),
        unless a first ``sched_yield`` right away shows that another process needed
        this CPU (it took long): then nothing spins until the next reply. (Pinned to
        the client's one CPU the spin is off from the start: ``__main__``.)"""
        self._spin_until = time.monotonic() + self.idle_spin
        if self._spinning or not self._loop_reader:
            return
        if self._yield_to_others():
            return
        self._spinning = True
        self._loop.call_soon(self._spin)  # type: ignore[union-attr]

    @staticmethod
    def _yield_to_others() -> bool:
        """``sched_yield``; True when another process ran meanwhile (it took long)."""
        t0 = time.monotonic()
        os.sched_yield()
        return time.monotonic() - t0 > SHARED_CPU_YIELD

    @property
    def spinning(self) -> bool:
        """True while the idle spin keeps the loop polling."""
        return self._spinning

    def _spin(self) -> None:
        """One turn of the idle spin (see the module's docs): again on the next loop
        turn while the worker stays idle, reading and open, within the deadline."""
        assert self._loop is not None and self._is_idle is not None
        if (
            self._loop_reader
            and not self._paused
            and not self.closed
            and self._is_idle()
            and time.monotonic() < self._spin_until
            and not self._yield_to_others()  # a process on this CPU (the BEAM) goes first
        ):
            self._loop.call_soon(self._spin)
        else:
            self._spinning = False

    def _write_blocking(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.out_fd, view) :]
        except OSError as exc:
            self._broken(exc)

    def _arm_writer(self) -> None:
        if not self._writer_armed and self._loop is not None:
            self._loop.add_writer(self.out_fd, self._on_writable)
            self._writer_armed = True

    def _on_writable(self) -> None:
        queue = self._queue
        try:
            while queue:
                head = queue[0]
                sent = os.write(self.out_fd, head)
                self._queued -= sent
                if sent < len(head):
                    queue[0] = head[sent:]
                    break
                queue.popleft()
        except BlockingIOError:
            pass
        except OSError as exc:
            self._broken(exc)
            return
        if not queue and self._writer_armed and self._loop is not None:
            self._loop.remove_writer(self.out_fd)
            self._writer_armed = False
        if self._queued <= self.high_water:
            self._wake_drainers()
            self._resume_reading()

    def _wake_drainers(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def _broken(self, exc: OSError) -> None:
        if self.closed:
            return
        self.closed = True
        self._queue.clear()
        self._queued = 0
        self._wake_drainers()
        self._resume.set()
        if exc.errno not in (errno.EPIPE, errno.ECONNRESET):
            logger.error("frame output failed: %s", exc)
        # Output gone means the client is gone: treat it like input EOF.
        self._on_eof()

    @property
    def buffered(self) -> int:
        """Bytes queued for output."""
        return self._queued

    async def drain(self) -> None:
        """Wait while more than ``high_water`` bytes are queued."""
        if self._queued <= self.high_water or self.closed:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._drain_waiters.append(fut)
        self._arm_writer()
        await fut

    def flush_blocking(self) -> None:
        """Write everything queued, blocking (at exit). Errors are ignored."""
        if self._writer_armed and self._loop is not None and not self._loop.is_closed():
            self._loop.remove_writer(self.out_fd)
            self._writer_armed = False
        if self.closed:
            return
        if self._nonblocking:
            os.set_blocking(self.out_fd, True)
        try:
            while self._queue:
                head = self._queue.popleft()
                while head:
                    head = head[os.write(self.out_fd, head) :]
        except OSError:
            pass
        self._queued = 0

    def info(self) -> dict[str, Any]:
        """Transport counters for ``stats``."""
        return {"output_buffered": self._queued, "input_paused": self.pauses}
