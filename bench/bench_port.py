"""Port benchmark (Python-driven): the worker against its baselines, in one run.

Every figure is a ratio against a baseline measured side by side in this run:

* start-up: spawn -> ``ready`` frame vs ``python -c pass`` and ``python -c "import pydantic_ai"``;
* sequential round trips (p50/p99): ``ping`` and a trivial ``call`` (``add``, inline) over
  msgpack and ETF vs the raw echo and the asyncio echo (``bench/baselines.py``), fed the
  very same request bytes;
* pipelined throughput (``--window`` in flight) and 64 concurrent callers (64 in flight);
* idle RSS vs a bare ``python -c "import pydantic_ai"``;
* memory per in-flight agent run (worker vs the same runs in-process);
* soak: ``--soak`` requests after warm-up, RSS growth (worker and raw echo).

Usage: ``python bench/bench_port.py [--rounds 3] [--soak 200000] [--skip soak,memory]``.
Round-based sections alternate the processes under test each round and report medians.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import _lib as L
import msgpack

from axon_port import Atom
from axon_port.codecs import get_codec

FIXTURE = "fixture_functions"
ID0 = 300  # ids >= 256: every reply of a run has the same size (see _lib.pipelined)


def request_frames(codec: str, op: str, count: int) -> list[bytes]:
    """``count`` request frames (ids ID0..) for ``ping`` or ``call add(1, 2)``."""
    c = get_codec(codec)
    out = []
    for i in range(ID0, ID0 + count):
        if codec == "etf":
            req: dict[Any, Any] = {Atom("op"): Atom(op), Atom("id"): i}
            if op == "call":
                req.update({Atom("function"): "add", Atom("args"): [1, 2]})
        else:
            req = {"op": op, "id": i}
            if op == "call":
                req.update({"function": "add", "args": [1, 2]})
        out.append(L.frame(c.encode(req)))
    return out


def check_reply(codec: str, payload: bytes, op: str) -> None:
    reply = get_codec(codec).decode(payload)
    want = "pong" if op == "ping" else "result"
    assert reply["type"] == want, reply
    if op == "call":
        assert reply["output"] == 3, reply


# -- start-up ---------------------------------------------------------------------


def wall(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, env=L.env_with_path())
    return time.perf_counter() - t0


def bench_startup(rounds: int) -> None:
    bare, imp, ready, ready_nowarm = [], [], [], []
    for _ in range(rounds):
        bare.append(wall([L.PY, "-c", "pass"]))
        imp.append(wall([L.PY, "-c", "import pydantic_ai"]))
        for out, extra in ((ready, ()), (ready_nowarm, ("--no-warm",))):
            p, t = L.spawn_worker("etf", *extra)
            out.append(t)
            p.close()
    b, i = L.median(bare), L.median(imp)
    r, rn = L.median(ready), L.median(ready_nowarm)
    L.table(
        f"start-up (median of {rounds})",
        ["what", "time", "x python -c pass", "x import pydantic_ai", "target"],
        [
            ["python -c pass", L.ms(b), "1.00", f"{b / i:.2f}", ""],
            ["python -c 'import pydantic_ai'", L.ms(i), f"{i / b:.2f}", "1.00", ""],
            [
                "worker: spawn -> ready",
                L.ms(r),
                f"{r / b:.2f}",
                f"{r / i:.2f}",
                f"<= 150 ms: {L.verdict(r <= 0.150)}",
            ],
            ["worker --no-warm: spawn -> ready", L.ms(rn), f"{rn / b:.2f}", f"{rn / i:.2f}", ""],
        ],
    )


# -- latency and throughput -------------------------------------------------------


class Target:
    """A process under test, with its request frames for ping and call."""

    def __init__(self, name: str, codec: str, make: Callable[[], L.Proc]) -> None:
        self.name = name
        self.codec = codec
        self.make = make
        self.proc: L.Proc | None = None
        self.frames = {op: request_frames(codec, op, 1024) for op in ("ping", "call")}

    def start(self) -> L.Proc:
        self.proc = self.make()
        return self.proc


def targets() -> list[Target]:
    def worker(codec: str) -> Callable[[], L.Proc]:
        def make() -> L.Proc:
            p = L.spawn_worker(codec, "--module", FIXTURE)[0]
            wait_stable_rss(p.pid)  # steady state: the background import has finished
            return p

        return make

    return [
        Target("raw echo", "msgpack", lambda: L.Proc(L.echo_argv("raw"))),
        Target("asyncio echo", "msgpack", lambda: L.Proc(L.echo_argv("asyncio"))),
        Target("worker msgpack", "msgpack", worker("msgpack")),
        Target("worker etf", "etf", worker("etf")),
    ]


PLACEMENTS = {
    # name: (cpus of the children, cpus of this driver); children inherit the
    # affinity in force when they are spawned.
    "unpinned": (None, None),
    "same-core": ({0}, {0}),
    "cross-core": ({1}, {0}),
}


def bench_wire(rounds: int, n_rt: int, n_pipe: int, window: int, placement: str) -> None:
    children, driver = PLACEMENTS[placement]
    everywhere = os.sched_getaffinity(0)
    ts = targets()
    if children is not None:
        os.sched_setaffinity(0, children)
    for t in ts:
        p = t.start()
        if t.name.startswith("worker"):
            for op in ("ping", "call"):
                check_reply(t.codec, L.p_roundtrip(p, t.frames[op][0]), op)
    os.sched_setaffinity(0, driver if driver is not None else everywhere)
    lat: dict[tuple[str, str], list[float]] = {}
    thr: dict[tuple[str, str, int], list[float]] = {}
    for _ in range(rounds):
        for t in ts:
            assert t.proc is not None
            for op in ("ping", "call"):
                lat.setdefault((t.name, op), []).extend(
                    L.round_trips(t.proc, t.frames[op][0], n_rt)
                )
                for w in (window, 64):
                    thr.setdefault((t.name, op, w), []).append(
                        L.pipelined(t.proc, t.frames[op], n_pipe, w)
                    )
    for t in ts:
        assert t.proc is not None
        t.proc.close()
    os.sched_setaffinity(0, everywhere)

    rows = []
    for op in ("ping", "call"):
        raw = L.pct(lat[("raw echo", op)], 0.5)
        aio = L.pct(lat[("asyncio echo", op)], 0.5)
        for t in ts:
            v = lat[(t.name, op)]
            p50, p99 = L.pct(v, 0.5), L.pct(v, 0.99)
            target = ""
            if t.name.startswith("worker") and op == "ping":
                target = f"p50 <= 2x raw: {L.verdict(p50 <= 2 * raw)}"
            rows.append(
                [op, t.name, L.us(p50), L.us(p99), f"{p50 / raw:.2f}", f"{p50 / aio:.2f}", target]
            )
    L.table(
        f"sequential round trip, Python driver, {placement} ({rounds}x{n_rt} per row)",
        ["op", "process", "p50", "p99", "p50 x raw", "p50 x asyncio", "target"],
        rows,
    )

    def thr_table(w: int, title: str) -> None:
        rows = []
        for op in ("ping", "call"):
            raw = L.median(thr[("raw echo", op, w)])
            aio = L.median(thr[("asyncio echo", op, w)])
            for t in ts:
                r = L.median(thr[(t.name, op, w)])
                target = ""
                if t.name == "worker msgpack" and w == window:
                    ok = r >= 0.4 * raw and r >= aio
                    target = f">= 40% raw and >= asyncio: {L.verdict(ok)}"
                elif t.name == "worker etf" and w == window:
                    target = f">= 30% raw: {L.verdict(r >= 0.3 * raw)}"
                rows.append([op, t.name, f"{r:,.0f}/s", f"{r / raw:.1%}", f"{r / aio:.2f}", target])
        L.table(title, ["op", "process", "rate", "% of raw", "x asyncio", "target"], rows)

    thr_table(
        window,
        f"pipelined throughput, {placement}, {window} in flight (median of {rounds}x{n_pipe})",
    )
    thr_table(64, f"64 concurrent callers, {placement} (64 in flight; median of {rounds}x{n_pipe})")


# -- memory -----------------------------------------------------------------------

RSS_AFTER_IMPORT = (
    "import pydantic_ai, sys\n"
    "for l in open('/proc/self/status'):\n"
    "    if l.startswith('VmRSS:'): print(l.split()[1])\n"
)


def stats(p: L.Proc, codec: str, rid: int) -> dict[str, Any]:
    c = get_codec(codec)
    p.send(L.frame(c.encode({"op": "stats", "id": rid})))
    while True:
        r = c.decode(p.recv_payload())
        if r.get("id") == rid and r.get("type") == "result":
            return dict(r["output"])


def wait_stable_rss(pid: int, settle: float = 0.5, limit: float = 10.0) -> int:
    """RSS once it stops changing (the background import has finished)."""
    t0 = time.monotonic()
    last = L.rss_kb(pid)
    while time.monotonic() - t0 < limit:
        time.sleep(settle)
        now = L.rss_kb(pid)
        if abs(now - last) < 64:
            return now
        last = now
    return last


def bench_idle_rss(rounds: int) -> None:
    bare, warm, nowarm, after_run = [], [], [], []
    run_req = {"op": "run", "id": 1, "prompt": "hi", "spec": {"model": "test"}}
    for _ in range(rounds):
        out = subprocess.run(
            [L.PY, "-c", RSS_AFTER_IMPORT], check=True, capture_output=True, text=True
        )
        bare.append(int(out.stdout.strip()))
        p, _ = L.spawn_worker("msgpack")
        warm.append(wait_stable_rss(p.pid))
        p.send(L.frame(msgpack.packb(run_req)))
        r = msgpack.unpackb(p.recv_payload())
        assert r["type"] == "result", r
        after_run.append(wait_stable_rss(p.pid))
        p.close()
        p, _ = L.spawn_worker("msgpack", "--no-warm")
        nowarm.append(wait_stable_rss(p.pid))
        p.close()
    b = L.median(bare)
    rows = [["python -c 'import pydantic_ai'", f"{b / 1024:.1f} MiB", "1.00", ""]]
    for name, v, tgt in (
        ("worker idle (warmed, no run yet)", warm, True),
        ("worker idle after one run", after_run, False),
        ("worker idle --no-warm", nowarm, False),
    ):
        m = L.median(v)
        target = f"<= 1.2x: {L.verdict(m <= 1.2 * b)}" if tgt else ""
        rows.append([name, f"{m / 1024:.1f} MiB", f"{m / b:.2f}", target])
    L.table(
        f"idle RSS (median of {rounds})", ["process", "RSS", "x import pydantic_ai", "target"], rows
    )


INPROC_INFLIGHT = """
import asyncio, gc, json, sys
import bench_models
from bench_models import AGENTS

