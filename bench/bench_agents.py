"""Agent benchmark: runs through the worker against the same runs in-process, in one run.

* 1000 concurrent runs of ``sleepy`` (a ``FunctionModel`` awaiting ``asyncio.sleep(0.1)``)
  through one worker vs in-process ``asyncio.gather`` of the same runs, in-process with
  default GC and with the worker's GC tuning (``gc.collect(); gc.freeze()`` after
  start-up, ``gc.set_threshold(50_000, 20, 100)``);
* CPU-bound runs (``cpu``: the model answers at once): throughput of one worker, of a
  pool of 2 workers (2 cores), and in-process;
* the first ``run`` right after ``ready`` vs a cold in-process ``import pydantic_ai`` +
  first run.

Agents come from ``bench/bench_models.py`` (``--module bench_models`` in the worker,
imported directly in-process). Each in-process measurement runs in a fresh
interpreter. Usage: ``python bench/bench_agents.py [--rounds 2] [--runs 1000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import selectors
import struct
import subprocess
import sys
import threading
import time
from typing import Any

import _lib as L

from axon_port.codecs import get_codec

INPROC = """
import asyncio, gc, json, sys, time
from bench_models import AGENTS
agent, n, window, tuned = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"

async def main():
    await AGENTS[agent].run("hi")
    await AGENTS["cpu"].run("hi")
    if tuned:
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)
    sem = asyncio.Semaphore(window)
    async def one():
        async with sem:
            r = await AGENTS[agent].run("hi")
            assert r.output == "done"
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    print(json.dumps({"secs": time.perf_counter() - t0, "cpu": time.process_time() - cpu0}))

