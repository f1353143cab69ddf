"""The Elixir-driven bench runs end to end in quick mode (no timing is asserted)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("mix") is None, reason="needs Elixir (mix)")


@pytest.mark.timeout(600)
def test_quick_bench_runs_and_renders_tables(tmp_path: Path) -> None:
    out = tmp_path / "elixir.json"
    proc = subprocess.run(
        ["mix", "run", "../bench/elixir/bench.exs", "--quick",
         "--only", "seq,history,streams,calls", "--out", str(out)],
        cwd=ROOT / "mix_fixture",
        env={**os.environ, "MIX_ENV": "bench"},
        capture_output=True,
        text=True,
        timeout=540,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "AxonPort.Worker" in proc.stdout
    data = json.loads(out.read_text())
    calls = data["results"].pop("calls")
    assert [sec["placement"] for sec in calls["client_hop"]] == ["same-core", "cross-core"]
    assert [r["name"] for r in calls["client_hop"][0]["rows"]] == [
        "bare Port", "relay floor", "AxonPort.call", "GenServer path"]  # fmt: skip
    measured = [r for sec in calls["client_hop"] + calls["round_trips"] for r in sec["rows"]]
    assert measured and all(r["p50_us"] > 0 and r["p99_us"] >= r["p50_us"] for r in measured)
    assert {c["placement"] for c in calls["callers"]} == {"same-core", "cross-core", "two-cores"}
    names = {r["name"] for rows in data["results"].values() for r in rows}
    assert {"in-process tuned", "AxonPort.Worker", "bare Port (no client)",
            "  of which BEAM turn-around", "L=100 worker, cache hit"} <= names  # fmt: skip
    for rows in data["results"].values():
        for r in rows:
            assert r["min"] <= r["median"] <= r["max"] and r["median"] > 0
    docs = tmp_path / "performance.md"
    docs.write_text("# P\n\n<!-- bench:begin -->\nold\n<!-- bench:end -->\n\ntail\n")
    pytest.importorskip("matplotlib")
    subprocess.run(
        [sys.executable, str(ROOT / "bench/charts.py"), str(out), "--docs", str(docs)], check=True
    )
    text = docs.read_text()
    assert "old" not in text and text.endswith("tail\n") and "Sequential runs" in text
    assert (tmp_path / "performance" / "runs.png").stat().st_size > 1000
    assert "**The client hop**" in text and "**Port round trips**" in text
    assert (tmp_path / "performance" / "latency.png").stat().st_size > 1000