def rss():
    for l in open('/proc/self/status'):
        if l.startswith('VmRSS:'):
            return int(l.split()[1])

async def main(n):
    for _ in range(50):
        await AGENTS['cpu'].run('hi')
    gc.collect()
    base = rss()
    tasks = [asyncio.create_task(AGENTS['hold'].run('hi')) for _ in range(n)]
    await asyncio.sleep(1.0)
    peak = rss()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps({'base': base, 'peak': peak}))

asyncio.run(main(int(sys.argv[1])))
"""


def bench_inflight_memory(n: int) -> None:
    os.environ["BENCH_HOLD_S"] = "30"
    p, _ = L.spawn_worker("msgpack", "--module", "bench_models")
    try:
        for i in range(50):
            p.send(L.frame(msgpack.packb({"op": "run", "id": i, "agent": "cpu", "prompt": "hi"})))
        for _ in range(50):
            assert msgpack.unpackb(p.recv_payload())["type"] == "result"
        time.sleep(0.3)
        base = L.rss_kb(p.pid)
        reqs = [
            L.frame(msgpack.packb({"op": "run", "id": 1000 + i, "agent": "hold", "prompt": "hi"}))
            for i in range(n)
        ]
        p.send(b"".join(reqs))
        t0 = time.monotonic()
        while stats(p, "msgpack", 99)["inflight"] < n and time.monotonic() - t0 < 20:
            time.sleep(0.1)
        time.sleep(1.0)
        peak = L.rss_kb(p.pid)
    finally:
        p.proc.kill()
        p.close()
        del os.environ["BENCH_HOLD_S"]
    env = L.env_with_path()
    env["BENCH_HOLD_S"] = "30"
    out = subprocess.run(
        [L.PY, "-c", INPROC_INFLIGHT, str(n)], check=True, capture_output=True, text=True, env=env
    )
    ip = json.loads(out.stdout)
    w_per = (peak - base) / n
    i_per = (ip["peak"] - ip["base"]) / n
    L.table(
        f"memory per in-flight run ({n} 'hold' runs in flight, after 50 warm-up runs)",
        ["process", "RSS before", "RSS in flight", "per run", "x in-process", "target"],
        [
            [
                "in-process pydantic-ai",
                f"{ip['base'] / 1024:.1f} MiB",
                f"{ip['peak'] / 1024:.1f} MiB",
                f"{i_per:.1f} KiB",
                "1.00",
                "",
            ],
            [
                "worker (msgpack)",
                f"{base / 1024:.1f} MiB",
                f"{peak / 1024:.1f} MiB",
                f"{w_per:.1f} KiB",
                f"{w_per / i_per:.2f}" if i_per > 0 else "n/a",
                f"<= 100 KB: {L.verdict(w_per * 1024 <= 100_000)}",
            ],
        ],
    )


# -- soak -------------------------------------------------------------------------


def bench_soak(n: int, warm: int) -> None:
    rows = []
    for name, make, codec in (
        ("raw echo", lambda: L.Proc(L.echo_argv("raw")), "msgpack"),
        ("worker msgpack", lambda: L.spawn_worker("msgpack", "--module", FIXTURE)[0], "msgpack"),
        ("worker etf", lambda: L.spawn_worker("etf", "--module", FIXTURE)[0], "etf"),
    ):
        p = make()
        # Let the background `import pydantic_ai` finish first: its memory is
        # start-up, not growth.
        wait_stable_rss(p.pid)
        frames = request_frames(codec, "call", 1024)
        L.pipelined(p, frames, warm, 64)
        time.sleep(0.2)
        r0 = L.rss_kb(p.pid)
        t0 = time.perf_counter()
        done = 0
        peak = r0
        while done < n:
            k = min(20_000, n - done)
            L.pipelined(p, frames, k, 64)
            done += k
            peak = max(peak, L.rss_kb(p.pid))
        secs = time.perf_counter() - t0
        time.sleep(0.2)
        r1 = L.rss_kb(p.pid)
        p.close()
        growth = (r1 - r0) / r0
        target = f"<= 5%: {L.verdict(growth <= 0.05)}" if name.startswith("worker") else ""
        rows.append(
            [
                name,
                f"{n:,}",
                f"{secs:.1f} s",
                f"{r0 / 1024:.1f} MiB",
                f"{r1 / 1024:.1f} MiB",
                f"{peak / 1024:.1f} MiB",
                f"{growth:+.2%}",
                target,
            ]
        )
    L.table(
        f"soak: call add(1, 2), 64 in flight, RSS after {warm:,} warm-up requests",
        ["process", "requests", "time", "RSS start", "RSS end", "RSS peak", "growth", "target"],
        rows,
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rt", type=int, default=2000, help="sequential round trips per round")
    ap.add_argument("--pipe", type=int, default=30_000, help="pipelined requests per round")
    ap.add_argument("--window", type=int, default=256)
    ap.add_argument(
        "--placements",
        default="same-core,cross-core",
        help="comma list of unpinned, same-core, cross-core (driver and children pinned)",
    )
    ap.add_argument("--inflight", type=int, default=1000, help="runs held in flight (memory)")
    ap.add_argument("--soak", type=int, default=200_000, help="soak requests after warm-up")
    ap.add_argument("--soak-warm", type=int, default=20_000)
    ap.add_argument("--skip", default="", help="comma list: startup,wire,rss,memory,soak")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    print(
        f"# bench_port: python {sys.version.split()[0]}, {os.cpu_count()} cpus, unpinned,"
        f" loadavg {os.getloadavg()[0]:.2f} at start"
    )
    if "startup" not in skip:
        bench_startup(max(3, args.rounds))
    if "wire" not in skip:
        for placement in args.placements.split(","):
            bench_wire(args.rounds, args.rt, args.pipe, args.window, placement)
    if "rss" not in skip:
        bench_idle_rss(max(1, args.rounds - 1))
    if "memory" not in skip:
        bench_inflight_memory(args.inflight)
    if "soak" not in skip and args.soak > 0:
        bench_soak(args.soak, args.soak_warm)
    return 0


if __name__ == "__main__":
    sys.exit(main())
