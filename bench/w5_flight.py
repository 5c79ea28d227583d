"""W5 flight (docs/benchmarks.md, "W5 flight"): a pyarrow.flight client DoGets W1 Ledger batches
(examples/ledger/ledger.py, ROWS rows each, the stream cycling through DISTINCT seeded
batches) from a Flight server, on loopback and across a veth pair between two network
namespaces (server in NAME-a, client in NAME-b: scripts/netns.sh). GB/s, in the same run:

- ``quiver-serve``: ``quiver serve`` (the Release tree's binary) tails a channel: a Python
  producer (bench/w5_flight_server.py publish) creates the channel (block policy, room for
  a few batches), waits until the DoGet's subscriber attached, publishes the N batches and
  lets go of the channel, which ends the stream (EOS). The server sends the batches' buffers
  from the shared mapping; the producer's publish is one copy into the channel.
- ``quiver-compute``: a compute ticket ``{"service": ..., "request": {"batches": N}}`` to
  ``quiver serve``, whose worker (w5_flight_server.py service, a quiver.control.Service in
  Python) yields the N batches from memory into the call's result channel (one copy each),
  which the server streams from the shared mapping: what pyarrow-flight's server does in
  its ``do_get``, with the work in a worker process. Timed like pyarrow-flight, from the
  client's DoGet call; ``producer_cpu_s`` is the worker's.
- ``pyarrow-flight``: pyarrow.flight's own ``FlightServerBase`` in its own process
  (w5_flight_server.py flight) serving the same N batches from memory, a
  ``RecordBatchStream`` of a table.

The client (w5_flight_server.py get) is the same for both, one long-lived process per
network, reusing its connection; it counts the Arrow body bytes (the received batches'
buffer sizes), the rows and sum(amount), which are checked against the batches that were
sent (and, for quiver, against the producer's own count): a mismatch fails the workload.

Time (``median_us``, ``gbps``): from the first batch received until the end of the stream,
over the bytes of batches 2..N: the streaming rate, the same definition for both servers,
free of the call set-up and of the producer waiting for the DoGet to attach.
``e2e_gbps`` counts all N batches from the start: for pyarrow-flight from the client's
DoGet call, for quiver-serve from the producer's first publish (the DoGet was attached
before it) — that one includes the publish copy. ``server_cpu_s``: CPU seconds (user +
system, /proc, 10 ms ticks) the server process used per run, ``client_cpu_s`` the client's,
and for quiver-serve ``producer_cpu_s`` (the publish copies) beside them; this machine has 2
CPUs, so the quiver case runs three busy processes on them against pyarrow-flight's two.

One untimed warm-up run per case (not in --smoke), then the timed runs round-robin between
the two servers, so that a neighbour's load on this shared machine hits both alike.

Standalone: ``python bench/w5_flight.py --build DIR [--quick]`` writes
bench/results/w5_flight.json and .png.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Optional

_BENCH = pathlib.Path(__file__).resolve().parent
if str(_BENCH) not in sys.path:
    sys.path.insert(0, str(_BENCH))
import common  # noqa: E402
from common import BenchError  # noqa: E402

WORKLOAD = "w5_flight"
TITLE = "W5 flight: DoGet of W1 Ledger batches, quiver serve vs pyarrow.flight (loopback, veth)"

SERVERS = ("quiver-serve", "quiver-compute", "pyarrow-flight")
# The fan-out: the same compute request on one shard, and split over two shards (each a
# quiver serve with its own worker) called at once by one client; end-to-end rates.
FANOUT = ("fanout-1-shard", "fanout-2-shards")
NETWORKS = ("loopback", "veth")
PEER = _BENCH / "w5_flight_server.py"
SEED = 20240601          # W1's seed; the K distinct batches use SEED .. SEED+K-1
ROWS = 100_000           # ~7.5 MB a batch
DISTINCT = 4
BATCHES = {"full": 134, "quick": 20, "smoke": 5}  # full: 1.0 GB a run, quick 150 MB
SMOKE_ROWS = 2_000
SUBNET = "10.205.0"
START_TIMEOUT_S = 60.0
RUN_TIMEOUT_S = 300.0
REL_TOLERANCE = 1e-9
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _runs(ctx: common.Context) -> int:
    return ctx.repetitions(11, quick=3)


def _warmups(ctx: common.Context) -> int:
    return 0 if ctx.smoke else 1


def _segment(name: str) -> pathlib.Path:
    return common.named_directory() / name


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process (clock ticks in /proc/PID/stat), 0 if it is gone."""
    try:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


