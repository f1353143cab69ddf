"""Soak: a real worker under a mixed, partly hostile load for a while.

Every request id must get exactly one terminal frame; the worker's RSS is sampled
at the start and the end; the exit time after ``shutdown`` is measured. Run:

    .venv/bin/python bench/soak.py --seconds 120

It prints one line of figures (used in docs/reliability.md) and exits 1 if an
invariant broke.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

from axon_port._framing import encode_frame
from axon_port.client import PortClient

TERMINAL = {"result", "error", "pong"}


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--codec", default="etf")
    args = ap.parse_args()
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "tests/support"))
    c = PortClient.spawn(args.codec, ["--module", "fixture_functions", "--no-warm"], env=env)
    rng = random.Random(42)
    pending: set[int] = set()
    answered: dict[int, int] = {}
    bad_frames = 0
    next_id = 1
    start_rss = rss(c.pid)
    started = time.monotonic()
    sent = 0
    while time.monotonic() - started < args.seconds:
        batch = []
        for _ in range(200):
            rid = next_id
            next_id += 1
            r = rng.random()
            if r < 0.4:
                frame = {"op": "ping", "id": rid}
            elif r < 0.7:
                frame = {"op": "call", "id": rid, "function": "add", "args": [rid, 1]}
            elif r < 0.85:
                ms = [rng.randint(0, 20)]
                frame = {"op": "call", "id": rid, "function": "sleep_ms", "args": ms,
                         "timeout_ms": rng.randint(1, 20)}  # fmt: skip
            elif r < 0.95:
                frame = {"op": "call", "id": rid, "function": "add",
                         "timeout_ms": rng.choice([0, -1, 10**30, "x", 1.5])}  # fmt: skip
            else:
                batch.append(encode_frame(os.urandom(rng.randint(1, 64))))
                bad_frames += 1
                continue
            pending.add(rid)
            batch.append(encode_frame(c.codec.encode(frame)))
            if r > 0.7 and r < 0.85 and rng.random() < 0.3:
                batch.append(encode_frame(c.codec.encode({"op": "cancel", "target": rid})))
        c.send_bytes(b"".join(batch))
        sent += len(batch)
        while len(pending) > 2000:
            f = c.recv(30)
            rid = f.get("id")
            if f["type"] in TERMINAL and isinstance(rid, int) and rid in pending:
                pending.discard(rid)
                answered[rid] = answered.get(rid, 0) + 1
            elif f["type"] in TERMINAL and isinstance(rid, int):
                answered[rid] = answered.get(rid, 0) + 1
    while pending:
        f = c.recv(30)
        rid = f.get("id")
        if f["type"] in TERMINAL and isinstance(rid, int):
            pending.discard(rid)
            answered[rid] = answered.get(rid, 0) + 1
    end_rss = rss(c.pid)
    stats = c.request({"op": "stats", "id": -1})["output"]
    t0 = time.monotonic()
    c.send({"op": "shutdown", "id": -2})
    code = c.proc.wait(10)
    exit_s = time.monotonic() - t0
    dupes = sum(1 for n in answered.values() if n != 1)
    ok = dupes == 0 and stats["inflight"] == 0 and code == 0
    print(
        f"soak {args.codec}: {time.monotonic() - started:.0f} s, {next_id - 1} requests"
        f" ({bad_frames} garbage frames), {len(answered)} ids answered, {dupes} ids answered"
        f" != 1 time, inflight {stats['inflight']}, RSS {start_rss / 2**20:.1f} ->"
        f" {end_rss / 2**20:.1f} MiB, shutdown exit {code} after {exit_s * 1000:.0f} ms"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
