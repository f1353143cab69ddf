"""bench/run_overhead.py runs end to end, plain and by layer (no timing is asserted)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run_overhead.py"), "--runs", "3", "--rounds", "2",
         *args],
        env={**os.environ, "PYTHONPATH": str(ROOT / "bench")},
        capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.timeout(300)
def test_worker_cost_and_its_layers_are_printed() -> None:
    plain = _run()
    assert re.search(r"worker cost .* \(\d\.\d+x in-process", plain)
    layers = _rows(_run("--layers"))
    assert [name for name, _, _ in layers] == LAYERS
    assert all(float(us) > 0 for _, us, _ in layers)
    assert layers[0][2] == "1.000"


def test_layers_with_history_add_the_copy_rows() -> None:
    rows = _rows(_run("--layers", "--history", "10"))
    assert [name for name, _, _ in rows] == [
        LAYERS[0],
        "  over fresh copies (copy not counted)",
        "  + copying them",
        *LAYERS[1:],
    ]


def _rows(out: str) -> list[tuple[str, str, str]]:
    return re.findall(r"^  (.+?)\s+(\d+\.\d) us \[.*\]\s+(\d\.\d+)x$", out, re.M)


LAYERS = [
    "agent.run (in-process)",
    "iter() node by node",
    "  + dump messages, usage",
    "AgentService.run",
    "  + encode result frame",
    "  + in a task of its own",
    "  + decode request",
    "worker (whole path)",
]


def test_layers_refuse_streams() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run_overhead.py"), "--layers", "--stream"],
        env={**os.environ, "PYTHONPATH": str(ROOT / "bench")},
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 2 and "--layers measures runs, not streams" in proc.stderr
