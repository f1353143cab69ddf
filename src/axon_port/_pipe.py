"""``python -m axon_port pipe [--expect N] [--timeout S] [worker args]``: JSON lines in and out.

A smoke-run tool: it starts a worker subprocess (``python -m axon_port`` with the
remaining arguments), reads requests as JSON lines on stdin, frames them in the
worker's codec, and prints every frame the worker sends (``ready``, replies,
``chunk``, ``log``, ``tool_call``) as one JSON line on stdout.

Theory of operation: one thread, one poll loop over stdin and the worker's
output (``poll``, not ``epoll``, so stdin may be a regular file). A request
without an ``id`` gets the next integer not used yet; notifications
(``cancel``, ``tool_result``) get none. Every id sent is *pending* until its
terminal frame (``result``, ``error``, ``pong``) arrives. The pipe ends when
stdin is closed and nothing is pending, or after ``--expect N`` terminal frames;
then it closes the worker's input and waits for it to exit.

JSON cannot say "bytes": in requests ``{"$bytes": "<base64>"}`` stands for a binary
(e.g. image data), and in printed frames bytes appear as base64 strings, atoms as
strings, tuples as arrays. A line that is not a JSON object is reported on stderr
and skipped; the worker never sees it.

Exit codes: 0 when every request was answered; 1 on ``--timeout`` or when the
worker exits with requests pending; 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import selectors
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from axon_port._framing import FrameDecoder, encode_frame
from axon_port.codecs import CODEC_NAMES, get_codec
from axon_port.messages import NOTIFICATION_OPS, TERMINAL_TYPES

__all__ = ["from_json", "main", "to_json"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    """The pipe's own flags; everything else is passed to the worker."""
    p = argparse.ArgumentParser(
        prog="axon-port pipe",
        description="Start a worker and pipe JSON-line requests to it; print every frame "
        "it sends as a JSON line. Unknown arguments go to the worker.",
        allow_abbrev=False,
    )
    p.add_argument("--codec", choices=CODEC_NAMES, default="etf", help="the worker's codec")
    p.add_argument(
        "--expect",
        type=int,
        metavar="N",
        help="exit after N terminal replies (stdin may stay open)",
    )
    p.add_argument(
        "--timeout", type=float, metavar="SECONDS", help="give up (exit 1) after SECONDS in all"
    )
    p.add_argument("--python", default=sys.executable, help=argparse.SUPPRESS)
    return p


def from_json(value: Any) -> Any:
    """A decoded JSON value → what the codec sends (``{"$bytes": b64}`` → ``bytes``)."""
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get("$bytes"), str):
            return base64.b64decode(value["$bytes"], validate=True)
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value


