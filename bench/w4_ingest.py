"""W4 ingest (docs/benchmarks.md), the msgspec-vs-zero-copy question: N small nodes
(id uint64, kind uint8, parent uint64, weight float32) from Python into the C++ core, through
a Quiver channel read by a C++ process (bench/w4_ingest_peer.cc), as

  publish_arrow              columns the producer holds as numpy arrays, wrapped as
                             pyarrow batches (no copy) and published (one copy into the loan);
  publish_msgspec            msgspec Structs (encoded as msgpack maps, msgspec's default),
                             decoded into Arrow by the C++ core in the producer process;
  publish_msgspec-array_like the same records as tuples (msgpack arrays, no field names).

Nodes/s = N / (first publish call .. the C++ consumer has summed the last batch). The consumer's
sums of id, parent and weight must equal the producer's, else the benchmark fails. Building
the Python objects happens before the clock starts."""

from __future__ import annotations

import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

WORKLOAD = "w4_ingest"
TITLE = "W4 ingest: small nodes from Python into C++, publish_arrow vs publish_msgspec"

TRANSPORTS = ["publish_arrow", "publish_msgspec", "publish_msgspec-array_like"]
BATCH = 100_000


def _nodes(n: int):
    import numpy as np
    rng = np.random.default_rng(4)
    ids = np.arange(n, dtype=np.uint64)
    kinds = (ids % 7).astype(np.uint8)
    parents = ids // np.uint64(3)
    weights = rng.random(n, dtype=np.float32)
    return ids, kinds, parents, weights


def _schema():
    import pyarrow as pa
    return pa.schema([("id", pa.uint64()), ("kind", pa.uint8()), ("parent", pa.uint64()),
                      ("weight", pa.float32())])


