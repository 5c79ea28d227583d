"""W1 ledger (docs/benchmarks.md, "W1 ledger"): a Python process holds a ready Ledger
``pyarrow.RecordBatch``; a C++ process (bench/w1_ledger_peer.cc) must end up with it as an
``arrow::RecordBatch`` and compute sum(amount). Time: from the producer starting to send
(``t0 = time.monotonic_ns()``, after the consumer printed its ready line) until the consumer
has the sum (its ``done_ns``, CLOCK_MONOTONIC as well).

This process is the producer. Transports, each with a fresh consumer process per run:

- ``json-stdio``: ``batch.slice(...).to_pylist()`` and ``json.dumps`` per row, one object per
  line on the consumer's stdin, parsed there with nlohmann::json into Arrow builders (the way
  such pipelines are often built today). Sent in chunks of CHUNK_ROWS rows so that both ends work at once.
- ``msgspec-pipe``: rows as tuples (``zip`` of the columns' ``to_pylist()``; msgpack arrays in
  schema order), ``msgspec.msgpack`` encoded, in frames of CHUNK_ROWS rows, each an 8-byte
  little-endian length and the payload; decoded with quiver::DecodeMsgpackRecords.
- ``arrow-ipc-pipe``: ``pyarrow.ipc.new_stream`` on the consumer's stdin.
- ``flight-loopback``: ``pyarrow.flight`` ``do_put`` to the consumer's Flight server on
  127.0.0.1 (connected, ``wait_for_available``, before t0).
- ``quiver``: ``publisher.publish(batch)`` into a channel created (with the Ledger schema)
  once per row count: one copy into shared memory; the consumer reads the batch in place.
  The channel's first run (on a channel just created) is kept apart as ``cold_us`` and
  ``cold_send_us``; the timed runs reuse the channel, as a long-lived one is used. (Quiver
  populates the pages when it creates and maps a segment, so the two barely differ.)

Pipes are grown to PIPE_BYTES (F_SETPIPE_SZ) for the three pipe transports. Every
transport gets one untimed warm-up run per row count, except json-stdio at 1M rows (seconds
per run; ``warmup_runs`` says which). Also ``memcpy``: ctypes.memmove of each of the batch's
buffers into a preallocated, touched destination, in this process, median of back-to-back
repetitions: the copy limit (up to 100k rows source and destination stay in the last-level
cache). ``memcpy-cold``: the same copy after writing twice the last-level cache's size
before each repetition, so both come from memory, as a transfer between processes finds
them. ``quiver-publish-warm`` / ``quiver-publish-after-idle``: ``Publisher.publish(batch)``
alone, in this process (a subscriber here releases each sample), back to back and after
50 ms idle each: what the quiver transport's producer pays itself, and what it pays coming
back cold after waiting for its consumer.

Entries: ``median_us`` etc. (common.summarize_us) of the end-to-end times, ``bytes`` (the
batch's buffer bytes), ``send_us`` (median time until the producer's send returned) and
``got_us`` (median time until the consumer had the batch(es), before summing).

CPU (bench/cpu_usage.py): ``cpu_s_per_gb`` is the user + system CPU of both processes, summed
over the timed runs, per 1e9 bytes of the batch's Arrow buffers (``bytes``, the same for every
transport, whatever it serializes them into); ``cpu_s_per_gb_by_process`` gives the producer's
and the consumer's share. Both are deltas of the process's CPU clock (CLOCK_PROCESS_CPUTIME_ID,
all threads): the producer's (this process, gRPC's threads included) from t0 until its send
returned (serializing included: json.dumps, msgpack, IPC); the consumer's measured by
w1_ledger_peer from waiting for the data (flight-loopback: from the start of the DoPut call,
after the connection's set-up) until it has the sum and has released the batch (quiver: its
Receive's 20 us spin before the futex sleep included). Process start, connecting and creating
the channel are outside both. ``memcpy`` / ``memcpy-cold``: this process around each copy alone
(not the evictions).

Standalone: ``python bench/w1_ledger.py --build DIR [--quick]`` writes
bench/results/w1_ledger.json and .png.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import gc
import importlib.util
import json
import math
import os
import pathlib
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from typing import Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_BENCH = str(pathlib.Path(__file__).resolve().parent)
if _BENCH not in sys.path:  # standalone: `python bench/w1_ledger.py` has it already
    sys.path.insert(0, _BENCH)
import common  # noqa: E402
import cpu_usage  # noqa: E402
from common import BenchError  # noqa: E402

WORKLOAD = "w1_ledger"
TITLE = "W1 ledger: a Python Arrow batch to a C++ arrow::RecordBatch, then sum(amount)"

TRANSPORTS = ("json-stdio", "msgspec-pipe", "arrow-ipc-pipe", "flight-loopback", "quiver")
PIPE_TRANSPORTS = ("json-stdio", "msgspec-pipe", "arrow-ipc-pipe")
ROWS = (10_000, 100_000, 1_000_000)
SMOKE_ROWS = (1_000, 5_000)  # --smoke (tests): every transport once, answers checked
SEED = 20240601
CHUNK_ROWS = 65_536       # json-stdio / msgspec-pipe: rows converted and written at a time
PIPE_BYTES = 1 << 20      # F_SETPIPE_SZ for the pipe transports (the unprivileged maximum)
READY_TIMEOUT_S = 30.0
RESULT_TIMEOUT_S = 300.0
REL_TOLERANCE = 1e-9
F_SETPIPE_SZ = 1031


def _runs(ctx: common.Context, transport: str, rows: int) -> int:
    """Timed runs per case: full 10 (5 at 1M rows, 3 for json-stdio at 1M: ~5 s each);
    quick 1."""
    if ctx.quick or ctx.smoke:
        return 1
    if rows >= 1_000_000:
        return 3 if transport == "json-stdio" else 5
    return 10


def _warmups(ctx: common.Context, transport: str, rows: int) -> int:
    if ctx.smoke:
        return 0
    return 0 if transport == "json-stdio" and rows >= 1_000_000 else 1


def _memcpy_reps(ctx: common.Context, rows: int) -> int:
    full = 50 if rows <= 10_000 else 20 if rows <= 100_000 else 10
    return 2 if ctx.smoke else ctx.repetitions(full, quick=max(3, full // 4))


# --- the data -------------------------------------------------------------------------------

def _ledger_module():
    path = common.ROOT / "examples" / "ledger" / "ledger.py"
    spec = importlib.util.spec_from_file_location("quiver_bench_ledger", path)
    if spec is None or spec.loader is None:
        raise BenchError(f"cannot load the Ledger generator {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _buffers(batch: pa.RecordBatch) -> list:
    return [b for column in batch.columns for b in column.buffers() if b is not None]


def _batch_bytes(batch: pa.RecordBatch) -> int:
    return sum(b.size for b in _buffers(batch))


def _eviction_bytes() -> int:
    """Twice the last-level cache (at least 64 MiB): touching that much evicts a batch."""
    llc = 32 << 20
    try:
        text = pathlib.Path("/sys/devices/system/cpu/cpu0/cache/index3/size").read_text()
        llc = _cache_size(text.strip())
    except (OSError, ValueError):
        pass
    return max(64 << 20, 2 * llc)


def _cache_size(text: str) -> int:
    """sysfs cache sizes: "32768K", "2M"."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if text and text[-1] in units:
        return int(text[:-1]) * units[text[-1]]
    return int(text)


