"""Shared helpers of the benchmark scripts: spawning, lean frame I/O, RSS, tables.

The drivers here stay cheap on purpose (the machine has 2 cores and the driver
shares them with the process under test): request frames are encoded once, and
replies of a fixed size are counted by bytes, not decoded one by one.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PY = sys.executable
SUPPORT = ROOT / "tests" / "support"


def env_with_path() -> dict[str, str]:
    """The environment with bench/ and tests/support on PYTHONPATH."""
    env = dict(os.environ)
    extra = [str(BENCH), str(SUPPORT)]
    if env.get("PYTHONPATH"):
        extra.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(extra)
    return env


def frame(payload: bytes) -> bytes:
    """``{packet,4}``: a 4-byte big-endian length, then the payload."""
    return struct.pack(">I", len(payload)) + payload


class Proc:
    """A child process spoken to with ``{packet,4}`` frames on its stdin/stdout."""

    def __init__(self, argv: Sequence[str], *, cpus: str | None = None) -> None:
        if cpus is not None:
            argv = ["taskset", "-c", cpus, *argv]
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env_with_path(),
            bufsize=0,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.wfd = self.proc.stdin.fileno()
        self.rfd = self.proc.stdout.fileno()
        self.buf = b""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.wfd, view) :]

    def read_exact(self, n: int) -> bytes:
        buf = self.buf
        while len(buf) < n:
            chunk = os.read(self.rfd, max(1 << 16, n - len(buf)))
            if not chunk:
                raise EOFError(f"process {self.pid} closed its output")
            buf += chunk
        self.buf = buf[n:]
        return buf[:n]

    def recv_payload(self) -> bytes:
        (n,) = struct.unpack(">I", self.read_exact(4))
        return self.read_exact(n)

    def close(self, timeout: float = 5.0) -> None:
        with contextlib.suppress(OSError):
            self.proc.stdin.close()  # type: ignore[union-attr]
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()  # type: ignore[union-attr]

    def __enter__(self) -> Proc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def worker_argv(codec: str, *extra: str) -> list[str]:
    return [PY, "-m", "axon_port", "--codec", codec, *extra]


def echo_argv(kind: str) -> list[str]:
    return [PY, str(BENCH / "baselines.py"), kind]


def spawn_worker(codec: str, *extra: str, cpus: str | None = None) -> tuple[Proc, float]:
    """Start a worker; return it and the seconds from spawn to its ``ready`` frame."""
    p = Proc(worker_argv(codec, *extra), cpus=cpus)
    payload = p.recv_payload()
    elapsed = time.perf_counter() - p.started
    from axon_port.codecs import get_codec

    ready = get_codec(codec).decode(payload)
    assert ready["type"] == "ready", ready
    return p, elapsed


def round_trips(p: Proc, req: bytes, n: int) -> list[float]:
    """``n`` sequential round trips of one request frame; seconds each."""
    reply = len(frame(p_roundtrip(p, req)))
    out = []
    send, read_exact, clock = p.send, p.read_exact, time.perf_counter
    for _ in range(n):
        t0 = clock()
        send(req)
        read_exact(reply)
        out.append(clock() - t0)
    return out


def p_roundtrip(p: Proc, req: bytes) -> bytes:
    p.send(req)
    return p.recv_payload()


def pipelined(p: Proc, reqs: Sequence[bytes], n: int, window: int) -> float:
    """Requests per second with ``window`` in flight (same-size requests and replies).

    ``reqs`` are frames of equal size with distinct ids (cycled); every reply must
    have the size of the first one. Returns the rate; checks the byte count at the end.
    """
    size = len(reqs[0])
    assert all(len(r) == size for r in reqs)
    reply = len(frame(p_roundtrip(p, reqs[0])))
    m = len(reqs)
    assert m > window
    blob = b"".join(reqs) * 2
    sent = 0
    done_bytes = 0
    send, read, rfd = p.send, os.read, p.rfd
    t0 = time.perf_counter()
    first = min(window, n)
    send(blob[: first * size])
    sent = first
    total = n * reply
    while done_bytes < total:
        chunk = read(rfd, 1 << 18)
        if not chunk:
            raise EOFError("process closed its output")
        done_bytes += len(chunk)
        done = done_bytes // reply
        k = min(n - sent, done + window - sent)
        while k > 0:
            start = sent % m
            take = min(k, m - start)
            send(blob[start * size : (start + take) * size])
            sent += take
            k -= take
    rate = n / (time.perf_counter() - t0)
    if done_bytes != total:
        raise AssertionError(f"reply bytes {done_bytes} != {total}: an unexpected frame arrived")
    return rate


def rss_kb(pid: int) -> int:
    """Resident set size of ``pid`` in KiB (``VmRSS``)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def pct(values: Sequence[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def us(seconds: float) -> str:
    return f"{seconds * 1e6:.1f} us"


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a plain, aligned table."""
    cells = [[str(c) for c in header], *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n## {title}")
    for j, r in enumerate(cells):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |")
        if j == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    sys.stdout.flush()


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"