def _runs(ctx: common.Context, transport: str, columns, records, n: int, runs: int,
          warmup: int) -> list:
    """`warmup` + `runs` runs of `transport` through one channel and one C++ consumer (a
    pipeline keeps its channel: pages are faulted in once, in the warm-up). Returns the
    seconds of the timed runs."""
    import pyarrow as pa
    import quiver

    ids, kinds, parents, weights = columns
    want_ids, want_parents = int(ids.sum()), int(parents.sum())
    want_weight = float(weights.sum(dtype="float64"))
    name = f"w4-{os.getpid()}-{transport.replace('_', '-')}"
    channel = quiver.Channel.create(name, "64MiB", schema=_schema(), max_samples=64)
    publisher = channel.publisher()
    sink = subprocess.Popen([str(ctx.binary("w4_ingest_peer")), "--channel", name,
                             "--nodes-per-run", str(n)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seconds = []
    try:
        if sink.stdout.readline().strip() != "ready":
            raise common.BenchError(f"w4_ingest_peer did not start: {sink.stderr.read()}")
        for r in range(warmup + runs):
            what = "warm-up" if r < warmup else f"run {r - warmup + 1}/{runs}"
            ctx.progress(f"{transport}: {what}, {n:,} nodes")
            t0 = time.monotonic_ns()
            if transport == "publish_arrow":
                for start in range(0, n, BATCH):
                    end = min(n, start + BATCH)
                    publisher.publish(pa.record_batch(
                        [ids[start:end], kinds[start:end], parents[start:end],
                         weights[start:end]], schema=_schema()))
            else:
                for start in range(0, n, BATCH):
                    publisher.publish_msgspec(records[start:start + BATCH])
            line = sink.stdout.readline()
            if not line:
                raise common.BenchError(f"w4_ingest_peer died: {sink.stderr.read().strip()}")
            got = json.loads(line)
            common.check(got["nodes"] == n,
                         f"{transport}: the consumer got {got['nodes']} nodes, not {n}")
            common.check(got["id_sum"] == want_ids and got["parent_sum"] == want_parents,
                         f"{transport}: the consumer's id/parent sums are wrong")
            common.check(abs(got["weight_sum"] - want_weight) <= 1e-9 * max(1.0, want_weight),
                         f"{transport}: weight sum {got['weight_sum']} != {want_weight}")
            if r >= warmup:
                seconds.append((got["done_ns"] - t0) / 1e9)
        del publisher  # closing the publisher ends the consumer
        _, err = sink.communicate(timeout=60)
        if sink.returncode != 0:
            raise common.BenchError(f"w4_ingest_peer: exit {sink.returncode}: {err.strip()}")
    finally:
        if sink.poll() is None:
            sink.kill()
            sink.wait()
    return seconds


def run(ctx: common.Context) -> dict:
    import msgspec

    n = 30_000 if ctx.smoke else 2_000_000 if ctx.quick else 10_000_000
    runs = ctx.repetitions(full=5, quick=2)
    warmup = 0 if ctx.smoke else 1
    ctx.progress(f"generating {n:,} nodes (numpy columns, tuples, msgspec Structs)")
    columns = _nodes(n)

    class Node(msgspec.Struct):
        id: int
        kind: int
        parent: int
        weight: float

    tuples = list(zip(*(c.tolist() for c in columns)))
    structs = [Node(*t) for t in tuples]
    inputs = {"publish_arrow": None, "publish_msgspec": structs,
              "publish_msgspec-array_like": tuples}
    samples = {t: _runs(ctx, t, columns, inputs[t], n, runs, warmup) for t in TRANSPORTS}
    del structs, tuples
    results = []
    for transport in TRANSPORTS:
        seconds = samples[transport]
        median = statistics.median(seconds)
        results.append({"transport": transport, "nodes": n,
                        "nodes_per_s": round(n / median),
                        "nodes_per_s_best": round(n / min(seconds)),
                        **common.summarize_us([s * 1e6 for s in seconds])})
    profile = [] if ctx.smoke else _decode_profile(ctx)
    params = {"nodes": n, "batch_nodes": BATCH, "warmup_runs": warmup,
              "schema": "id uint64, kind uint8, parent uint64, weight float32",
              "time": "first publish call until the C++ consumer has summed the last batch",
              "channel": "64 MiB, block; one channel and consumer per transport, kept "
                         "across runs",
              "inputs": {"publish_arrow": "numpy columns",
                         "publish_msgspec": "msgspec.Struct objects (msgpack maps)",
                         "publish_msgspec-array_like": "tuples (msgpack arrays)"}}
    return common.result_file(WORKLOAD, params, results, decode_profile=profile)


def _decode_profile(ctx: common.Context) -> list:
    """Where publish_msgspec's time goes: the C++ decode alone (msgpack_records_benchmark,
    1M nodes in one process) against Arrow builders and a parse that builds nothing."""
    binary = ctx.build / "msgpack_records_benchmark"
    if not binary.exists():
        return [common.unavailable("decode-profile", f"{binary} is not built")]
    reps = ctx.repetitions(full=5, quick=1)
    ctx.progress(f"decode profile: {binary.name}, {reps} repetition(s)")
    proc = common.run_checked(
        [str(binary), "--benchmark_format=json", f"--benchmark_repetitions={reps}",
         "--benchmark_min_time=0.2"], timeout=600, what=binary.name)
    per_name: dict = {}
    for b in json.loads(proc.stdout)["benchmarks"]:
        if b.get("run_type", "iteration") == "iteration" and "items_per_second" in b:
            per_name.setdefault(b["run_name"], []).append(b["items_per_second"])
    return [{"benchmark": name.removeprefix("BM_"), "nodes_per_s": round(statistics.median(v)),
             "runs": len(v)} for name, v in per_name.items()]


def summary(result: dict) -> str:
    arrow = common.entry(result["results"], transport="publish_arrow")
    lines = []
    for r in result["results"]:
        if not r.get("available", True):
            lines.append(f"{r['transport']:>28}: unavailable ({r['reason']})")
            continue
        vs = "" if r is arrow else \
            f"   publish_arrow is {arrow['nodes_per_s'] / r['nodes_per_s']:.1f}x faster"
        lines.append(f"{r['transport']:>28}: {r['nodes_per_s'] / 1e6:8.1f} M nodes/s "
                     f"({r['median_us'] / 1e3:,.0f} ms for {r['nodes']:,}){vs}")
    for p in result.get("decode_profile", []):
        if p.get("available", True):
            lines.append(f"{'decode profile':>28}: {p['benchmark']}: "
                         f"{p['nodes_per_s'] / 1e6:.1f} M nodes/s (C++ only, 1M nodes)")
    return "\n".join(lines)


def plot(result: dict, png: pathlib.Path) -> None:
    plt = common.pyplot()
    rows = [r for r in result["results"] if r.get("available", True)]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    names = [r["transport"] for r in rows]
    rates = [r["nodes_per_s"] / 1e6 for r in rows]
    bars = ax.barh(names, rates, color=["tab:green", "tab:orange", "tab:red"][:len(rows)])
    ax.bar_label(bars, labels=[f"{v:.1f} M/s" for v in rates], padding=3, fontsize=8)
    ax.axvline(10, color="grey", linestyle=":", linewidth=1, label="target: 10 M/s")
    ax.set_xscale("log")
    ax.set_xlim(right=max(rates + [10]) * 3)  # room for the bar labels
    ax.set_xlabel("million nodes per second (log), Python to a C++ consumer")
    ax.set_title(f"W4: {result['params']['nodes']:,} small records from Python into C++")
    ax.legend(fontsize=8, loc="lower right")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    import suite  # only as a script: the module itself never depends on the driver

    suite.standalone(sys.modules[__name__])