def _memcpy_samples(batch: pa.RecordBatch, reps: int, evict: bool = False) -> tuple:
    """Microseconds per copy of all of the batch's buffers into one touched destination, and
    the CPU seconds of the copies alone; the meter's own clock reads (~0.4 us a copy)
    are inside it, 2% of the smallest (10k rows, warm) copy.
    `evict`: before each copy, write a buffer twice the size of the last-level cache, so
    that source and destination come from memory (as after another process ran)."""
    buffers = [(b.address, b.size) for b in _buffers(batch)]
    total = sum(size for _, size in buffers)
    destination = np.ones(total, dtype=np.uint8)  # allocated and touched: no page faults
    scratch = np.ones(_eviction_bytes(), dtype=np.uint8) if evict else None
    base = destination.ctypes.data
    memmove = ctypes.memmove
    samples = []
    cpu = cpu_usage.Meter()
    for _ in range(reps):
        if scratch is not None:
            scratch += 1
        with cpu:
            t0 = time.monotonic_ns()
            offset = 0
            for address, size in buffers:
                memmove(base + offset, address, size)
                offset += size
            samples.append((time.monotonic_ns() - t0) / 1e3)
    del destination, scratch
    return samples, cpu.used


PUBLISH_IDLE_S = 0.05  # quiver-publish-after-idle: the pause before each publish


