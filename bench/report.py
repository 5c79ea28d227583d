"""Markdown tables of the result files in bench/results/, for docs/benchmarks.md.

    bench/report.py [--results DIR] > /tmp/tables.md

Every table comes from one result file (one run); ratios compare entries of the same file.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402


def us(value: float) -> str:
    return common.fmt_us(value).replace(" us", " µs")


def header(result: dict) -> str:
    m = result["machine"]
    return (f"_{result['workload']}: {result.get('mode', '?')} run of {result.get('date', '?')}, "
            f"{m.get('cpus')} CPUs, load {m.get('loadavg_1m', '?')}, "
            f"{result.get('seconds', '?')} s._\n")


def cpu_table(result: dict, cases: list, transports: list, quiver: str, json_peer: str) -> list:
    """CPU seconds per GB moved (every process of the transport), one row per case: `cases`
    is a list of (label, fields matching its entries)."""
    out = ["", "CPU seconds (user + system, every process of the transport) per GB moved:", "",
           "| case | " + " | ".join(transports) + f" | {json_peer} ÷ {quiver} | "
           f"{quiver} ÷ memcpy |", "|---|" + "---:|" * (len(transports) + 2)]
    for label, match in cases:
        es = {t: common.entry(result["results"], transport=t, **match) for t in transports}
        cells = [f"{es[t]['cpu_s_per_gb']:.3g}" if es[t] and "cpu_s_per_gb" in es[t] else "n/a"
                 for t in transports]
        lower = common.ratio(es.get(json_peer), es.get(quiver), "cpu_s_per_gb")
        over = common.ratio(es.get(quiver), es.get("memcpy"), "cpu_s_per_gb")
        out.append(f"| {label} | " + " | ".join(cells)
                   + f" | {common.fmt_ratio(lower)} | {common.fmt_ratio(over)} |")
    return out


def w1(result: dict) -> str:
    rows = result["params"]["rows"]
    transports = ["quiver", "arrow-ipc-pipe", "flight-loopback", "msgspec-pipe", "json-stdio",
                  "memcpy", "memcpy-cold"]
    publish = ["quiver-publish-warm", "quiver-publish-after-idle"]
    out = [header(result), "| rows | MB | " + " | ".join(transports) + " |",
           "|---:|---:|" + "---:|" * len(transports)]
    for n in rows:
        cells = []
        nbytes = None
        for t in transports:
            e = common.entry(result["results"], transport=t, rows=n)
            nbytes = nbytes or (e or {}).get("bytes")
            cells.append(us(e["median_us"]) if e else "n/a")
        out.append(f"| {n:,} | {(nbytes or 0) / 1e6:.1f} | " + " | ".join(cells) + " |")
    out += ["", "| rows | " + " | ".join(f"{t} ÷ quiver" for t in transports[1:5])
            + " | quiver ÷ memcpy | quiver ÷ memcpy-cold |", "|---:|" + "---:|" * 6]
    for n in rows:
        q = common.entry(result["results"], transport="quiver", rows=n)
        cells = [common.fmt_ratio(common.ratio(common.entry(result["results"], transport=t,
                                                             rows=n), q))
                 for t in transports[1:5]]
        for t in ("memcpy", "memcpy-cold"):
            cells.append(common.fmt_ratio(common.ratio(q, common.entry(
                result["results"], transport=t, rows=n))))
        out.append(f"| {n:,} | " + " | ".join(cells) + " |")
    out += ["", "`Publisher.publish(batch)` alone, in the producer, against the warm memcpy:", "",
            "| rows | memcpy | publish, back to back | after 50 ms idle | back to back ÷ memcpy "
            "| after idle ÷ memcpy |", "|---:|---:|---:|---:|---:|---:|"]
    for n in rows:
        m = common.entry(result["results"], transport="memcpy", rows=n)
        w, i = (common.entry(result["results"], transport=t, rows=n) for t in publish)
        if m and w and i:
            out.append(f"| {n:,} | {us(m['median_us'])} | {us(w['median_us'])} | "
                       f"{us(i['median_us'])} | {common.fmt_ratio(common.ratio(w, m))} | "
                       f"{common.fmt_ratio(common.ratio(i, m))} |")
    out += cpu_table(result, [(f"{n:,} rows", {"rows": n}) for n in rows],
                     transports, "quiver", "json-stdio")
    missing = [e for e in result["results"] if e.get("available") is False]
    for e in missing:
        out.append(f"\n{e['transport']} unavailable: {e['reason']}")
    return "\n".join(out) + "\n"


def w2(result: dict) -> str:
    transports = ["memcpy", "json-base64-stdio", "quiver", "quiver-loan"]
    out = [header(result), "| image | bytes | " + " | ".join(transports)
           + " | quiver ÷ memcpy | json ÷ quiver-loan |", "|---|---:|" + "---:|" * 6]
    for size in result["params"]["sizes"]:
        w, h = (int(x) for x in size.split("x"))
        es = [common.entry(result["results"], transport=t, width=w, height=h) for t in transports]
        cells = [f"{us(e['median_us'])} (p99 {us(e['p99_us'])})" if e else "n/a" for e in es]
        out.append(f"| {size} | {w * h * 4:,} | " + " | ".join(cells)
                   + f" | {common.fmt_ratio(common.ratio(es[2], es[0]))}"
                   + f" | {common.fmt_ratio(common.ratio(es[1], es[3]))} |")
    cases = []
    for size in result["params"]["sizes"]:
        w, h = (int(x) for x in size.split("x"))
        cases.append((size, {"width": w, "height": h}))
    out += cpu_table(result, cases, transports, "quiver", "json-base64-stdio")
    return "\n".join(out) + "\n"


def w3(result: dict) -> str:
    out = [header(result)]
    sizes = sorted({e["payload_bytes"] for e in result["results"] if "payload_bytes" in e})

    def get(t, size, side, placement):
        return common.entry(result["results"], transport=t, payload_bytes=size, side=side,
                            placement=placement)

    for side, placement, transports in (
            ("cpp", "apart", ["futex", "spin", "uds", "pipe", "quiver-blocking",
                              "iceoryx2-blocking", "quiver-default", "quiver-spin",
                              "iceoryx2-spin", "quiver-spin-own-method",
                              "iceoryx2-spin-own-method"]),
            ("cpp", "together", ["futex", "uds", "pipe", "quiver-blocking", "quiver-default"]),
            ("cpp", "sched", ["futex", "uds", "pipe", "quiver-blocking", "iceoryx2-blocking",
                              "quiver-default"]),
            ("python", "apart", ["py-quiver-blocking", "py-iceoryx2-blocking", "py-quiver-spin",
                                 "py-iceoryx2-spin", "py-quiver-default", "py-uds", "py-pipe"]),
            ("python", "sched", ["py-quiver-blocking", "py-iceoryx2-blocking", "py-quiver-spin",
                                 "py-iceoryx2-spin", "py-uds", "py-pipe"])):
        if not any(get(t, s, side, placement) for t in transports for s in sizes):
            continue
        title = ("Native (C++ ↔ C++; iceoryx2-*: Rust ↔ Rust)" if side == "cpp"
                 else "Python ↔ Python")
        out += [f"\n**{title}, {placement}** — one-way p50 / p99.9 (µs)\n",
                "| payload | " + " | ".join(transports) + " |",
                "|---|" + "---:|" * len(transports)]
        for s in sizes:
            cells = []
            for t in transports:
                e = get(t, s, side, placement)
                cells.append(f"{e['median_us']:.2f} / {e['p999_us']:.1f}" if e else "–")
            out.append(f"| {common.size_name(s)} | " + " | ".join(cells) + " |")
    out += ["\n**Ratios of p50** (same run)\n",
            "| payload | C++ quiver-blocking ÷ futex (apart) | ÷ (futex + fill) | "
            "quiver-blocking ÷ iceoryx2-blocking (apart) | quiver-spin ÷ iceoryx2-spin (apart) | "
            "py-quiver-blocking ÷ py-iceoryx2-blocking (apart) | "
            "py-quiver-spin ÷ py-iceoryx2-spin (apart) |", "|---|---:|---:|---:|---:|---:|---:|"]
    fills = result.get("cpp_fill_p50_us", {})
    for s in sizes:
        q, f = get("quiver-blocking", s, "cpp", "apart"), get("futex", s, "cpp", "apart")
        fill = fills.get(str(s))
        with_fill = (f"{q['median_us'] / (f['median_us'] + fill):.2f}x"
                     if q and f and fill is not None else "n/a")
        nb = common.ratio(q, get("iceoryx2-blocking", s, "cpp", "apart"))
        ns = common.ratio(get("quiver-spin", s, "cpp", "apart"),
                          get("iceoryx2-spin", s, "cpp", "apart"))
        pb = common.ratio(get("py-quiver-blocking", s, "python", "apart"),
                          get("py-iceoryx2-blocking", s, "python", "apart"))
        ps = common.ratio(get("py-quiver-spin", s, "python", "apart"),
                          get("py-iceoryx2-spin", s, "python", "apart"))
        out.append(f"| {common.size_name(s)} | {common.fmt_ratio(common.ratio(q, f))} | {with_fill} | "
                   f"{common.fmt_ratio(nb)} | {common.fmt_ratio(ns)} | "
                   f"{common.fmt_ratio(pb)} | {common.fmt_ratio(ps)} |")
    idle = result.get("cpp_idle_receiver_cpu_pct") or {}
    if idle:
        out.append("\nIdle receiver (blocked in `Receive()`, no traffic): " + ", ".join(
            f"{t} {pct:.2f} % of a CPU" for t, pct in idle.items()))
    missing = {e["transport"]: e["reason"] for e in result["results"]
               if e.get("available") is False}
    for t, reason in missing.items():
        out.append(f"\n{t} unavailable: {reason}")
    return "\n".join(out) + "\n"


def w4(result: dict) -> str:
    out = [header(result), "| path | nodes/s (median) | best | time for "
           f"{result['params']['nodes']:,} | publish_arrow ÷ this |", "|---|---:|---:|---:|---:|"]
    arrow = common.entry(result["results"], transport="publish_arrow")
    for e in result["results"]:
        if not e.get("available", True):
            continue
        out.append(f"| `{e['transport']}` | {e['nodes_per_s'] / 1e6:.1f} M | "
                   f"{e['nodes_per_s_best'] / 1e6:.1f} M | {us(e['median_us'])} | "
                   f"{arrow['nodes_per_s'] / e['nodes_per_s']:.1f}x |")
    profile = [p for p in result.get("decode_profile", []) if p.get("available", True)]
    if profile:
        out += ["", "Decode profile (C++ only, 1M nodes in one process, "
                "`msgpack_records_benchmark`):", "", "| benchmark | nodes/s |", "|---|---:|"]
        out += [f"| {p['benchmark']} | {p['nodes_per_s'] / 1e6:.1f} M |" for p in profile]
    return "\n".join(out) + "\n"


def w5(result: dict) -> str:
    p = result["params"]
    out = [header(result),
           f"{p['batches']} batches of {p['rows_per_batch']:,} rows, "
           f"{p['bytes_per_run'] / 1e6:,.0f} MB of Arrow bodies per run; median (min–max) "
           f"of {p['runs']} runs.\n",
           "| network | quiver serve GB/s | pyarrow.flight GB/s | quiver ÷ pyarrow | "
           "end to end GB/s, quiver / pyarrow | CPU s per run: serve + producer + client | "
           "pyarrow server + client |", "|---|---:|---:|---:|---:|---:|---:|"]
    missing = {}
    for network in p["networks"]:
        q = common.entry(result["results"], transport="quiver-serve", network=network)
        a = common.entry(result["results"], transport="pyarrow-flight", network=network)
        for e in result["results"]:
            if e.get("network") == network and e.get("available") is False:
                missing[f"{e['transport']} ({network})"] = e["reason"]
        if q is None and a is None:
            continue

        def rate(e):
            return (f"{e['gbps']:.2f} ({e['gbps_worst']:.2f}–{e['gbps_best']:.2f})"
                    if e else "n/a")

        e2e = " / ".join(f"{e['e2e_gbps']:.2f}" if e else "n/a" for e in (q, a))
        qcpu = (f"{q['server_cpu_s']:.2f} + {q.get('producer_cpu_s', 0):.2f} + "
                f"{q.get('client_cpu_s', 0):.2f}" if q else "n/a")
        acpu = f"{a['server_cpu_s']:.2f} + {a.get('client_cpu_s', 0):.2f}" if a else "n/a"
        out.append(f"| {network} | {rate(q)} | {rate(a)} | "
                   f"{common.fmt_ratio(common.ratio(q, a, 'gbps'))} | {e2e} | {qcpu} | {acpu} |")
    for case, reason in missing.items():
        out.append(f"\n{case} unavailable: {reason}")
    return "\n".join(out) + "\n"


def w6(result: dict) -> str:
    transports = ["quiver", "json-stdio", "grpc"]
    out = [header(result), "| payload | bytes | " + " | ".join(transports)
           + " | json ÷ quiver | grpc ÷ quiver |", "|---|---:|" + "---:|" * 5]
    for payload in ("none", "frame", "batch"):
        es = [common.entry(result["results"], transport=t, payload=payload) for t in transports]
        cells = [f"{us(e['median_us'])} (p99 {us(e['p99_us'])})"
                 if e and e.get("available", True) else "n/a" for e in es]
        size = next((e["bytes"] for e in es if e and "bytes" in e), 0)
        out.append(f"| {payload} | {size:,} | " + " | ".join(cells)
                   + f" | {common.fmt_ratio(common.ratio(es[1], es[0]))}"
                   + f" | {common.fmt_ratio(common.ratio(es[2], es[0]))} |")
    return "\n".join(out) + "\n"


SECTIONS = {"w1_ledger": w1, "w2_image": w2, "w3_frames": w3, "w4_ingest": w4,
            "w5_flight": w5, "w6_command": w6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=pathlib.Path,
                        default=common.ROOT / "bench" / "results")
    args = parser.parse_args()
    for name, section in SECTIONS.items():
        path = args.results / f"{name}.json"
        if path.exists():
            print(f"<!-- {name} -->")
            print(section(json.loads(path.read_text())))


if __name__ == "__main__":
    main()
