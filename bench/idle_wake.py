"""What blocking between runs costs the next run, in-process: the same ``agent.run``
with nothing, a sleep or a spin of the same length before each one, interleaved.

A worker that blocks while its client prepares the next request (a sleep here) wakes
on a CPU that may have been halted and its caches handed to others; one that polls
meanwhile (a spin) does not. ``spin`` polls the clock only, ``yield`` calls ``sched_yield``
each turn as the worker's idle spin does. This measures that effect without any port, pipe or BEAM:
the CPU time of the runs alone (the gaps are not counted), uvloop and the worker's GC
settings, as ``inproc.py --tuned``. It is why the worker has ``--idle-spin-us``.

    taskset -c 1 python bench/idle_wake.py [--rounds 10] [--runs 100] [--gaps 50,200]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))

import bench_models


async def main(args: argparse.Namespace) -> None:
    agent = bench_models.AGENTS["cpu"]
    for _ in range(50):
        await agent.run("hi")
    gc.collect()
    gc.freeze()
    gaps = [int(g) for g in args.gaps.split(",")]
    # (name, how the gap is spent, its length in seconds)
    modes = [("none", "none", 0.0)]
    for how in ("sleep", "spin", "yield"):
        modes += [(f"{how} {g} us", how, g / 1e6) for g in gaps]
    cpu: dict[str, list[float]] = {name: [] for name, _, _ in modes}
    for _ in range(args.rounds):
        for name, how, gap in modes:
            total = 0.0
            for _ in range(args.runs):
                if how == "sleep":
                    time.sleep(gap)
                elif how != "none":
                    end = time.perf_counter() + gap
                    while time.perf_counter() < end:
                        if how == "yield":
                            # the worker's idle spin: a syscall per turn (sched_yield;
                            # the loop's own epoll_wait(0) is a second one there)
                            os.sched_yield()
                t0 = time.thread_time()
                await agent.run("hi")
                total += time.thread_time() - t0
            cpu[name].append(total / args.runs * 1e6)
    base = statistics.median(cpu["none"])
    print(f"CPU per 'cpu' run (the run alone), {args.runs} x {args.rounds} rounds interleaved:")
    for name, xs in cpu.items():
        med = statistics.median(xs)
        span = f"[{min(xs):.0f}-{max(xs):.0f}]"
        print(f"  before each run: {name:14} {med:8.0f} us {span:14} {med / base:.2f}x")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--gaps", default="50,200", help="gap lengths in us (default 50,200)")
    gc.set_threshold(50_000, 20, 100)
    import uvloop

    uvloop.run(main(ap.parse_args()))