def _publish_samples(batch: pa.RecordBatch, name: str, reps: int,
                     idle_s: float = 0.0) -> tuple:
    """Microseconds per Publisher.publish(batch) in this process, on a channel of its own that
    a subscriber here empties after each publish, and the CPU seconds of the publishes: what
    the publish itself costs, back to back (`idle_s` 0), or after `idle_s` seconds idle, as
    the producer comes back after it waited for its consumer (the quiver transport's case)."""
    import quiver

    channel = quiver.Channel.create(name, _channel_capacity(_batch_bytes(batch)),
                                    schema=batch.schema)
    try:
        publisher, subscriber = channel.publisher(), channel.subscriber()
        samples, cpu = [], cpu_usage.Meter()
        for i in range(reps + 2):  # two untimed first: page faults, the schema's first use
            if idle_s:
                time.sleep(idle_s)
            with cpu if i >= 2 else contextlib.nullcontext():
                t0 = time.monotonic_ns()
                publisher.publish(batch)
                took = (time.monotonic_ns() - t0) / 1e3
            subscriber.receive(timeout=10).release()
            if i >= 2:
                samples.append(took)
        return samples, cpu.used
    finally:
        channel.close()


# --- one consumer process -------------------------------------------------------------------

class _Peer:
    """A running w1_ledger_peer: its JSON lines on stdout, its stderr in a temporary file."""

    def __init__(self, binary: pathlib.Path, transport: str, extra: list) -> None:
        self.transport = transport
        self._stderr = tempfile.TemporaryFile()
        stdin = subprocess.PIPE if transport in PIPE_TRANSPORTS else subprocess.DEVNULL
        self.proc = subprocess.Popen([str(binary), "--transport", transport, *extra],
                                     stdin=stdin, stdout=subprocess.PIPE,
                                     stderr=self._stderr)
        self._lines = common.LineReader(self.proc.stdout.fileno())
        if self.proc.stdin is not None:
            try:  # a larger pipe: fewer wake-ups for both ends
                fcntl.fcntl(self.proc.stdin.fileno(), F_SETPIPE_SZ, PIPE_BYTES)
            except OSError:
                pass

    def stderr_text(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace").strip()[-2000:]

    def failure(self, what: str) -> BenchError:
        """A BenchError for `what`, with the consumer's exit status and stderr."""
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        code = self.proc.poll()
        status = "still running" if code is None else f"exit {code}"
        return BenchError(f"w1_ledger_peer --transport {self.transport}: {what} ({status})\n"
                          f"{self.stderr_text()}")

    def json_line(self, timeout: float, what: str) -> dict:
        line = self._lines.line(timeout, what, self.failure)
        try:
            return json.loads(line)
        except ValueError:
            raise self.failure(f"its {what} line is not JSON: {line[:200]!r}") from None

    def finish(self) -> None:
        """Waits for a clean exit; BenchError otherwise."""
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            raise self.failure("did not exit after reporting") from None
        if code != 0:
            raise self.failure("failed after reporting")

    def close(self) -> None:
        """Kills the process if it still runs; closes everything."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:  # stdin: a broken pipe while flushing
                    pass
        self._stderr.close()


# --- the senders: each returns the monotonic ns when sending returned ----------------------

def _send_json(peer: _Peer, batch: pa.RecordBatch, _: dict) -> int:
    dumps = json.dumps
    stream = peer.proc.stdin
    for start in range(0, batch.num_rows, CHUNK_ROWS):
        rows = batch.slice(start, CHUNK_ROWS).to_pylist()
        stream.write(("\n".join(map(dumps, rows)) + "\n").encode())
    stream.close()
    return time.monotonic_ns()


def _send_msgspec(peer: _Peer, batch: pa.RecordBatch, state: dict) -> int:
    encode = state["encoder"].encode
    stream = peer.proc.stdin
    for start in range(0, batch.num_rows, CHUNK_ROWS):
        part = batch.slice(start, CHUNK_ROWS)
        payload = encode(list(zip(*(column.to_pylist() for column in part.columns))))
        stream.write(struct.pack("<Q", len(payload)))
        stream.write(payload)
    stream.close()
    return time.monotonic_ns()


def _send_ipc(peer: _Peer, batch: pa.RecordBatch, _: dict) -> int:
    stream = peer.proc.stdin
    with pa.ipc.new_stream(stream, batch.schema) as writer:
        writer.write_batch(batch)
    stream.close()
    return time.monotonic_ns()


def _send_flight(peer: _Peer, batch: pa.RecordBatch, state: dict) -> int:
    flight = state["flight"]
    writer, _ = state["client"].do_put(flight.FlightDescriptor.for_path("w1_ledger"),
                                       batch.schema)
    writer.write_batch(batch)
    writer.close()
    return time.monotonic_ns()


def _send_quiver(peer: _Peer, batch: pa.RecordBatch, state: dict) -> int:
    state["publisher"].publish(batch)
    return time.monotonic_ns()


SENDERS: dict = {
    "json-stdio": _send_json,
    "msgspec-pipe": _send_msgspec,
    "arrow-ipc-pipe": _send_ipc,
    "flight-loopback": _send_flight,
    "quiver": _send_quiver,
}


def _run_once(binary: pathlib.Path, transport: str, batch: pa.RecordBatch,
              expected_sum: float, state: dict) -> dict:
    """One consumer process, one transfer: the times in microseconds from t0, and the CPU
    seconds the producer spent sending and the consumer receiving."""
    extra = ["--channel", state["channel"].name] if transport == "quiver" else []
    peer = _Peer(binary, transport, extra)
    client = None
    try:
        ready = peer.json_line(READY_TIMEOUT_S, "ready")
        if ready.get("ready") is not True:
            raise peer.failure(f"expected a ready line, got {ready}")
        if transport == "flight-loopback":
            flight = state["flight"]
            client = flight.FlightClient(f"grpc+tcp://127.0.0.1:{int(ready['port'])}")
            client.wait_for_available(timeout=10)
            state["client"] = client
        producer_cpu = cpu_usage.Meter()
        t0 = time.monotonic_ns()
        try:
            with producer_cpu:
                sent_ns = SENDERS[transport](peer, batch, state)
        except (OSError, pa.ArrowException) as e:
            raise peer.failure(f"sending failed: {type(e).__name__}: {e}") from e
        report = peer.json_line(RESULT_TIMEOUT_S, "result")
        peer.finish()
    finally:
        if client is not None:
            state.pop("client", None)
            client.close()
        peer.close()
    rows = report.get("rows")
    got_sum = report.get("sum")
    if rows != batch.num_rows:
        raise BenchError(f"{transport}: the consumer counted {rows} rows, the producer sent "
                         f"{batch.num_rows}")
    if not isinstance(got_sum, (int, float)) or not math.isclose(
            got_sum, expected_sum, rel_tol=REL_TOLERANCE, abs_tol=0.0):
        raise BenchError(f"{transport}, {batch.num_rows} rows: the consumer's sum(amount) "
                         f"{got_sum!r} differs from the producer's {expected_sum!r}")
    done_ns, got_ns = int(report["done_ns"]), int(report["got_ns"])
    if done_ns < t0:
        raise BenchError(f"{transport}: the consumer finished ({done_ns}) before the producer "
                         f"started ({t0}): are both clocks CLOCK_MONOTONIC?")
    return {"us": (done_ns - t0) / 1e3, "send_us": (sent_ns - t0) / 1e3,
            "got_us": (got_ns - t0) / 1e3, "producer_cpu": producer_cpu.used,
            "consumer_cpu": float(report["cpu_s"])}


# --- the workload ---------------------------------------------------------------------------

def _available(binary: pathlib.Path) -> dict:
    """transport -> None if it can run, else the reason it cannot."""
    listed = common.run_checked([str(binary), "--list"], timeout=30,
                                what=f"{binary.name} --list")
    built = set(json.loads(listed.stdout)["transports"])
    reasons: dict = {t: None if t in built else f"{binary.name} was built without it"
                     for t in TRANSPORTS}
    if reasons["flight-loopback"] is None:
        try:
            import pyarrow.flight  # noqa: F401
        except ImportError as e:
            reasons["flight-loopback"] = f"pyarrow has no Flight: {e}"
    try:
        import msgspec  # noqa: F401
    except ImportError as e:
        reasons["msgspec-pipe"] = f"msgspec is not installed: {e}"
    try:
        import quiver  # noqa: F401
    except ImportError as e:
        reasons["quiver"] = f"the quiver Python package is not installed: {e}"
    return reasons


def _channel_capacity(batch_bytes: int) -> int:
    """Room for one sample (buffers 64-byte aligned, IPC metadata), not for two: successive
    samples reuse the same pages."""
    return int(batch_bytes * 1.25) + (4 << 20)


def run(ctx: common.Context) -> dict:
    binary = ctx.binary("w1_ledger_peer")
    ctx.workload = ctx.workload or WORKLOAD
    reasons = _available(binary)
    ledger = _ledger_module()
    results: list = []
    runs_plan: dict = {}
    row_counts = SMOKE_ROWS if ctx.smoke else ROWS
    for rows in row_counts:
        ctx.progress(f"{rows:,} rows: generating the batch (seed {SEED})")
        batch = ledger.batch(rows, SEED)
        expected_sum = pc.sum(batch.column("amount")).as_py()
        nbytes = _batch_bytes(batch)

        ctx.progress(f"{rows:,} rows: memcpy")
        reps = _memcpy_reps(ctx, rows)
        copies = {"memcpy": _memcpy_samples(batch, reps),
                  "memcpy-cold": _memcpy_samples(batch, min(reps, 11), evict=True)}
        for transport, (samples, cpu) in copies.items():
            results.append({"transport": transport, "rows": rows, "bytes": nbytes,
                            **common.summarize_us(samples),
                            **cpu_usage.per_gb(nbytes * len(samples), {"producer": cpu})})
        if reasons["quiver"] is None:
            ctx.progress(f"{rows:,} rows: quiver publish in this process")
            probe = f"w1-{os.getpid()}-{rows}-publish"
            for transport, idle_s, n in (("quiver-publish-warm", 0.0, reps),
                                         ("quiver-publish-after-idle", PUBLISH_IDLE_S,
                                          min(reps, 11))):
                samples, cpu = _publish_samples(batch, probe, n, idle_s)
                results.append({"transport": transport, "rows": rows, "bytes": nbytes,
                                **common.summarize_us(samples),
                                **cpu_usage.per_gb(nbytes * len(samples), {"producer": cpu})})

        state: dict = {}
        times: dict = {t: [] for t in TRANSPORTS if reasons[t] is None}
        cold: dict = {}
        channel_name = f"w1-{os.getpid()}-{rows}"
        try:
            if "msgspec-pipe" in times:
                import msgspec
                state["encoder"] = msgspec.msgpack.Encoder()
            if "flight-loopback" in times:
                import pyarrow.flight
                state["flight"] = pyarrow.flight
            if "quiver" in times:
                import quiver
                state["channel"] = quiver.Channel.create(
                    channel_name, _channel_capacity(nbytes), schema=batch.schema)
                state["publisher"] = state["channel"].publisher()

            # Warm-ups (quiver's is its cold run), then the timed runs round-robin, so that
            # a neighbour's load on this shared machine spreads over all transports alike.
            for transport in times:
                for _ in range(_warmups(ctx, transport, rows)):
                    ctx.progress(f"{rows:,} rows: {transport} warm-up")
                    cold[transport] = _run_once(binary, transport, batch, expected_sum, state)
            plan = {t: _runs(ctx, t, rows) for t in times}
            runs_plan[str(rows)] = plan
            for i in range(max(plan.values(), default=0)):
                for transport in times:
                    if i >= plan[transport]:
                        continue
                    ctx.progress(f"{rows:,} rows: {transport} run {i + 1}/{plan[transport]}")
                    times[transport].append(
                        _run_once(binary, transport, batch, expected_sum, state))
        finally:
            state.pop("publisher", None)
            state.pop("channel", None)
            state.clear()
            gc.collect()

        for transport in TRANSPORTS:
            if reasons[transport] is not None:
                results.append(common.unavailable(transport, reasons[transport], rows=rows))
                continue
            samples = times[transport]
            entry = {"transport": transport, "rows": rows, "bytes": nbytes,
                     **common.summarize_us([s["us"] for s in samples]),
                     "send_us": round(statistics.median(s["send_us"] for s in samples), 3),
                     "got_us": round(statistics.median(s["got_us"] for s in samples), 3),
                     "warmup_runs": _warmups(ctx, transport, rows),
                     **cpu_usage.per_gb(nbytes * len(samples), {
                         "producer": sum(s["producer_cpu"] for s in samples),
                         "consumer": sum(s["consumer_cpu"] for s in samples)})}
            if transport == "quiver" and transport in cold:
                entry["cold_us"] = round(cold[transport]["us"], 3)
                entry["cold_send_us"] = round(cold[transport]["send_us"], 3)
            results.append(entry)
        quiver_entry = common.entry(results, transport="quiver", rows=rows)
        ctx.done(f"{ctx.workload}: {rows:,} rows: " + ", ".join(
            f"{e['transport']} {common.fmt_us(e['median_us'])}"
            for e in results if e.get("rows") == rows and e.get("available", True))
            + (f" (quiver cold {common.fmt_us(quiver_entry['cold_us'])})"
               if quiver_entry and "cold_us" in quiver_entry else ""))

    params = {"rows": list(row_counts), "seed": SEED, "quick": ctx.quick,
              "transports": list(TRANSPORTS), "runs": runs_plan,
              "chunk_rows": CHUNK_ROWS, "pipe_bytes": PIPE_BYTES,
              "msgspec_records": "tuples (msgpack arrays in schema order)",
              "time": "producer t0 (after the consumer's ready line) to the consumer's sum",
              "cpu": {
                  "figure": "cpu_s_per_gb: user + system CPU seconds (deltas of "
                            "CLOCK_PROCESS_CPUTIME_ID, what getrusage RUSAGE_SELF sums, in ns) "
                            "of the producer and the consumer process, summed over the timed "
                            "runs, per 1e9 bytes moved",
                  "bytes": "the batch's Arrow buffers (entry 'bytes'), the same for every "
                           "transport, whatever it serializes them into",
                  "producer": "this Python process, from t0 until its send returned "
                              "(serializing included; gRPC's threads too)",
                  "consumer": "w1_ledger_peer, from waiting for the data (flight-loopback: "
                              "from the start of DoPut) until it has the sum and has "
                              "released the batch; process start, connecting and opening "
                              "the channel are outside",
                  "memcpy": "this process around each copy alone (memcpy-cold: not the "
                            "evictions)"}}
    return common.result_file(WORKLOAD, params, results)


# --- reporting ------------------------------------------------------------------------------

def summary(result: dict) -> str:
    entries = result["results"]
    peers = [t for t in TRANSPORTS if t != "quiver"]
    lines = [TITLE, "median per run; (x): how many times quiver is faster"]
    for rows in result["params"]["rows"]:
        q = common.entry(entries, transport="quiver", rows=rows)
        parts = []
        for t in peers:
            e = common.entry(entries, transport=t, rows=rows)
            parts.append(f"{t} n/a" if e is None else
                         f"{t} {common.fmt_us(e['median_us'])} ({common.fmt_ratio(common.ratio(e, q))})")
        lines.append(f"  {rows:>9,} rows: quiver {common.fmt_us(q['median_us']) if q else 'n/a'}; "
                     + ", ".join(parts))
        copies = []
        for t in ("memcpy", "memcpy-cold"):
            m = common.entry(entries, transport=t, rows=rows)
            if m:
                copies.append(f"{t} {common.fmt_us(m['median_us'])} (quiver / {t} "
                              f"{common.fmt_ratio(common.ratio(q, m))})")
        if copies:
            lines.append(f"  {'':>14}  " + ", ".join(copies))
        warm, idle = (common.entry(entries, transport=t, rows=rows)
                      for t in ("quiver-publish-warm", "quiver-publish-after-idle"))
        memcpy = common.entry(entries, transport="memcpy", rows=rows)
        if warm and idle:
            lines.append(f"  {'':>14}  publish in this process: back to back "
                         f"{common.fmt_us(warm['median_us'])} ({common.fmt_ratio(common.ratio(warm, memcpy))} "
                         f"memcpy), after {PUBLISH_IDLE_S * 1000:.0f} ms idle "
                         f"{common.fmt_us(idle['median_us'])}")
        case = f"{rows:,} rows"
        lines.append(cpu_usage.figures_line(case, entries, (*TRANSPORTS, "memcpy", "memcpy-cold"),
                                            rows=rows))
        lines.append(cpu_usage.goals_line(case, entries, "quiver", "json-stdio", rows=rows))
    target_rows = 100_000
    q = common.entry(entries, transport="quiver", rows=target_rows)
    j = common.entry(entries, transport="json-stdio", rows=target_rows)
    m = common.entry(entries, transport="memcpy", rows=target_rows)
    speedup, over_copy = common.ratio(j, q), common.ratio(q, m)

    def verdict(met: Optional[bool]) -> str:
        return "n/a" if met is None else "met" if met else "NOT met"

    lines.append(
        f"  targets at {target_rows:,} rows: quiver vs json-stdio "
        f"{common.fmt_ratio(speedup)} (>= 300x: "
        f"{verdict(None if speedup is None else speedup >= 300)}); "
        f"quiver / memcpy {common.fmt_ratio(over_copy)} (<= 3x: "
        f"{verdict(None if over_copy is None else over_copy <= 3)})")
    return "\n".join(lines)


def plot(result: dict, png: pathlib.Path) -> None:
    plt = common.pyplot()
    entries = result["results"]
    fig, ax = plt.subplots(figsize=(9, 5))
    styles = {"json-stdio": "o-", "msgspec-pipe": "s-", "arrow-ipc-pipe": "^-",
              "flight-loopback": "v-", "quiver": "D-", "memcpy": "k--", "memcpy-cold": "k:"}
    for transport in (*TRANSPORTS, "memcpy", "memcpy-cold"):
        points = sorted((e["rows"], e["median_us"] / 1e3) for e in entries
                        if e.get("transport") == transport and e.get("available", True))
        if not points:
            continue
        xs, ys = zip(*points)
        ax.plot(xs, ys, styles.get(transport, "o-"), label=transport,
                linewidth=2.5 if transport == "quiver" else 1.5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("rows (Ledger: int32, 3 x utf8, 3 x float64; ~75 bytes a row)")
    ax.set_ylabel("median ms, producer's first byte to consumer's sum")
    ax.set_title("W1 ledger: Python batch to C++ arrow::RecordBatch + sum(amount)",
                 fontsize=11)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9)
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    import suite  # only as a script: the module itself never depends on the driver

    suite.standalone(sys.modules[__name__])
