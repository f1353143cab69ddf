"""A small synchronous client that runs ``python -m axon_port`` as a subprocess.

For smoke runs, the demo, process-level tests and benchmarks: it speaks the
same ``{packet, 4}`` frames over pipes that an Elixir Port does. Not thread-safe.

    with PortClient.spawn(codec="etf") as c:
        assert c.request({"op": "ping", "id": 1})["type"] == "pong"
"""

from __future__ import annotations

import contextlib
import os
import selectors
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

from axon_port._framing import FrameDecoder, encode_frame
from axon_port.codecs import Codec, get_codec
from axon_port.messages import TERMINAL_TYPES

__all__ = ["PortClient", "WorkerGone"]

Frame = dict[str, Any]


class WorkerGone(Exception):
    """The worker closed its output (it exited or crashed)."""


class PortClient:
    """Frames to and from a worker subprocess over its stdin/stdout."""

    def __init__(self, proc: subprocess.Popen[bytes], codec: Codec) -> None:
        self.proc = proc
        self.codec = codec
        self._decoder = FrameDecoder(2**32 - 1)
        self._pending: deque[Frame] = deque()
        assert proc.stdout is not None and proc.stdin is not None
        self._out_fd = proc.stdout.fileno()
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._out_fd, selectors.EVENT_READ)
        self.ready: Frame = {}

    @classmethod
    def spawn(
        cls,
        codec: str = "etf",
        args: Sequence[str] = (),
        *,
        env: dict[str, str] | None = None,
        python: str = sys.executable,
        stderr: Any = None,
        ready_timeout: float = 30.0,
    ) -> PortClient:
        """Start a worker and wait for its ``ready`` frame."""
        proc = subprocess.Popen(
            [python, "-m", "axon_port", "--codec", codec, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
        )
        client = cls(proc, get_codec(codec))
        try:
            client.ready = client.recv(ready_timeout)
        except BaseException:
            client.kill()
            raise
        if client.ready.get("type") != "ready":
            client.kill()
            raise WorkerGone(f"expected a ready frame, got {client.ready!r}")
        return client

    def __enter__(self) -> PortClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def pid(self) -> int:
        """The worker's OS pid."""
        return self.proc.pid

    def send_bytes(self, data: bytes) -> None:
        """Write raw bytes to the worker's input."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, frame: Any) -> None:
        """Encode and send one frame."""
        self.send_bytes(encode_frame(self.codec.encode(frame)))

    def recv(self, timeout: float = 10.0) -> Frame:
        """The next frame; ``TimeoutError`` after ``timeout`` s, ``WorkerGone`` at EOF."""
        deadline = time.monotonic() + timeout
        while not self._pending:
            left = deadline - time.monotonic()
            if left <= 0 or not self._sel.select(left):
                raise TimeoutError(f"no frame within {timeout} s")
            data = os.read(self._out_fd, 1 << 16)
            if not data:
                raise WorkerGone(f"worker output closed (exit status {self.proc.poll()})")
            for payload in self._decoder.feed(data):
                assert isinstance(payload, bytes)
                self._pending.append(self.codec.decode(payload))
        return self._pending.popleft()

    def request(
        self,
        frame: Frame,
        on_frame: Callable[[Frame], None] | None = None,
        timeout: float = 30.0,
    ) -> Frame:
        """Send ``frame``; return its terminal frame, passing other frames to ``on_frame``."""
        self.send(frame)
        req_id = frame.get("id")
        deadline = time.monotonic() + timeout
        while True:
            got = self.recv(max(0.0, deadline - time.monotonic()))
            if got.get("id") == req_id and got.get("type") in TERMINAL_TYPES:
                return got
            if on_frame is not None:
                on_frame(got)

    def close_input(self) -> None:
        """Close the worker's stdin (it sees EOF and exits)."""
        assert self.proc.stdin is not None
        if not self.proc.stdin.closed:
            self.proc.stdin.close()

    def close(self, timeout: float = 5.0) -> int | None:
        """Close input and wait for the worker to exit; kill it after ``timeout``."""
        with contextlib.suppress(BrokenPipeError):
            self.close_input()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        finally:
            self._sel.close()
            if self.proc.stdout is not None:
                self.proc.stdout.close()

    def kill(self) -> None:
        """SIGKILL the worker and reap it."""
        self.proc.kill()
        self.proc.wait()
