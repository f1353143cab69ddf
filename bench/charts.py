"""Charts and tables from the Elixir-driven bench's JSON (``bench/run_elixir.sh``).

    python bench/charts.py bench/results/elixir.json [--docs docs/performance.md]

Writes PNGs next to the docs page (``docs/performance/*.png``) and replaces the
part of the page between ``<!-- bench:begin -->`` and ``<!-- bench:end -->`` with
the tables of that run (medians [min-max] and ratios to the in-run baselines).
The ``calls`` section (latency vs raw echo, the client hop) is
``bench/port_latency.exs``'s figures, run by the bench and kept in the same JSON.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def rows(results: dict[str, Any], section: str) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in results.get(section, [])}


def fmt(x: float, kind: str) -> str:
    if kind == "time":
        return f"{x * 1000:.3f} ms" if x < 0.01 else f"{x * 1000:.1f} ms"
    return f"{x:,.0f}/s"


def table(title: str, rs: dict[str, dict[str, Any]], base: str, kind: str) -> list[str]:
    if base not in rs:
        return []
    b = rs[base]["median"]
    out = [f"**{title}**", "", f"| how | median [min-max] | x {base} |", "| --- | --- | --- |"]
    for name, r in rs.items():
        span = f"{fmt(r['median'], kind)} [{fmt(r['min'], kind)}-{fmt(r['max'], kind)}]"
        out.append(f"| {name} | {span} | {r['median'] / b:.2f} |")
    return [*out, ""]


def tables(data: dict[str, Any]) -> str:
    res, meta = data["results"], data["meta"]
    lines = [
        f"Run {meta['date']}: {meta['rounds']} round(s){' (quick)' if meta['quick'] else ''}, "
        f"{meta['cores']} cores, loadavg {meta['loadavg']} at the end.",
        "",
    ]
    lines += table("Sequential runs (per run)", rows(res, "seq"), "in-process tuned", "time")
    lines += table(
        "1000 concurrent 100 ms runs (wall)", rows(res, "concurrent"), "in-process tuned", "time"
    )
    hist = rows(res, "history")
    for length in sorted({int(re.match(r"L=(\d+)", n).group(1)) for n in hist}):  # type: ignore[union-attr]
        sub = {n: r for n, r in hist.items() if n.startswith(f"L={length} ")}
        lines += table(
            f"History of {length} messages (per run)", sub, f"L={length} in-process tuned", "time"
        )
    st = rows(res, "streams")
    for n in sorted({int(re.match(r"N=(\d+)", k).group(1)) for k in st}):  # type: ignore[union-attr]
        sub = {k: r for k, r in st.items() if k.startswith(f"N={n} ")}
        lines += table(f"{n} concurrent streams (deltas/s)", sub, f"N={n} in-process tuned", "rate")
    pool = rows(res, "pool")
    if pool:
        one, spin1 = pool["pool of 1"]["median"], pool["spin: 1 process"]["median"]
        lines += [
            "**Pool scaling** (runs/s, 64 in flight, unpinned)",
            "",
            "| workers | runs/s median [min-max] | x one worker | busy-process ceiling | share |",
            "| --- | --- | --- | --- | --- |",
        ]
        k = 1
        while f"pool of {k}" in pool:
            r = pool[f"pool of {k}"]
            spin = pool["spin: 1 process" if k == 1 else f"spin: {k} processes"]["median"]
            ratio, ceiling = r["median"] / one, spin / spin1
            lines.append(
                f"| {k} | {r['median']:.0f} [{r['min']:.0f}-{r['max']:.0f}] | {ratio:.2f} "
                f"| {ceiling:.2f} | {ratio / ceiling:.0%} |"
            )
            k += 1
        lines.append("")
    lines += call_tables(res.get("calls"))
    return "\n".join(lines)


def _round_trips(sec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """One placement's round-trip rows over `:nouse_stdio`, by (op, process)."""
    return {(r["op"], r["process"]): r for r in sec["rows"] if r["mode"] == "nouse_stdio"}


