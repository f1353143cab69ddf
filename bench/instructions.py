"""Instructions per run, counted: the real worker (a subprocess fed by a pipe) against
the same runs in-process, under valgrind's callgrind.

Timings on this machine drift by up to ~1.5x within minutes; instruction counts do
not. Each side runs K1 and K2 sequential ``cpu`` runs (``bench_models``) in a fresh
process, and a run's cost is ``(Ir(K2) - Ir(K1)) / (K2 - K1)``: start-up, imports and
warm-up cancel out. The worker side is ``python -m axon_port`` started as a port
would, each run one ETF request frame on its stdin and answered on its stdout (the
driver here is not counted); the in-process side is ``bench/inproc.py seq --tuned``
(uvloop, the worker's GC settings), the Elixir bench's own baseline.

    python bench/instructions.py [--runs 100,300] [--history L] [--by-function 40]

Counts user-space instructions only: the kernel's part of the pipe (~2 % of the
worker's CPU, perf) and the cost of waking up are not in them, nor is how fast the
instructions run (cache misses after a context switch). ``--by-function`` prints the
functions whose own cost differs most between the two sides (C functions: the
interpreter, pydantic-core, uvloop, the codec; Python code shows up as the
interpreter's eval loop).
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _lib import BENCH, PY, Proc, env_with_path, frame

from axon_port.codecs import get_codec

_TOTAL = re.compile(r"^summary:\s+(\d+)", re.M)
_LINE = re.compile(r"^\s*([\d,]+)\s+\([^)]*\)\s+(.*)$")


def _callgrind(out: Path) -> list[str]:
    return ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "-q"]


def _worker(runs: int, history: int, out: Path) -> None:
    codec = get_codec("etf")
    extra = {}
    if history:
        import asyncio

        from inproc import salted_wire_history

        extra["history"] = asyncio.run(salted_wire_history(history, "instr"))
    # No idle spin: its polling while this driver prepares the next request is not
    # the worker's work per run (and under valgrind its length would vary).
    argv = [*_callgrind(out), PY, "-m", "axon_port", "--module", "bench_models", "--no-warm"]
    argv += ["--idle-spin-us", "0"]
    with Proc(argv) as p:
        ready = codec.decode(p.recv_payload())
        assert str(ready["type"]) == "ready", ready
        for i in range(runs + 1):  # one warm-up run
            req = {"op": "run", "id": i + 1, "agent": "cpu", "prompt": "hi", **extra}
            p.send(frame(codec.encode_frame(req)))
            while True:
                reply = codec.decode(p.recv_payload())
                kind = str(reply["type"])
                if kind in ("result", "error"):
                    assert kind == "result", reply
                    break


def _inproc(runs: int, history: int, out: Path) -> None:
    mode = ["history", "--history", str(history)] if history else ["seq"]
    argv = [*_callgrind(out), PY, str(BENCH / "inproc.py"), *mode, "--tuned", "--n", str(runs)]
    subprocess.run(argv, check=True, env=env_with_path(), cwd=BENCH, stdout=subprocess.DEVNULL)


def _total(out: Path) -> int:
    m = _TOTAL.search(out.read_text())
    if m is None:
        raise RuntimeError(f"no total in {out}")
    return int(m.group(1))


def _by_function(out: Path) -> collections.Counter[str]:
    text = subprocess.run(
        ["callgrind_annotate", "--auto=no", "--threshold=100", str(out)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    costs: collections.Counter[str] = collections.Counter()
    for line in text.splitlines():
        m = _LINE.match(line)
        if m and "PROGRAM TOTALS" not in line:
            name = m.group(2).split(" [")[0]
            name = re.sub(r"'\d+$", "", name.rsplit(":", 1)[-1])
            costs[name] += int(m.group(1).replace(",", ""))
    return costs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", default="100,300", help="K1,K2 (default 100,300)")
    ap.add_argument("--history", type=int, default=0, help="history messages per run")
    ap.add_argument("--by-function", type=int, default=0, metavar="N")
    ap.add_argument("--keep", metavar="DIR", help="keep the callgrind files in DIR")
    ap.add_argument("--reuse", action="store_true", help="with --keep: read the files there")
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        print("instructions.py needs valgrind (apt-get install valgrind)", file=sys.stderr)
        return 2
    # Hash randomisation changes dict and set layouts, and the counts with them by up to
    # ~80,000 instructions a run between processes: one seed for every process.
    os.environ.setdefault("PYTHONHASHSEED", "0")
    k1, k2 = (int(x) for x in args.runs.split(","))
    if not 0 < k1 < k2:
        ap.error("--runs K1,K2 with 0 < K1 < K2")
    tmp = Path(args.keep or tempfile.mkdtemp(prefix="axon_instr_"))
    tmp.mkdir(parents=True, exist_ok=True)
    jobs = {
        (side, k): tmp / f"callgrind.{side}.{k}"
        for side in ("worker", "in-process")
        for k in (k1, k2)
    }
    with ThreadPoolExecutor(max(1, min(4, os.cpu_count() or 1))) as pool:
        futures = [
            pool.submit(_worker if side == "worker" else _inproc, k, args.history, out)
            for (side, k), out in jobs.items()
            if not (args.reuse and out.exists())
        ]
        for f in futures:
            f.result()
    per_run = {
        side: (_total(jobs[side, k2]) - _total(jobs[side, k1])) / (k2 - k1)
        for side in ("worker", "in-process")
    }
    w, i = per_run["worker"], per_run["in-process"]
    print(f"instructions per 'cpu' run, history {args.history} (callgrind, runs {k1} vs {k2}):")
    print(f"  in-process tuned  {i:12,.0f}")
    print(f"  worker            {w:12,.0f}")
    print(f"  worker - in-proc  {w - i:12,.0f}   ({w / i:.3f}x in-process)")
    if args.by_function:
        cost = {key: _by_function(out) for key, out in jobs.items()}
        names = set().union(*cost.values())
        rows = []
        for name in names:
            dw = (cost["worker", k2][name] - cost["worker", k1][name]) / (k2 - k1)
            di = (cost["in-process", k2][name] - cost["in-process", k1][name]) / (k2 - k1)
            rows.append((dw - di, dw, di, name))
        rows.sort(key=lambda r: -abs(r[0]))
        head = f"{'worker - in-proc':>16} {'worker':>10} {'in-proc':>10}"
        print(f"\n{head}  function (own cost per run)")
        for d, dw, di, name in rows[: args.by_function]:
            print(f"{d:16,.0f} {dw:10,.0f} {di:10,.0f}  {name[:90]}")
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
