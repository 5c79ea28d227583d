"""W6 command/result: one command -> result round trip between a core process and a worker
process, with (a) no payload, (b) a 1920x1080 RGBA frame, (c) a 10,000-row Ledger batch, over
the Quiver control plane (an envelope each way over two pipes, the result in shared memory as
a safe handle the core resolves zero-copy), against the same workflow as JSON lines over the
worker's stdio (the frame base64, the batch as JSON rows: the way such pipelines are often built today) and against a gRPC
unary-style call carrying the same bytes (Arrow Flight DoAction, one result; the batch as
Arrow IPC). The C++ peer (bench/w6_command_peer.cc) starts the worker, times every round trip
until the core holds the checked result, and prints the samples; this module runs it."""

from __future__ import annotations

import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

WORKLOAD = "w6_command"
TITLE = "W6 command/result: a round trip with no payload, a 1080p frame, a 10k-row batch"

PAYLOADS = ["none", "frame", "batch"]
TRANSPORTS = ["quiver", "json-stdio", "grpc"]
# Targets (docs/benchmarks.md): quiver p50 for no payload, and json/quiver p50 ratios.
TARGET_NONE_P50_US = 30.0
TARGET_RATIO = 100.0


def _reps(ctx: common.Context, transport: str, payload: str) -> int:
    if ctx.smoke:
        return 2
    if transport == "json-stdio" and payload == "frame":  # ~0.2 s each
        return ctx.repetitions(full=30, quick=5)
    if transport == "json-stdio" and payload == "batch":  # ~25 ms each
        return ctx.repetitions(full=100, quick=10)
    return ctx.repetitions(full=1000, quick=100)


def run(ctx: common.Context) -> dict:
    peer = ctx.binary("w6_command_peer")
    listed = json.loads(common.run_checked([str(peer), "--list"], timeout=30,
                                           what="w6_command_peer --list").stdout)
    results = []
    cases = [(t, p) for t in TRANSPORTS for p in PAYLOADS]
    for i, (transport, payload) in enumerate(cases, 1):
        if transport not in listed["transports"]:
            results.append(common.unavailable(transport, "this build has no Arrow Flight",
                                              payload=payload))
            continue
        n = _reps(ctx, transport, payload)
        warmup = 0 if ctx.smoke else max(2, n // 20)
        ctx.progress(f"[{i}/{len(cases)}] {transport} {payload}: {n} round trips")
        proc = common.run_checked(
            [str(peer), "--transport", transport, "--payloads", payload, "--reps", str(n),
             "--warmup", str(warmup)], timeout=900, what=f"w6_command_peer {transport} {payload}")
        for line in proc.stdout.splitlines():
            out = json.loads(line)
            results.append({"transport": out["transport"], "payload": out["payload"],
                            "bytes": out["bytes"], **common.summarize_us(out["samples_us"])})
    params = {"payloads": {"none": "RES_OK", "frame": "1920x1080 RGBA, 8,294,400 bytes",
                           "batch": "10,000 rows: page int64, row int64, amount float64, "
                                    "code utf8"},
              "time": "from just before the command is sent until the core holds the checked "
                      "result (quiver: resolved and decoded zero-copy; json: parsed, base64 "
                      "decoded, rows built into Arrow; grpc: received, IPC decoded)",
              "quiver_spin_us": 50}
    return common.result_file(WORKLOAD, params, results)


def _find(result: dict, transport: str, payload: str):
    return common.entry(result["results"], transport=transport, payload=payload)


def summary(result: dict) -> str:
    lines = [f"{'payload':>8} " + " ".join(f"{t + ' p50/p99':>24}" for t in TRANSPORTS)
             + "   json/quiver  grpc/quiver"]
    for payload in PAYLOADS:
        row = [_find(result, t, payload) for t in TRANSPORTS]
        cells = " ".join(
            f"{r['median_us']:>11.1f}/{r['p99_us']:>9.1f} us" if r and r.get("available", True)
            else f"{'n/a':>24}" for r in row)
        lines.append(f"{payload:>8} {cells}   {common.fmt_ratio(common.ratio(row[1], row[0])):>11}"
                     f"  {common.fmt_ratio(common.ratio(row[2], row[0])):>11}")
    none = _find(result, "quiver", "none")
    if none:
        verdict = "meets" if none["median_us"] <= TARGET_NONE_P50_US else "misses"
        lines.append(f"quiver no-payload p50 {none['median_us']:.1f} us {verdict} the "
                     f"{TARGET_NONE_P50_US:.0f} us target")
    for payload in ("frame", "batch"):
        r = common.ratio(_find(result, "json-stdio", payload), _find(result, "quiver", payload))
        if r is not None:
            verdict = "meets" if r >= TARGET_RATIO else "misses"
            lines.append(f"{payload}: quiver {r:.0f}x faster than JSON over stdio, {verdict} the "
                         f"{TARGET_RATIO:.0f}x target")
    return "\n".join(lines)


def plot(result: dict, png: pathlib.Path) -> None:
    plt = common.pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    width = 0.25
    for k, transport in enumerate(TRANSPORTS):
        values = []
        for payload in PAYLOADS:
            r = _find(result, transport, payload)
            values.append(r["median_us"] / 1e3 if r and r.get("available", True) else 0)
        ax.bar([i + (k - 1) * width for i in range(len(PAYLOADS))], values, width,
               label=transport)
    ax.set_xticks(range(len(PAYLOADS)))
    ax.set_xticklabels(["no payload", "1080p RGBA frame", "10k-row batch"])
    ax.set_yscale("log")
    ax.set_ylabel("median round trip, ms (log)")
    ax.set_title("W6 command/result: core -> worker -> core")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    import suite  # only as a script: the module itself never depends on the driver

    suite.standalone(sys.modules[__name__])