def call_tables(calls: dict[str, Any] | None) -> list[str]:
    """The ``calls`` section's tables: round trips vs raw echo, the client hop, 64 callers."""
    calls = calls or {}

    def us(r: dict[str, Any]) -> str:
        return f"{r['p50_us']:.1f} / {r['p99_us']:.1f} µs"

    trips = []
    for sec in calls.get("round_trips", []):
        by = _round_trips(sec)
        for op in ("ping", "call"):
            raw, w = by[(op, "raw")], by[(op, "worker")]
            trips.append([sec["placement"], op, us(raw), us(w), f"{w['x_raw']:.2f}"])
    hops = [[sec["placement"], *(f"{us(r)} ({r['x_bare']:.2f}x)" for r in sec["rows"])]
            for sec in calls.get("client_hop", [])]  # fmt: skip
    callers = [[r["placement"], f"{r['raw']:,.0f}/s", f"{r['worker']:,.0f}/s",
                f"{r['worker'] / r['raw']:.2f}"] for r in calls.get("callers", [])]  # fmt: skip
    tables = [
        ("**Port round trips** (sequential, `:nouse_stdio`, p50 / p99)",
         ["placement", "op", "raw echo", "worker", "worker x raw (p50)"], trips),
        ("**The client hop** (`call add(1, 2)`, p50 / p99, interleaved)",
         ["placement", "bare Port", "relay floor", "`AxonPort.call`", "GenServer path"], hops),
        ("**64 concurrent callers** (`call add(1, 2)` through one router process)",
         ["placement", "raw echo", "worker", "worker x raw"], callers),
    ]  # fmt: skip
    lines: list[str] = []
    for title, columns, cells in tables:
        if cells:
            lines += [title, "", "| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
            lines += ["| " + " | ".join(row) + " |" for row in cells] + [""]
    return lines


def charts(data: dict[str, Any], outdir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = data["results"]
    written: list[str] = []
    outdir.mkdir(parents=True, exist_ok=True)

    def bar(name: str, title: str, rs: dict[str, dict[str, Any]], base: str, ylabel: str) -> None:
        if base not in rs:
            return
        b = rs[base]["median"]
        names = list(rs)
        fig, ax = plt.subplots(figsize=(7, 3.2))
        ax.barh(names, [rs[n]["median"] / b for n in names], color="#4a7ab5")
        ax.axvline(1.0, color="k", lw=0.8)
        ax.set_xlabel(ylabel)
        ax.set_title(title)
        fig.tight_layout()
        fig.savefig(outdir / name, dpi=110)
        plt.close(fig)
        written.append(name)

    bar("runs.png", "Sequential runs: time per run", rows(res, "seq"), "in-process tuned",
        "x in-process tuned (lower is better)")  # fmt: skip
    bar("concurrent.png", "1000 concurrent 100 ms runs: wall", rows(res, "concurrent"),
        "in-process tuned", "x in-process tuned (lower is better)")  # fmt: skip
    hist = rows(res, "history")
    if hist:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for label, suffix in (("in-process tuned", "in-process tuned"),
                              ("worker, cache hit", "worker, cache hit"),
                              ("worker, cache hit, AxonPort.History",
                               "worker, cache hit, AxonPort.History"),
                              ("worker, cache miss", "worker, cache miss")):  # fmt: skip
            pts = sorted(
                (int(n.split()[0][2:]), r["median"] * 1000)
                for n, r in hist.items()
                if n.endswith(suffix)
            )
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
        ax.set_xscale("symlog", linthresh=10)
        ax.set_xlabel("history messages")
        ax.set_ylabel("ms per run")
        ax.set_title("Cost vs history length")
        ax.legend()
        fig.tight_layout()
        fig.savefig(outdir / "history.png", dpi=110)
        plt.close(fig)
        written.append("history.png")
    st = rows(res, "streams")
    if st:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for suffix in ("in-process tuned", "in-process default", "AxonPort.Worker"):
            pts = sorted((int(n.split()[0][2:]), r["median"]) for n, r in st.items()
                         if n.endswith(suffix))  # fmt: skip
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=suffix)
        ax.set_xscale("log")
        ax.set_xlabel("concurrent streams")
        ax.set_ylabel("text deltas/s")
        ax.set_title("Streams")
        ax.legend()
        fig.tight_layout()
        fig.savefig(outdir / "streams.png", dpi=110)
        plt.close(fig)
        written.append("streams.png")
    pool = rows(res, "pool")
    if pool:
        ks, got, ceil = [], [], []
        k = 1
        while f"pool of {k}" in pool:
            ks.append(k)
            got.append(pool[f"pool of {k}"]["median"] / pool["pool of 1"]["median"])
            spin = pool["spin: 1 process" if k == 1 else f"spin: {k} processes"]["median"]
            ceil.append(spin / pool["spin: 1 process"]["median"])
            k += 1
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.plot(ks, got, marker="o", label="pool (x one worker)")
        ax.plot(ks, ceil, marker="s", ls="--", label="busy processes (ceiling)")
        ax.set_xticks(ks)
        ax.set_xlabel("workers / processes")
        ax.set_ylabel("speed-up")
        ax.set_title("Pool scaling")
        ax.legend()
        fig.tight_layout()
        fig.savefig(outdir / "pool.png", dpi=110)
        plt.close(fig)
        written.append("pool.png")
    calls = res.get("calls") or {}
    if calls.get("round_trips") and calls.get("client_hop"):
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
        placements = [sec["placement"] for sec in calls["round_trips"]]
        trips = [_round_trips(sec) for sec in calls["round_trips"]]
        series = [("raw echo", "ping", "raw"), ("worker", "ping", "worker"),
                  ("raw echo", "call", "raw"), ("worker", "call", "worker")]  # fmt: skip
        width = 0.8 / len(series)
        for i, (who, op, process) in enumerate(series):
            p50s = [by[(op, process)]["p50_us"] for by in trips]
            xs = [j + (i - 1.5) * width for j in range(len(placements))]
            left.bar(xs, p50s, width, label=f"{op}, {who}")
        left.set_xticks(range(len(placements)), placements)
        left.set_ylabel("p50 µs (lower is better)")
        left.set_title("Port round trips vs raw echo")
        left.legend(fontsize=8)
        names = [r["name"] for r in calls["client_hop"][0]["rows"]]
        width = 0.8 / len(names)
        for i, name in enumerate(names):
            xs, ys = [], []
            for j, sec in enumerate(calls["client_hop"]):
                row = next(r for r in sec["rows"] if r["name"] == name)
                xs.append(j + (i - (len(names) - 1) / 2) * width)
                ys.append(row["x_bare"])
            right.bar(xs, ys, width, label=name)
        right.axhline(1.15, color="k", lw=0.8, ls="--", label="target 1.15x")
        right.set_xticks(range(len(calls["client_hop"])),
                         [sec["placement"] for sec in calls["client_hop"]])  # fmt: skip
        right.set_ylabel("p50 x bare Port")
        right.set_ylim(
            0, max(1.6, *(r["x_bare"] * 1.1 for s in calls["client_hop"] for r in s["rows"]))
        )
        right.set_title("call add(1, 2): the client hop")
        right.legend(fontsize=8, ncol=3, loc="upper center")
        fig.tight_layout()
        fig.savefig(outdir / "latency.png", dpi=110)
        plt.close(fig)
        written.append("latency.png")
    return written


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json")
    ap.add_argument("--docs", default=str(Path(__file__).parent.parent / "docs/performance.md"))
    a = ap.parse_args()
    data = json.loads(Path(a.json).read_text())
    docs = Path(a.docs)
    written = charts(data, docs.parent / "performance")
    text = docs.read_text() if docs.exists() else f"# Performance\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text:
        text += f"\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1] if END in rest else ""
    text = f"{head}{BEGIN}\n{tables(data)}\n{END}{tail}"
    docs.write_text(text)
    print(f"updated {docs}; charts: {', '.join(written)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