def to_json(value: Any) -> Any:
    """A decoded frame → JSON-ready data (bytes base64, atoms ``str``, tuples lists)."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, str):
        return str(value)
    if isinstance(value, Mapping):
        return {(k if isinstance(k, str) else json.dumps(to_json(k))): to_json(v)
                for k, v in value.items()}  # fmt: skip
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


class _Pipe:
    def __init__(self, proc: subprocess.Popen[bytes], codec: str, out: TextIO, err: TextIO) -> None:
        self.proc = proc
        self.codec = get_codec(codec)
        self.out, self.err = out, err
        self.pending: set[int] = set()
        self.used: set[int] = set()
        self.next_id = 1
        self.terminal = 0
        self.line_no = 0
        self._buf = b""
        self._decoder = FrameDecoder(2**32 - 1)

    def request_line(self, line: bytes) -> None:
        self.line_no += 1
        if not line.strip():
            return
        try:
            req = from_json(json.loads(line))
        except ValueError as exc:
            self.warn(f"line {self.line_no}: not JSON ({exc}); skipped")
            return
        if not isinstance(req, dict):
            self.warn(f"line {self.line_no}: a request must be a JSON object; skipped")
            return
        if req.get("op") not in NOTIFICATION_OPS:
            if "id" not in req:
                while self.next_id in self.used:
                    self.next_id += 1
                req["id"] = self.next_id
            if type(req["id"]) is int:
                self.used.add(req["id"])
                self.pending.add(req["id"])
        assert self.proc.stdin is not None
        self.proc.stdin.write(encode_frame(self.codec.encode(req)))
        self.proc.stdin.flush()

    def feed_input(self, data: bytes) -> None:
        self._buf += data
        *lines, self._buf = self._buf.split(b"\n")
        for line in lines:
            self.request_line(line)

    def end_input(self) -> None:
        if self._buf:
            line, self._buf = self._buf, b""
            self.request_line(line)

    def feed_output(self, data: bytes) -> None:
        for payload in self._decoder.feed(data):
            assert isinstance(payload, bytes)
            frame = self.codec.decode(payload)
            self.out.write(json.dumps(to_json(frame), ensure_ascii=False) + "\n")
            self.out.flush()
            if isinstance(frame, dict) and frame.get("type") in TERMINAL_TYPES:
                self.terminal += 1
                self.pending.discard(frame.get("id"))

    def warn(self, text: str) -> None:
        self.err.write(f"axon-port pipe: {text}\n")
        self.err.flush()


def run(
    args: argparse.Namespace,
    worker_args: Sequence[str],
    stdin_fd: int,
    out: TextIO,
    err: TextIO,
) -> int:
    """Pipe ``stdin_fd`` to a new worker until done; the exit code."""
    proc = subprocess.Popen(
        [args.python, "-m", "axon_port", "--codec", args.codec, *worker_args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stdin is not None
    pipe = _Pipe(proc, args.codec, out, err)
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    worker_fd = proc.stdout.fileno()
    sel = selectors.PollSelector()
    sel.register(worker_fd, selectors.EVENT_READ)
    sel.register(stdin_fd, selectors.EVENT_READ)
    reading = True
    code = EXIT_OK
    try:
        while True:
            if args.expect is not None and pipe.terminal >= args.expect:
                break
            if not reading and not pipe.pending and args.expect is None:
                break
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                pipe.warn(f"timed out; no reply yet for ids {sorted(pipe.pending)}")
                code = EXIT_FAILED
                break
            for key, _ in sel.select(left):
                data = os.read(key.fd, 1 << 16)
                if key.fd == stdin_fd:
                    if data:
                        pipe.feed_input(data)
                    else:
                        reading = False
                        sel.unregister(stdin_fd)
                        pipe.end_input()
                elif data:
                    pipe.feed_output(data)
                else:
                    pipe.warn(
                        f"the worker exited (status {proc.wait()}) with ids "
                        f"{sorted(pipe.pending)} unanswered"
                    )
                    return EXIT_FAILED
            if args.expect is not None and not reading and pipe.terminal < args.expect \
                    and not pipe.pending:  # fmt: skip
                pipe.warn(f"stdin closed after {pipe.terminal} of {args.expect} replies")
                code = EXIT_FAILED
                break
    except BrokenPipeError:
        pipe.warn(f"the worker closed its input (status {proc.wait()})")
        return EXIT_FAILED
    finally:
        sel.close()
        _stop(proc, pipe, worker_fd)
    return code


def _stop(proc: subprocess.Popen[bytes], pipe: _Pipe, worker_fd: int) -> None:
    """Close the worker's input (EOF: it exits), print what it still sends, reap it."""
    with contextlib.suppress(BrokenPipeError):
        assert proc.stdin is not None
        proc.stdin.close()
    if proc.returncode is None:
        end = time.monotonic() + 5.0
        sel = selectors.PollSelector()
        sel.register(worker_fd, selectors.EVENT_READ)
        while time.monotonic() < end and sel.select(end - time.monotonic()):
            data = os.read(worker_fd, 1 << 16)
            if not data:
                break
            pipe.feed_output(data)
        sel.close()
        try:
            proc.wait(5.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.stdout is not None
    proc.stdout.close()


def main(argv: list[str]) -> int:
    """Entry point of ``python -m axon_port pipe``."""
    parser = build_parser()
    if "--" in argv:
        cut = argv.index("--")
        own, rest = argv[:cut], argv[cut + 1 :]
        args = parser.parse_args(own)
    else:
        args, rest = parser.parse_known_args(argv)
    if (args.expect is not None and args.expect < 0) or (
        args.timeout is not None and args.timeout <= 0
    ):
        sys.stderr.write("axon-port pipe: --expect must be >= 0 and --timeout > 0\n")
        return EXIT_USAGE
    return run(args, rest, sys.stdin.fileno(), sys.stdout, sys.stderr)