# --- the processes --------------------------------------------------------------------------

class _Proc:
    """A child speaking lines on stdin/stdout; its stderr in a temporary file."""

    def __init__(self, args: list, what: str, sigterm: bool = False) -> None:
        self.what = what
        self.sigterm = sigterm  # stopped with SIGTERM (quiver serve), not by closing stdin
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._stderr)
        self._lines = common.LineReader(self.proc.stdout.fileno())

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr_text(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace").strip()[-2000:]

    def failure(self, what: str) -> BenchError:
        time.sleep(0.2)
        code = self.proc.poll()
        status = "still running" if code is None else f"exit {code}"
        return BenchError(f"{self.what}: {what} ({status})\n{self.stderr_text()}")

    def send(self, obj: dict) -> None:
        try:
            self.proc.stdin.write((json.dumps(obj) + "\n").encode())
            self.proc.stdin.flush()
        except OSError as e:
            raise self.failure(f"cannot send it a command: {e}") from e

    def line(self, timeout: float, what: str) -> str:
        line = self._lines.line(timeout, what, self.failure)
        return line.decode(errors="replace")

    def json_line(self, timeout: float, what: str) -> dict:
        text = self.line(timeout, what)
        try:
            obj = json.loads(text)
        except ValueError:
            raise self.failure(f"its {what} line is not JSON: {text[:200]!r}") from None
        if "error" in obj:
            raise self.failure(f"{what}: {obj['error']}\n{obj.get('trace', '')}")
        return obj

    def stop(self, timeout: float = 10.0, sigterm: bool = False) -> Optional[str]:
        """Closes stdin (the peers end at its end), SIGTERMs (at once with `sigterm`, else
        if it still runs 2 s later); waits. A message if it did not end cleanly."""
        problem = None
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=0 if sigterm else 2)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    problem = f"{self.what} did not stop within {timeout:.0f} s of SIGTERM"
        if problem is None and self.proc.returncode not in (0, None):
            problem = f"{self.what} exited with {self.proc.returncode}: {self.stderr_text()}"
        self.close()
        return problem

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self._stderr.close()


def _netns(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(common.ROOT / "scripts" / "netns.sh"), *args],
                          capture_output=True, text=True, timeout=60)


def _netns_reason() -> Optional[str]:
    """None if two network namespaces can be made here, else scripts/netns.sh's reason."""
    try:
        proc = _netns("check")
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"scripts/netns.sh check: {type(e).__name__}: {e}"
    if proc.returncode == 0:
        return None
    return ("scripts/netns.sh check: " + (proc.stdout.strip() or proc.stderr.strip()
                                           or f"exit {proc.returncode}"))