asyncio.run(main())
"""


def inproc(agent: str, n: int, window: int, tuned: bool) -> dict[str, float]:
    out = subprocess.run(
        [L.PY, "-c", INPROC, agent, str(n), str(window), "1" if tuned else "0"],
        check=True,
        capture_output=True,
        text=True,
        env=L.env_with_path(),
    )
    return json.loads(out.stdout)


def run_frames(codec: str, agent: str, n: int, id0: int) -> list[bytes]:
    c = get_codec(codec)
    return [
        L.frame(c.encode({"op": "run", "id": id0 + i, "agent": agent, "prompt": "hi"}))
        for i in range(n)
    ]


class Stream:
    """Sends a worker its request frames, ``window`` at a time, and counts its replies."""

    def __init__(self, proc: L.Proc, frames: list[bytes], window: int) -> None:
        self.proc = proc
        self.frames = frames
        self.window = window
        self.sent = 0
        self.done = 0
        self.buf = b""
        self.payloads: list[bytes] = []
        # A writer thread, so a big batch never blocks us while the worker writes.
        self.outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        threading.Thread(target=self._writer, daemon=True).start()

    def _writer(self) -> None:
        while (data := self.outbox.get()) is not None:
            self.proc.send(data)

    def close(self) -> None:
        self.outbox.put(None)

    def pump(self) -> None:
        k = min(len(self.frames), self.done + self.window) - self.sent
        if k > 0:
            data = b"".join(self.frames[self.sent : self.sent + k])
            self.sent += k
            self.outbox.put(data)

    def on_readable(self) -> None:
        chunk = os.read(self.proc.rfd, 1 << 18)
        if not chunk:
            raise EOFError("worker closed its output")
        buf = self.buf + chunk
        pos = 0
        while len(buf) - pos >= 4:
            (size,) = struct.unpack_from(">I", buf, pos)
            if len(buf) - pos - 4 < size:
                break
            self.payloads.append(buf[pos + 4 : pos + 4 + size])
            self.done += 1
            pos += 4 + size
        self.buf = buf[pos:]
        self.pump()

    @property
    def finished(self) -> bool:
        return self.done >= len(self.frames)


def drive(streams: list[Stream]) -> float:
    """Run every stream to completion; seconds from the first send to the last reply."""
    sel = selectors.DefaultSelector()
    for s in streams:
        sel.register(s.proc.rfd, selectors.EVENT_READ, s)
    t0 = time.perf_counter()
    for s in streams:
        s.pump()
    while not all(s.finished for s in streams):
        for key, _ in sel.select():
            key.data.on_readable()
    secs = time.perf_counter() - t0
    sel.close()
    for s in streams:
        s.close()
    return secs


def check(codec: str, streams: list[Stream]) -> None:
    c = get_codec(codec)
    for s in streams:
        kinds = [c.decode(p)["type"] for p in s.payloads]
        bad = [k for k in kinds if k != "result"]
        if bad:
            raise AssertionError(f"{len(bad)} non-result frames, e.g. {bad[0]}")


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worker_runs(codec: str, n_workers: int, agent: str, n: int, window: int) -> tuple[float, float]:
    """Seconds for ``n`` runs spread over ``n_workers`` fresh workers (after a warm-up run),
    and the CPU seconds the workers spent on them."""
    procs = [L.spawn_worker(codec, "--module", "bench_models")[0] for _ in range(n_workers)]
    try:
        warm = [Stream(p, run_frames(codec, a, 1, i), 1) for p in procs for i, a in
                enumerate((agent, "cpu"))]  # fmt: skip
        for w in warm:
            drive([w])
        per = n // n_workers
        streams = [
            Stream(p, run_frames(codec, agent, per, 1000), window // n_workers) for p in procs
        ]
        cpu0 = sum(proc_cpu(p.pid) for p in procs)
        secs = drive(streams)
        cpu = sum(proc_cpu(p.pid) for p in procs) - cpu0
        check(codec, streams)
        return secs, cpu
    finally:
        for p in procs:
            p.close()


# -- sections ---------------------------------------------------------------------


def bench_concurrent(codec: str, rounds: int, n: int) -> None:
    w, d, t, wc, dc, tc = [], [], [], [], [], []
    for _ in range(rounds):
        secs, cpu = worker_runs(codec, 1, "sleepy", n, n)
        w.append(secs)
        wc.append(cpu)
        r = inproc("sleepy", n, n, tuned=False)
        d.append(r["secs"])
        dc.append(r["cpu"])
        r = inproc("sleepy", n, n, tuned=True)
        t.append(r["secs"])
        tc.append(r["cpu"])
    wm, dm, tm = L.median(w), L.median(d), L.median(t)
    L.table(
        f"{n} concurrent 'sleepy' runs (100 ms model latency), median of {rounds}",
        ["how", "wall", "x in-process default GC", "x in-process tuned GC", "CPU", "target"],
        [
            ["in-process, default GC", L.ms(dm), "1.00", f"{dm / tm:.2f}", L.ms(L.median(dc)), ""],
            ["in-process, tuned GC", L.ms(tm), f"{tm / dm:.2f}", "1.00", L.ms(L.median(tc)), ""],
            [
                f"one worker ({codec})",
                L.ms(wm),
                f"{wm / dm:.2f}",
                f"{wm / tm:.2f}",
                L.ms(L.median(wc)),
                f"<= 0.6x default: {L.verdict(wm <= 0.6 * dm)}; "
                f"<= 1.2x tuned: {L.verdict(wm <= 1.2 * tm)}",
            ],
        ],
    )
    print(
        "(tuned GC = the worker's recipe: gc.collect(); gc.freeze();"
        " gc.set_threshold(50_000, 20, 100);"
    )
    print(
        " CPU is the measured process's own CPU time: wall well above CPU means it was preempted)"
    )


SPIN = "n = 0\nfor i in range(15_000_000):\n    n += i"


def spin_scaling() -> float:
    """How much faster 2 CPU-bound processes finish 2 jobs than 1 process does (ideal 2.0)."""
    t0 = time.perf_counter()
    subprocess.run([L.PY, "-c", SPIN], check=True)
    one = time.perf_counter() - t0
    t0 = time.perf_counter()
    ps = [subprocess.Popen([L.PY, "-c", SPIN]) for _ in range(2)]
    for p in ps:
        p.wait()
    return 2 * one / (time.perf_counter() - t0)


def bench_pool(codec: str, rounds: int, n: int, window: int) -> None:
    one, two, ip, one_cpu, two_cpu, ip_cpu, spin = [], [], [], [], [], [], []
    for _ in range(rounds):
        spin.append(spin_scaling())
        secs, cpu = worker_runs(codec, 1, "cpu", n, window)
        one.append(n / secs)
        one_cpu.append(cpu / n)
        secs, cpu = worker_runs(codec, 2, "cpu", n, window)
        two.append(n / secs)
        two_cpu.append(cpu / n)
        r = inproc("cpu", n, window, tuned=True)
        ip.append(n / r["secs"])
        ip_cpu.append(r["cpu"] / n)
    # Best of rounds: on a shared 2-core machine the best round is the least disturbed one.
    o, t, i = max(one), max(two), max(ip)
    oc, tc, ic = min(one_cpu), min(two_cpu), min(ip_cpu)
    L.table(
        f"CPU-bound 'cpu' runs ({n} runs, {window} in flight), best of {rounds}",
        ["how", "runs/s", "x one worker", "x in-process", "CPU per run", "target"],
        [
            ["in-process, tuned GC", f"{i:.0f}", f"{i / o:.2f}", "1.00", L.ms(ic), ""],
            ["one worker", f"{o:.0f}", "1.00", f"{o / i:.2f}", L.ms(oc), ""],
            [
                "pool of 2 workers",
                f"{t:.0f}",
                f"{t / o:.2f}",
                f"{t / i:.2f}",
                L.ms(tc),
                f">= 1.8x one worker: {L.verdict(t >= 1.8 * o)}",
            ],
        ],
    )
    sp = max(spin)
    print(
        f"baseline: 2 spinning processes vs 1 on this machine now: {sp:.2f}x (ideal 2.00);"
        f" pool scaling relative to it: {t / o / sp:.0%}"
    )
    print(
        "runs/s each round: one "
        + ", ".join(f"{x:.0f}" for x in one)
        + "; pool "
        + ", ".join(f"{x:.0f}" for x in two)
    )


COLD = """
import time
t0 = time.perf_counter()
from pydantic_ai import Agent
from pydantic_ai.models.test import TestModel
r = Agent(TestModel()).run_sync("hi")
print(time.perf_counter() - t0)
"""


def bench_first_run(codec: str, rounds: int) -> None:
    c = get_codec(codec)
    req = L.frame(c.encode({"op": "run", "id": 1, "prompt": "hi", "spec": {"model": "test"}}))
    cold_in, cold_wall, after_ready, spawn_to = [], [], [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        out = subprocess.run([L.PY, "-c", COLD], check=True, capture_output=True, text=True)
        cold_wall.append(time.perf_counter() - t0)
        cold_in.append(float(out.stdout))
        p, _ = L.spawn_worker(codec)
        t1 = time.perf_counter()
        p.send(req)
        reply: dict[str, Any] = c.decode(p.recv_payload())
        t2 = time.perf_counter()
        assert reply["type"] == "result", reply
        after_ready.append(t2 - t1)
        spawn_to.append(t2 - p.started)
        p.close()
    ci, cw = L.median(cold_in), L.median(cold_wall)
    ar, st = L.median(after_ready), L.median(spawn_to)
    L.table(
        f"first run (TestModel spec), median of {rounds}",
        ["what", "time", "x cold import + first run", "target"],
        [
            ["in-process: import pydantic_ai + first run", L.ms(ci), "1.00", ""],
            ["in-process: whole process (spawn .. exit)", L.ms(cw), f"{cw / ci:.2f}", ""],
            [
                "worker: ready -> first result",
                L.ms(ar),
                f"{ar / ci:.2f}",
                f"<= cold import + first run: {L.verdict(ar <= ci)}",
            ],
            ["worker: spawn -> first result", L.ms(st), f"{st / ci:.2f}", ""],
        ],
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--codec", default="etf", choices=("etf", "msgpack"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=1000, help="concurrent sleepy runs")
    ap.add_argument("--cpu-runs", type=int, default=1000, help="CPU-bound runs per measurement")
    ap.add_argument("--cpu-window", type=int, default=64)
    ap.add_argument("--skip", default="", help="comma list: concurrent,pool,first")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    print(
        f"# bench_agents: codec {args.codec}, {os.cpu_count()} cpus, unpinned,"
        f" loadavg {os.getloadavg()[0]:.2f} at start"
    )
    if "concurrent" not in skip:
        bench_concurrent(args.codec, args.rounds, args.runs)
    if "pool" not in skip:
        bench_pool(args.codec, args.rounds, args.cpu_runs, args.cpu_window)
    if "first" not in skip:
        bench_first_run(args.codec, max(3, args.rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
