"""Codec benchmark: encode+decode throughput of our codecs against baselines, in one run.

Prints a table for two payloads -- the small request map an Elixir client sends
(``%{op: :call, id: 123, function: "add", args: [1, 2], kwargs: %{}}``) and a
~100 KB nested payload (a message history) -- for ours-etf with its C accelerator,
ours-etf in pure Python, ours-msgpack, raw msgpack (C) and erlang-py, plus the
ratios TARGETS.md asks for. Each round trip decodes the wire bytes and encodes
the decoded value again. Without the accelerator built (or with
``AXON_PORT_PURE_PYTHON=1``) the C row is left out and the target is checked
against pure Python.

Usage: ``python bench/bench_codecs.py [--seconds 0.5] [--rounds 5]`` (best of rounds).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import erlang  # erlang-py
import msgpack

from axon_port.codecs._etf import SPEEDUPS_AVAILABLE, EtfCodec
from axon_port.codecs._msgpack import MsgpackCodec

# What Elixir 1.14 / OTP 25 sends for the small request map (term_to_binary, default options).
SMALL_ETF = bytes.fromhex(
    "83740000000564000461726773"
    "6b000201026400086675"
    "6e6374696f6e6d00000003616464640002696461"
    "7b6400066b776172677374000000006400026f70"
    "640004"
    "63616c6c"
)


def big_value() -> dict[str, Any]:
    """A ~100 KB message history: nested maps, lists, text, ints, floats, bools."""
    messages = []
    for i in range(120):
        messages.append(
            {
                "kind": "request" if i % 2 == 0 else "response",
                "parts": [
                    {
                        "part_kind": "text",
                        "content": f"message {i}: " + "lorem ipsum dolor sit amet " * 20,
                        "timestamp": 1_700_000_000.0 + i,
                    },
                    {
                        "part_kind": "tool-call",
                        "tool_name": "lookup",
                        "args": {"query": f"q{i}", "limit": 10, "exact": False},
                        "tool_call_id": f"call_{i:06d}",
                    },
                ],
                "usage": {"input_tokens": 1000 + i, "output_tokens": 200, "requests": 1},
                "model_name": "test",
                "ids": list(range(i % 12)),
                "meta": None,
            }
        )
    return {"type": "result", "id": 42, "output": "done", "messages": messages}


def rate(fn: Callable[[], object], seconds: float, rounds: int) -> float:
    """Best-of-``rounds`` calls per second of ``fn``."""
    best = 0.0
    n = 1
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 0.05:  # calibrate
        fn()
        n += 1
    per_round = max(1, int(n * seconds / 0.05))
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(per_round):
            fn()
        best = max(best, per_round / (time.perf_counter() - t0))
    return best


def contenders(etf_bytes: bytes) -> dict[str, Callable[[], object]]:
    """Round-trip closures (decode wire bytes, encode the value) for each codec."""
    py, mp = EtfCodec(speedups=False), MsgpackCodec()
    value = py.decode(etf_bytes)
    mp_bytes = mp.encode(value)
    erl_value = erlang.binary_to_term(etf_bytes)
    assert py.decode(py.encode(value)) == value
    out: dict[str, Callable[[], object]] = {}
    if SPEEDUPS_AVAILABLE:
        c = EtfCodec(speedups=True)
        assert c.encode(value) == py.encode(value) and c.decode(etf_bytes) == value
        out["ours-etf (C)"] = lambda: c.encode(c.decode(etf_bytes))
    out["ours-etf (Python)"] = lambda: py.encode(py.decode(etf_bytes))
    out["ours-msgpack"] = lambda: mp.encode(mp.decode(mp_bytes))
    out["msgpack raw C"] = lambda: msgpack.packb(msgpack.unpackb(mp_bytes))
    out["erlang-py"] = lambda: (erlang.term_to_binary(erlang.binary_to_term(etf_bytes)), erl_value)
    return out


def main() -> None:
    """Run both payloads and print the table."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=0.5, help="time per round")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    big_etf = EtfCodec().encode(big_value())
    cases = [("small request map", SMALL_ETF, False), ("~100 KB nested payload", big_etf, True)]
    w = 18
    print(f"{'payload':<24} {'codec':<{w}} {'enc+dec':>16} {'vs erlang-py':>13}")
    for label, wire, mbs in cases:
        results = {k: rate(f, args.seconds, args.rounds) for k, f in contenders(wire).items()}
        base = results["erlang-py"]
        for name, ops in results.items():
            shown = f"{ops * len(wire) / 1e6:9.1f} MB/s" if mbs else f"{ops:9.0f} ops/s"
            print(f"{label:<24} {name:<{w}} {shown:>16} {ops / base:12.2f}x")
        target = 5.0 if mbs else 4.0
        for name in results:
            if name.startswith("ours-etf"):
                ratio = results[name] / base
                verdict = "OK" if ratio >= target else "BELOW TARGET"
                goal = f"(target >= {target}x): {verdict}"
                print(f"{label:<24} {name} / erlang-py = {ratio:.2f}x {goal}")
        if "ours-etf (C)" in results:
            speedup = results["ours-etf (C)"] / results["ours-etf (Python)"]
            print(f"{label:<24} C accelerator = {speedup:.1f}x pure Python")
        print(f"{'':<24} ({len(wire)} bytes ETF)")
    if not SPEEDUPS_AVAILABLE:
        print("(the ETF C accelerator is not built or is disabled: pure Python only)")


if __name__ == "__main__":
    main()