class _Network:
    """Where the servers and the client run: loopback in this namespace, or NAME-a/NAME-b."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.ns: Optional[str] = None
        self.host = "127.0.0.1"
        self.server_prefix: list = []
        self.client_prefix: list = []

    def up(self) -> None:
        if self.kind != "veth":
            return
        self.ns = f"qw5-{os.getpid()}"
        proc = _netns("up", self.ns, SUBNET)
        if proc.returncode != 0:
            _netns("down", self.ns)
            self.ns = None
            raise BenchError(f"scripts/netns.sh up: {proc.stderr.strip() or proc.stdout.strip()}")
        self.host = f"{SUBNET}.1"
        self.server_prefix = ["ip", "netns", "exec", f"{self.ns}-a"]
        self.client_prefix = ["ip", "netns", "exec", f"{self.ns}-b"]

    def down(self) -> Optional[str]:
        if self.ns is None:
            return None
        proc = _netns("down", self.ns)
        self.ns = None
        return None if proc.returncode == 0 else f"scripts/netns.sh down: {proc.stderr.strip()}"


def _start_quiver_serve(binary: pathlib.Path, network: _Network) -> tuple:
    args = [*network.server_prefix, str(binary), "serve", "--listen",
            f"grpc://{network.host}:0"]
    if network.kind == "veth":
        args.append("--allow-insecure-remote")
    proc = _Proc(args, f"quiver serve ({network.kind})", sigterm=True)
    line = proc.line(START_TIMEOUT_S, "listening")
    if "listening on " not in line or "--token-file " not in line:
        raise proc.failure(f"unexpected first line {line[:200]!r}")
    # A TCP listener needs a bearer token; quiver serve made one and says where it is.
    token_file = line.split("--token-file ", 1)[1].split(")")[0]
    token = pathlib.Path(token_file).read_text().strip()
    return proc, line.split("listening on ", 1)[1].split()[0], token


def _start_pyarrow_server(network: _Network, rows: int) -> tuple:
    proc = _Proc([*network.server_prefix, sys.executable, str(PEER), "flight", "--host",
                  network.host, "--rows", str(rows), "--distinct", str(DISTINCT),
                  "--seed", str(SEED)], f"pyarrow.flight server ({network.kind})")
    port = int(proc.json_line(START_TIMEOUT_S, "port")["port"])
    return proc, f"grpc://{network.host}:{port}"


# --- one run --------------------------------------------------------------------------------

class _Expected:
    def __init__(self, batches: list, n: int) -> None:
        import pyarrow.compute as pc
        from w5_flight_server import body_bytes
        sums = [pc.sum(b.column("amount")).as_py() for b in batches]
        k = len(batches)
        self.batches = n
        self.rows = sum(batches[i % k].num_rows for i in range(n))
        self.sum = 0.0
        for i in range(n):
            self.sum += sums[i % k]
        self.bytes = sum(body_bytes(batches[i % k]) for i in range(n))


def _check(case: str, got: dict, expected: _Expected) -> None:
    if got.get("batches") != expected.batches or got.get("rows") != expected.rows:
        raise BenchError(f"{case}: the client got {got.get('batches')} batches, "
                         f"{got.get('rows')} rows; {expected.batches} batches, "
                         f"{expected.rows} rows were sent")
    if got.get("bytes") != expected.bytes:
        raise BenchError(f"{case}: the client got {got.get('bytes')} body bytes, "
                         f"{expected.bytes} were sent")
    value = got.get("sum")
    if not isinstance(value, (int, float)) or not math.isclose(
            value, expected.sum, rel_tol=REL_TOLERANCE, abs_tol=0.0):
        raise BenchError(f"{case}: the client's sum(amount) {value!r} differs from the "
                         f"sent batches' {expected.sum!r}")


def _sample(got: dict, start_ns: int, cpu: dict) -> dict:
    stream_ns = got["end_ns"] - got["first_ns"]
    e2e_ns = got["end_ns"] - start_ns
    if stream_ns <= 0 or e2e_ns <= 0:
        raise BenchError(f"times out of order: start {start_ns}, first {got['first_ns']}, "
                         f"end {got['end_ns']}: are all clocks CLOCK_MONOTONIC?")
    return {"us": stream_ns / 1e3,
            "gbps": (got["bytes"] - got["first_bytes"]) / stream_ns,  # bytes/ns = GB/s
            "e2e_gbps": got["bytes"] / e2e_ns, **cpu}


def _run_quiver(state: dict, network: _Network, expected: _Expected) -> dict:
    producer, client, server = state["producer"], state["client"], state["quiver"]
    state["seq"] += 1
    name = f"w5-{os.getpid()}-{state['seq']}"
    state["channels"].append(name)
    cpu0 = (_cpu_seconds(server.pid), _cpu_seconds(producer.pid), _cpu_seconds(client.pid))
    producer.send({"channel": name, "batches": expected.batches})
    ready = producer.json_line(START_TIMEOUT_S, "ready")
    if ready.get("ready") != name:
        raise producer.failure(f"expected a ready line for {name}, got {ready}")
    client.send({"location": state["quiver_location"], "ticket": name,
                 "token": state["quiver_token"]})
    got = client.json_line(RUN_TIMEOUT_S, "DoGet result")
    sent = producer.json_line(RUN_TIMEOUT_S, "published")
    cpu = {"server_cpu_s": _cpu_seconds(server.pid) - cpu0[0],
           "producer_cpu_s": _cpu_seconds(producer.pid) - cpu0[1],
           "client_cpu_s": _cpu_seconds(client.pid) - cpu0[2]}
    case = f"quiver-serve ({network.kind})"
    if sent.get("rows") != expected.rows or not math.isclose(
            sent.get("sum", math.nan), expected.sum, rel_tol=REL_TOLERANCE):
        raise BenchError(f"{case}: the producer published {sent.get('rows')} rows, sum "
                         f"{sent.get('sum')!r}; expected {expected.rows}, {expected.sum!r}")
    _check(case, got, expected)
    if got["first_ns"] < sent["t0_ns"]:
        raise BenchError(f"{case}: the client had a batch before the producer published one")
    return _sample(got, sent["t0_ns"], cpu)


def _run_pyarrow(state: dict, network: _Network, expected: _Expected) -> dict:
    client, server = state["client"], state["pyarrow"]
    cpu0 = (_cpu_seconds(server.pid), _cpu_seconds(client.pid))
    client.send({"location": state["pyarrow_location"], "ticket": str(expected.batches)})
    got = client.json_line(RUN_TIMEOUT_S, "DoGet result")
    _check(f"pyarrow-flight ({network.kind})", got, expected)
    return _sample(got, got["start_ns"], {"server_cpu_s": _cpu_seconds(server.pid) - cpu0[0],
                                           "client_cpu_s": _cpu_seconds(client.pid) - cpu0[1]})


def _run_compute(state: dict, network: _Network, expected: _Expected) -> dict:
    client, server, worker = state["client"], state["quiver"], state["worker"]
    cpu0 = (_cpu_seconds(server.pid), _cpu_seconds(worker.pid), _cpu_seconds(client.pid))
    ticket = json.dumps({"service": state["service"], "request": {"batches": expected.batches}})
    client.send({"location": state["quiver_location"], "ticket": ticket,
                 "token": state["quiver_token"]})
    got = client.json_line(RUN_TIMEOUT_S, "DoGet result")
    _check(f"quiver-compute ({network.kind})", got, expected)
    return _sample(got, got["start_ns"], {"server_cpu_s": _cpu_seconds(server.pid) - cpu0[0],
                                           "producer_cpu_s": _cpu_seconds(worker.pid) - cpu0[1],
                                           "client_cpu_s": _cpu_seconds(client.pid) - cpu0[2]})


RUNNERS = {"quiver-serve": _run_quiver, "quiver-compute": _run_compute,
           "pyarrow-flight": _run_pyarrow}


def _halves(batches: list, n: int) -> _Expected:
    """What two shards answering n // 2 batches each send in all."""
    half = _Expected(batches, n // 2)
    half.batches *= 2
    half.rows *= 2
    half.sum *= 2
    half.bytes *= 2
    return half


def _run_fanout(state: dict, network: _Network, shards: int) -> dict:
    client = state["client"]
    expected = state["fanout_expected"][shards]
    per_shard = expected.batches // shards
    calls = [{"location": state["shards"][i]["location"], "token": state["shards"][i]["token"],
              "ticket": json.dumps({"service": state["shards"][i]["service"],
                                    "request": {"batches": per_shard}})}
             for i in range(shards)]
    pids = [p.pid for i in range(shards) for p in state["shards"][i]["procs"]]
    cpu0 = sum(_cpu_seconds(p) for p in pids), _cpu_seconds(client.pid)
    client.send({"fanout": calls})
    got = client.json_line(RUN_TIMEOUT_S, "fan-out result")
    _check(f"fan-out to {shards} ({network.kind})", got, expected)
    return _sample(got, got["start_ns"],
                   {"server_cpu_s": sum(_cpu_seconds(p) for p in pids) - cpu0[0],
                    "client_cpu_s": _cpu_seconds(client.pid) - cpu0[1]})


def _start_shard(binary: pathlib.Path, network: _Network, rows: int, index: int) -> dict:
    """One shard: a quiver serve and a compute worker of its own."""
    serve, location, token = _start_quiver_serve(binary, network)
    service = f"w5-{os.getpid()}-{network.kind}-shard{index}"
    worker = _Proc([*network.server_prefix, sys.executable, str(PEER), "service", "--rows",
                    str(rows), "--distinct", str(DISTINCT), "--seed", str(SEED), "--name",
                    service], f"shard {index} worker ({network.kind})")
    try:
        worker.json_line(START_TIMEOUT_S, "service")
    except BenchError:
        serve.stop(sigterm=True)
        raise
    return {"procs": [serve, worker], "location": location, "token": token,
            "service": service}


# --- the workload ---------------------------------------------------------------------------

def _reasons() -> dict:
    """server -> None if it can run, else why not."""
    reasons: dict = {s: None for s in SERVERS}
    try:
        import pyarrow.flight  # noqa: F401
    except ImportError as e:
        return {s: f"pyarrow has no Flight (the client of both): {e}" for s in SERVERS}
    try:
        import quiver  # noqa: F401
    except ImportError as e:
        reasons["quiver-serve"] = f"the quiver Python package (the producer) is missing: {e}"
        reasons["quiver-compute"] = f"the quiver Python package (the worker) is missing: {e}"
    return reasons


def _entry(server: str, network: str, samples: list, expected: _Expected, rows: int,
           warmups: int) -> dict:
    entry = {"transport": server, "network": network,
             **common.summarize_us([s["us"] for s in samples]),
             "gbps": round(statistics.median(s["gbps"] for s in samples), 4),
             "gbps_best": round(max(s["gbps"] for s in samples), 4),
             "gbps_worst": round(min(s["gbps"] for s in samples), 4),
             "e2e_gbps": round(statistics.median(s["e2e_gbps"] for s in samples), 4),
             "bytes": expected.bytes, "batches": expected.batches, "rows_per_batch": rows,
             "server_cpu_s": round(statistics.median(s["server_cpu_s"] for s in samples), 3),
             "client_cpu_s": round(statistics.median(s["client_cpu_s"] for s in samples), 3),
             "warmup_runs": warmups}
    if server in ("quiver-serve", "quiver-compute"):
        entry["producer_cpu_s"] = round(
            statistics.median(s["producer_cpu_s"] for s in samples), 3)
    return entry


def _case(ctx: common.Context, network: _Network, binary: pathlib.Path, reasons: dict,
          expected: _Expected, rows: int, state: dict) -> list:
    """Both servers on one network: their result entries."""
    servers = [s for s in SERVERS if reasons[s] is None]
    started: list = []
    problems: list = []
    samples: dict = {s: [] for s in servers}
    try:
        network.up()
        state["client"] = _Proc([*network.client_prefix, sys.executable, str(PEER), "get"],
                                f"Flight client ({network.kind})")
        started.append(state["client"])
        if "quiver-serve" in servers or "quiver-compute" in servers:
            state["quiver"], state["quiver_location"], state["quiver_token"] = \
                _start_quiver_serve(binary, network)
            started.append(state["quiver"])
        if "quiver-compute" in servers:
            # The worker talks to quiver serve through the service's Unix socket and shared
            # memory, which no network namespace separates: it runs beside the server.
            state["service"] = f"w5-{os.getpid()}-{network.kind}"
            state["worker"] = _Proc([*network.server_prefix, sys.executable, str(PEER),
                                     "service", "--rows", str(rows), "--distinct",
                                     str(DISTINCT), "--seed", str(SEED), "--name",
                                     state["service"]], f"compute worker ({network.kind})")
            state["worker"].json_line(START_TIMEOUT_S, "service")
            started.append(state["worker"])
        if "pyarrow-flight" in servers:
            state["pyarrow"], state["pyarrow_location"] = _start_pyarrow_server(network, rows)
            started.append(state["pyarrow"])
        for server in servers:
            for i in range(_warmups(ctx)):
                ctx.progress(f"{network.kind}: {server} warm-up")
                RUNNERS[server](state, network, expected)
        runs = _runs(ctx)
        for i in range(runs):
            for server in servers:
                ctx.progress(f"{network.kind}: {server} run {i + 1}/{runs}")
                samples[server].append(RUNNERS[server](state, network, expected))
        if "quiver-compute" in servers:
            state["shards"] = [{"procs": [state["quiver"], state["worker"]],
                                "location": state["quiver_location"],
                                "token": state["quiver_token"], "service": state["service"]}]
            second = _start_shard(binary, network, rows, 1)
            started.extend(second["procs"])
            state["shards"].append(second)
            for shards in (1, 2):
                for i in range(_warmups(ctx)):
                    _run_fanout(state, network, shards)
            for i in range(runs):
                for shards, name in zip((1, 2), FANOUT):
                    ctx.progress(f"{network.kind}: {name} run {i + 1}/{runs}")
                    samples.setdefault(name, []).append(_run_fanout(state, network, shards))
    finally:
        for proc in reversed(started):
            problem = proc.stop(sigterm=proc.sigterm)
            if problem:
                problems.append(problem)
        for key in ("client", "quiver", "pyarrow", "worker", "service", "shards"):
            state.pop(key, None)
        problem = network.down()
        if problem:
            problems.append(problem)
    if problems:
        raise BenchError("; ".join(problems))
    entries = []
    for server in SERVERS:
        if reasons[server] is not None:
            entries.append(common.unavailable(server, reasons[server], network=network.kind))
        else:
            entries.append(_entry(server, network.kind, samples[server], expected, rows,
                                  _warmups(ctx)))
    for shards, name in zip((1, 2), FANOUT):
        if name in samples:
            entries.append(_entry(name, network.kind, samples[name],
                                  state["fanout_expected"][shards], rows, _warmups(ctx)))
        else:
            entries.append(common.unavailable(name, reasons["quiver-compute"],
                                              network=network.kind))
    return entries


def _leftovers(names: list) -> list:
    """The run's channels still in /dev/shm, after waiting a little for the last holder."""
    deadline = time.monotonic() + 3.0
    while True:
        left = [n for n in names if _segment(n).exists()]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def run(ctx: common.Context) -> dict:
    binary = ctx.binary("quiver")
    ctx.workload = ctx.workload or WORKLOAD
    reasons = _reasons()
    rows = SMOKE_ROWS if ctx.smoke else ROWS
    n = BATCHES[ctx.mode()]
    ctx.progress(f"generating {DISTINCT} Ledger batches of {rows:,} rows")
    from w5_flight_server import ledger_batches
    batches = ledger_batches(rows, DISTINCT, SEED)
    expected = _Expected(batches, n)
    fanout_expected = {1: expected if n % 2 == 0 else _Expected(batches, n - 1),
                       2: _halves(batches, n)}
    del batches
    ctx.progress("scripts/netns.sh check")
    netns_reason = _netns_reason()
    results: list = []
    state: dict = {"seq": 0, "channels": [], "fanout_expected": fanout_expected}
    producer = None
    ok = False
    try:
        if reasons["quiver-serve"] is None:
            capacity = int(expected.bytes / n * 4 * 1.25) + (4 << 20)  # room for ~4 batches
            producer = _Proc([sys.executable, str(PEER), "publish", "--rows", str(rows),
                              "--distinct", str(DISTINCT), "--seed", str(SEED),
                              "--capacity", str(capacity)], "the channel producer")
            state["producer"] = producer
        for kind in NETWORKS:
            if kind == "veth" and netns_reason is not None:
                results += [common.unavailable(s, netns_reason, network=kind) for s in SERVERS]
                continue
            entries = _case(ctx, _Network(kind), binary, reasons, expected, rows, state)
            results += entries
            q = common.entry(entries, transport="quiver-serve")
            c = common.entry(entries, transport="quiver-compute")
            p = common.entry(entries, transport="pyarrow-flight")
            ctx.done(f"{ctx.workload}: {kind}: " + ", ".join(
                f"{e['transport']} {e['gbps']:.2f} GB/s" for e in (q, c, p) if e)
                + f" (quiver / pyarrow {common.fmt_ratio(common.ratio(q, p, 'gbps'))}, "
                f"compute / pyarrow {common.fmt_ratio(common.ratio(c, p, 'gbps'))})")
        ok = True
    finally:
        if producer is not None:
            problem = producer.stop()
            if problem and ok:
                raise BenchError(problem)
        left = _leftovers(state["channels"])
        if left and not ok:  # a failed run: clean up what its processes could not
            for name in left:
                _segment(name).unlink(missing_ok=True)
        elif left:
            raise BenchError(f"channels still in {common.named_directory()} after the servers stopped "
                             f"(quiver serve did not let go?): {left}")

    params = {"rows_per_batch": rows, "batches": n, "distinct_batches": DISTINCT,
              "seed": SEED, "bytes_per_run": expected.bytes, "quick": ctx.quick,
              "servers": list(SERVERS), "networks": list(NETWORKS),
              "runs": _runs(ctx), "warmup_runs": _warmups(ctx),
              "veth": None if netns_reason else {"subnet": SUBNET,
                                                 "server": "NAME-a", "client": "NAME-b"},
              "time": "client: first batch received to end of stream, bytes of batches "
                      "2..N (gbps); e2e_gbps: all N batches from the DoGet call "
                      "(pyarrow-flight) or the producer's first publish (quiver-serve)"}
    ratios = {kind: common.ratio(common.entry(results, transport="quiver-serve", network=kind),
                                 common.entry(results, transport="pyarrow-flight",
                                              network=kind), "gbps")
              for kind in NETWORKS}
    for kind in NETWORKS:
        r = common.ratio(common.entry(results, transport="quiver-compute", network=kind),
                         common.entry(results, transport="pyarrow-flight", network=kind), "gbps")
        ratios[f"compute_{kind}"] = r
        two = common.entry(results, transport="fanout-2-shards", network=kind)
        one = common.entry(results, transport="fanout-1-shard", network=kind)
        ratios[f"fanout_{kind}"] = common.ratio(two, one, "e2e_gbps")
    return common.result_file(WORKLOAD, params, results,
                              ratios={k: (round(v, 3) if v is not None else None)
                                      for k, v in ratios.items()})


# --- reporting ------------------------------------------------------------------------------

def summary(result: dict) -> str:
    entries = result["results"]
    p = result["params"]
    lines = [TITLE, f"GB/s (median of {p['runs']}), {p['batches']} batches of "
                    f"{p['rows_per_batch']:,} rows ({p['bytes_per_run'] / 1e6:.0f} MB) per run; "
                    f"(x): quiver-serve / pyarrow-flight"]
    for kind in NETWORKS:
        q = common.entry(entries, transport="quiver-serve", network=kind)
        a = common.entry(entries, transport="pyarrow-flight", network=kind)
        if q is None and a is None:
            why = next((e.get("reason") for e in entries
                        if e.get("network") == kind and e.get("available") is False), "n/a")
            lines.append(f"  {kind:>8}: unavailable: {why}")
            continue
        lines.append(f"  {kind:>8}: quiver-serve {q['gbps']:.2f} GB/s, " if q else
                     f"  {kind:>8}: quiver-serve n/a, ")
        lines[-1] += (f"pyarrow-flight {a['gbps']:.2f} GB/s" if a else "pyarrow-flight n/a")
        lines[-1] += f" ({common.fmt_ratio(common.ratio(q, a, 'gbps'))})"
        c = common.entry(entries, transport="quiver-compute", network=kind)
        if c:
            lines[-1] += (f"; quiver-compute {c['gbps']:.2f} GB/s "
                          f"({common.fmt_ratio(common.ratio(c, a, 'gbps'))} pyarrow)")
        one = common.entry(entries, transport="fanout-1-shard", network=kind)
        two = common.entry(entries, transport="fanout-2-shards", network=kind)
        if one and two:
            lines.append(f"  {'':>8}  fan-out end to end: 1 shard {one['e2e_gbps']:.2f} GB/s, "
                         f"2 shards {two['e2e_gbps']:.2f} GB/s "
                         f"({common.fmt_ratio(common.ratio(two, one, 'e2e_gbps'))})")
    return "\n".join(lines)


def plot(result: dict, png: pathlib.Path) -> None:
    plt = common.pyplot()
    entries = result["results"]
    fig, ax = plt.subplots(figsize=(8, 4.8))
    width = 0.27
    colors = {"quiver-serve": "tab:blue", "quiver-compute": "tab:green",
              "pyarrow-flight": "tab:orange"}
    top = max([e.get("gbps_best", 0) for e in entries if e.get("available", True)] or [1])
    for i, kind in enumerate(NETWORKS):
        for j, server in enumerate(SERVERS):
            x = i + (j - 1) * width
            e = common.entry(entries, transport=server, network=kind)
            if e is None:
                ax.text(x, top * 0.02, "n/a", ha="center", va="bottom", fontsize=9)
                continue
            err = [[e["gbps"] - e["gbps_worst"]], [e["gbps_best"] - e["gbps"]]]
            ax.bar(x, e["gbps"], width, yerr=err, capsize=4, color=colors[server],
                   label=server if i == 0 else None)
            ax.text(x, e["gbps_best"] + top * 0.02, f"{e['gbps']:.2f}", ha="center",
                    va="bottom", fontsize=9)
        q = common.entry(entries, transport="quiver-serve", network=kind)
        a = common.entry(entries, transport="pyarrow-flight", network=kind)
        r = common.ratio(q, a, "gbps")
        if r is not None:
            ax.text(i, top * 1.15, f"quiver / pyarrow {common.fmt_ratio(r)}", ha="center",
                    fontsize=9)
    ax.set_xticks(range(len(NETWORKS)))
    ax.set_xticklabels(["loopback (127.0.0.1)", "veth (two network namespaces)"])
    ax.set_ylim(0, top * 1.45)
    ax.set_ylabel("GB/s of Arrow body bytes (median; bars: min..max)")
    p = result["params"]
    ax.set_title(f"W5 flight: DoGet of {p['batches']} x {p['rows_per_batch']:,}-row Ledger "
                 f"batches", fontsize=11)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(loc="upper center", ncol=3, fontsize=9)
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    import suite  # only as a script: the module itself never depends on the driver

    suite.standalone(sys.modules[__name__])
