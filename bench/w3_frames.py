"""W3 frames: one-way latency of a payload ping-ponged between two processes (docs/benchmarks.md).

Three parts, one result file (bench/results/w3_frames.json):

* C++ <-> C++: build/pingpong_benchmark (futex, spin, uds, pipe, quiver-blocking/default/spin,
  quiver-spin-own-method, in three placements: sched, apart, together), with 3 interleaved
  repetitions. Google Benchmark's own files stay as pingpong.json, pingpong.md and
  pingpong.log.
* Native iceoryx2: build/iceoryx2_peer (bench/iceoryx2_peer, Rust; `make bench-setup` builds
  it when cargo is installed), the same method over iceoryx2's Rust API: iceoryx2-spin,
  iceoryx2-blocking, iceoryx2-spin-own-method (iceoryx2's own benchmark method), in
  placements sched and apart, 3 runs. Side "cpp": the native peers of quiver-spin and
  quiver-blocking.
* Python <-> Python: bench/w3_python_peer.py (py-quiver-blocking/default/spin, py-uds,
  py-pipe, py-iceoryx2-blocking/spin), in placements "sched" (nothing pinned) and "apart"
  (parent and child pinned to two CPUs).

Payloads 64 B, 3,840 B (10 ms of 48 kHz stereo float32), 64 KiB, 1 MiB, 8 MiB. Every figure
is one-way = round trip / 2, in microseconds: p50 ("median_us"), p99, p99.9 of every round
trip of a run, then the median of each over the runs.

Standalone:  python bench/w3_frames.py --build build-release [--quick]
Environment: QUIVER_BENCH_ROUNDS / QUIVER_BENCH_IDLE_MS / QUIVER_BENCH_PIN (the C++ binary; the
             iceoryx2 peer reads QUIVER_BENCH_ROUNDS and QUIVER_BENCH_PIN too);
             QUIVER_BENCH_PY_ROUNDS (Python round trips at 64 B; larger payloads fewer),
             QUIVER_BENCH_PY_WRITER=loan|bytes (quiver sender: loan_ndarray, the default, or
             publish_bytes), QUIVER_BENCH_PY_PLACEMENTS (default sched,apart; also together).
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import select
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

if str(pathlib.Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402
import w3_python_peer as peer  # noqa: E402
from common import BenchError  # noqa: E402

WORKLOAD = "w3_frames"
TITLE = "W3 frames: ping-pong latency, C++ and Python, 64 B to 8 MiB"

SIZES = (64, 3840, 64 << 10, 1 << 20, 8 << 20)
CPP_TRANSPORTS = ("futex", "spin", "uds", "pipe", "quiver-blocking", "quiver-default",
                  "quiver-spin", "quiver-spin-own-method")
CPP_PLACEMENTS = ("sched", "apart", "together")
PY_TRANSPORTS = peer.TRANSPORTS

# C++: 3 interleaved repetitions; quick: one, and 2,000 round trips at
# 64 B (~13 s in all). Python: 10,000 round trips at 64 B, then halved, a tenth, a hundredth
# as in C++; a run of one case stops early after PY_CAP_S (a pipe moving 8 MiB).
CPP_REPETITIONS, CPP_QUICK_ROUNDS, CPP_QUICK_IDLE_MS = 3, 2000, 300
PY_RUNS, PY_ROUNDS, PY_CAP_S = 3, 10000, 1.0
PY_QUICK_RUNS, PY_QUICK_ROUNDS, PY_QUICK_CAP_S = 1, 1000, 0.15
# --smoke (tests): every transport and payload once at tiny counts, answers checked; C++ in
# the sched placement only. Its numbers mean nothing.
CPP_SMOKE_ROUNDS, CPP_SMOKE_IDLE_MS = 100, 50
PY_SMOKE_ROUNDS, PY_SMOKE_CAP_S = 20, 0.05
# The native iceoryx2 peer (bench/iceoryx2_peer): its modes are its transport names; runs and
# round trips as the C++ half (smoke: sched only), placements as the Python half.
IOX2_PEER = "iceoryx2_peer"
IOX2_MODES = ("iceoryx2-spin", "iceoryx2-blocking", "iceoryx2-spin-own-method")
IOX2_METHOD = {
    "iceoryx2-spin": "publish-subscribe of a [u8] slice: loan_slice_uninit inside the timed "
                     "round trip, every byte written (FillPayload), sequence number and last "
                     "byte checked; the receiver busy-polls receive(), yields after 20 us",
    "iceoryx2-blocking": "the same plus an event service per direction: notify after each "
                         "send, the receiver waits on its Listener (timed_wait, 100 ms slices "
                         "that check the peer)",
    "iceoryx2-spin-own-method": "iceoryx2's benchmarks/publish-subscribe method: payload never "
                                "written or read, the next sample loaned before the timer "
                                "restarts, busy-poll; history 0, subscriber buffer 1; reported "
                                "per round trip",
}
# "sched" is what a user gets; on this 2-CPU VM the scheduler often packs a Python pair onto
# one CPU for one transport and not for another (see same_cpu_pct), so "apart" (parent and
# child pinned to two CPUs, QUIVER_BENCH_PIN) gives the like-for-like comparison.
PY_PLACEMENTS = ("sched", "apart")


def _env_int(name: str, fallback: int) -> int:
    try:
        value = int(os.environ.get(name, ""))
    except ValueError:
        return fallback
    return value if value > 0 else fallback


def py_rounds_for(base: int, size: int) -> int:
    if size > 1 << 20:
        rounds = base // 100
    elif size > 64 << 10:
        rounds = base // 10
    elif size > 4096:
        rounds = base // 2
    else:
        rounds = base
    return max(rounds, 20)


# ---- Leftovers --------------------------------------------------------------------------

def _shm_dir() -> pathlib.Path:
    """Where iceoryx2 keeps its files."""
    return pathlib.Path("/dev/shm")


def _sweep(kinds=("pingpong", "w3-py"), only_pid: Optional[int] = None) -> List[str]:
    """Channel files of earlier runs whose process is gone (or, with only_pid, of that
    process): removed. Returns their names."""
    found = []
    pattern = re.compile(rf"({'|'.join(kinds)})-(\d+)-")
    try:
        entries = list(common.named_directory().iterdir())
    except OSError:
        return found
    for path in entries:
        m = pattern.match(path.name)
        if not m:
            continue
        pid = int(m.group(2))
        if only_pid is not None:
            if pid != only_pid:
                continue
        else:
            try:
                os.kill(pid, 0)
                continue  # its process still runs
            except ProcessLookupError:
                pass
            except PermissionError:
                continue
        try:
            path.unlink()
        except OSError:
            pass
        found.append(path.name)
    return found


# iceoryx2's own directory (its default root path) for its node and service descriptions.
IOX2_ROOT = pathlib.Path("/tmp/iceoryx2")


def _iox2_files() -> set:
    """iceoryx2's shared-memory segments and node/service files now."""
    try:
        found = {p.name for p in _shm_dir().iterdir() if p.name.startswith("iox2_")}
    except OSError:
        found = set()
    try:
        found |= {str(p.relative_to(IOX2_ROOT)) for p in IOX2_ROOT.rglob("*") if p.is_file()}
    except OSError:
        pass
    return found


def _check_iox2_leftovers(before: set, who: str) -> list:
    """Fails if iceoryx2 files appeared since `before`, except its machine-wide management
    segment (iox2_..._node.*.global_mgmt, kept once any node has existed). Returns the new
    files (that segment, if it is new). The names do not say whose they are: the live files
    of another process using iceoryx2 meanwhile (a test, a second run) get 2 s to go."""
    deadline = time.monotonic() + 2
    while True:
        new = sorted(_iox2_files() - before)
        left = [n for n in new if not n.endswith("global_mgmt")]
        if not left:
            return new
        if time.monotonic() > deadline:
            raise BenchError(f"iceoryx2 ({who}) left files behind: {', '.join(left)}")
        time.sleep(0.1)


def _follow(proc: subprocess.Popen, timeout: float, what: str, on_line, on_chunk=None) -> int:
    """Reads a child's piped stdout until it closes, calling on_line(text) for each line (and
    on_chunk(bytes) for the raw output); returns its exit status. BenchError after `timeout`
    s; the child is killed if it has not ended by then."""
    try:
        fd, pending = proc.stdout.fileno(), b""
        deadline = time.monotonic() + timeout
        while True:
            if time.monotonic() > deadline:
                raise BenchError(f"{what}: timed out after {timeout} s")
            ready, _, _ = select.select([fd], [], [], 1.0)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            if on_chunk is not None:
                on_chunk(chunk)
            *lines, pending = (pending + chunk).split(b"\n")
            for raw in lines:
                on_line(raw.decode(errors="replace"))
        return proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()


# ---- C++ --------------------------------------------------------------------------------

def _run_cpp(ctx: common.Context) -> tuple:
    """Runs pingpong_benchmark; returns (its workload-shaped result entries, params)."""
    binary = ctx.binary("pingpong_benchmark")
    repetitions = ctx.repetitions(CPP_REPETITIONS, 1)
    env = dict(os.environ)
    if ctx.smoke:
        env["QUIVER_BENCH_ROUNDS"] = str(CPP_SMOKE_ROUNDS)
        env["QUIVER_BENCH_IDLE_MS"] = str(CPP_SMOKE_IDLE_MS)
    elif ctx.quick:
        env.setdefault("QUIVER_BENCH_ROUNDS", str(CPP_QUICK_ROUNDS))
        env.setdefault("QUIVER_BENCH_IDLE_MS", str(CPP_QUICK_IDLE_MS))
    placements = ("sched",) if ctx.smoke else CPP_PLACEMENTS
    results_dir = ctx.results
    with tempfile.TemporaryDirectory(prefix="w3-") as tmp:
        summary_json = pathlib.Path(tmp) / "pingpong-summary.json"
        env["QUIVER_BENCH_SUMMARY_JSON"] = str(summary_json)
        env["QUIVER_BENCH_SUMMARY_MD"] = str(results_dir / "pingpong.md")
        args = [str(binary), f"--benchmark_out={results_dir / 'pingpong.json'}",
                "--benchmark_out_format=json"]
        if repetitions > 1:
            # Interleaved, so a slow minute of this shared machine does not land on one case.
            args += [f"--benchmark_repetitions={repetitions}",
                     "--benchmark_enable_random_interleaving=true"]
        if ctx.smoke:
            args.append("--benchmark_filter=pingpong/[^/]+/[0-9]+/sched|fill/|idle/")
        # quiver-spin-own-method runs apart and as scheduled only, as its iceoryx2 peer does.
        cases = sum(1 for p in placements for t in CPP_TRANSPORTS
                    if not (t == "quiver-spin-own-method" and p == "together"))
        per_rep = cases * len(SIZES) + len(SIZES) + 2
        total = per_rep * repetitions
        timeout = 600 if ctx.quick or ctx.smoke else 1800
        done = 0
        case_line = re.compile(r"^((?:pingpong|fill|idle)/\S+?)(?:/iterations:\d+)?"
                               r"(?:/manual_time)?(?:/repeats:\d+)?\s")
        ctx.progress(f"C++ pingpong_benchmark: {total} cases")

        def on_line(line: str) -> None:
            nonlocal done
            m = case_line.match(line)
            if m and not re.search(r"_(mean|median|stddev|cv)\b", line):
                done += 1
                ctx.progress(f"C++ {done}/{total} {m.group(1)}")

        with open(results_dir / "pingpong.log", "wb") as log:
            proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    env=env)
            status = _follow(proc, timeout, "pingpong_benchmark", on_line, log.write)
        if status != 0:
            tail = (results_dir / "pingpong.log").read_text(errors="replace")[-2000:]
            what = "left channel files behind" if status == 2 else f"exit {status}"
            raise BenchError(f"pingpong_benchmark: {what}\n{tail}")
        failed = []
        try:
            for b in json.loads((results_dir / "pingpong.json").read_text())["benchmarks"]:
                if b.get("error_occurred"):
                    failed.append(f"{b['name']}: {b.get('error_message', '?')}")
        except (OSError, ValueError, KeyError) as e:
            raise BenchError(f"pingpong_benchmark: cannot read pingpong.json ({e})") from e
        if failed:
            raise BenchError("pingpong_benchmark: cases failed:\n  " + "\n  ".join(failed))
        try:
            cpp = json.loads(summary_json.read_text())
        except (OSError, ValueError) as e:
            raise BenchError(f"pingpong_benchmark wrote no summary ({e})") from e
    # Latency entries go to results[]; the fill times and the idle receiver's CPU use (no
    # latency percentiles) to fields of their own.
    entries, fill_us, idle = [], {}, {}
    for r in cpp["results"]:
        if "idle_receiver_cpu_pct" in r:
            idle[r["transport"]] = r["idle_receiver_cpu_pct"]
        elif r["transport"] == "fill":
            fill_us[str(r["payload_bytes"])] = r["median_us"]
        else:
            entries.append({**r, "side": "cpp"})
    params = {"repetitions": repetitions,
              "round_trips_64B": int(env.get("QUIVER_BENCH_ROUNDS") or 20000),
              "placements": list(placements),
              "idle_receiver_ms": int(env.get("QUIVER_BENCH_IDLE_MS") or 1000),
              "peers": "C++ <-> C++, forked echo child, one per case"}
    extra = {"cpp_fill_p50_us": fill_us, "cpp_idle_receiver_cpu_pct": idle}
    return entries, params, extra


# ---- Native iceoryx2 ---------------------------------------------------------------------

def _available_placements(wanted) -> tuple:
    """(the placements whose CPUs (QUIVER_BENCH_PIN) this process may use, the others)."""
    usable, skipped = [], []
    for placement in wanted:
        cpus = {c for c in peer.pinning(placement) if c is not None}
        (usable if cpus <= os.sched_getaffinity(0) else skipped).append(placement)
    return usable, skipped


def _run_iceoryx2(ctx: common.Context) -> tuple:
    """Runs bench/iceoryx2_peer for every mode; returns (its entries, params). Entries say
    unavailable, with the reason, when the binary was not built."""
    binary = ctx.build / IOX2_PEER
    runs = ctx.repetitions(CPP_REPETITIONS, 1)
    if ctx.smoke:
        rounds = CPP_SMOKE_ROUNDS
    else:
        rounds = _env_int("QUIVER_BENCH_ROUNDS", CPP_QUICK_ROUNDS if ctx.quick else 20000)
    placements, skipped = _available_placements(("sched",) if ctx.smoke else PY_PLACEMENTS)
    params = {"method": IOX2_METHOD, "runs": runs, "round_trips_64B": rounds,
              "placements": placements,
              **({"placements_skipped": f"{', '.join(skipped)}: the CPUs of QUIVER_BENCH_PIN "
                                        f"are not available"} if skipped else {}),
              "peers": "Rust <-> Rust over iceoryx2's Rust API (ipc::Service); the echo "
                       "child is the peer re-executed, one per payload size"}
    if not os.access(binary, os.X_OK):
        # `make bench-setup` leaves the reason next to where the binary would be.
        why = binary.with_name(IOX2_PEER + ".unavailable")
        reason = why.read_text().strip() if why.is_file() else ""
        reason = reason or (f"{binary} is missing: `make bench-setup` builds it when cargo "
                            f"(Rust) is installed")
        params["iceoryx2"] = f"unavailable: {reason}"
        return [common.unavailable(mode, reason, payload_bytes=size, placement=placement,
                                   side="cpp")
                for placement in placements for mode in IOX2_MODES for size in SIZES], params

    per_run: Dict[tuple, List[dict]] = {}
    before = _iox2_files()
    for run in range(runs):
        # Runs outside, modes inside, as the Python half.
        for placement in placements:
            for mode in IOX2_MODES:
                args = [str(binary), "--mode", mode, "--sizes", ",".join(map(str, SIZES)),
                        "--placement", placement, "--rounds", str(rounds)]
                for e in _run_iceoryx2_peer(ctx, args, f"native iceoryx2 run {run + 1}/{runs}"):
                    per_run.setdefault((placement, mode, e["payload_bytes"]), []).append(e)
                    params["iceoryx2"] = e["iceoryx2"]
    new = _check_iox2_leftovers(before, "the native peer")
    if new:
        params["iceoryx2_global_segment"] = new

    entries = []
    for placement, mode, size in ((p, m, s) for p in placements for m in IOX2_MODES
                                  for s in SIZES):
        rs = per_run.get((placement, mode, size), [])
        if len(rs) != runs:
            raise BenchError(f"iceoryx2_peer: {len(rs)} of {runs} runs of {mode} {size} B "
                             f"{placement}")
        same = [r["same_cpu_pct"] for r in rs if r["same_cpu_pct"] is not None]
        entries.append({
            "transport": mode, "payload_bytes": size, "placement": placement, "side": "cpp",
            "median_us": round(statistics.median(r["median_us"] for r in rs), 3),
            "p99_us": round(statistics.median(r["p99_us"] for r in rs), 3),
            "p999_us": round(statistics.median(r["p999_us"] for r in rs), 3),
            "mean_us": round(statistics.median(r["mean_us"] for r in rs), 3),
            "same_cpu_pct": round(statistics.median(same), 1) if same else None,
            "runs": len(rs), "round_trips_per_run": min(r["round_trips_per_run"] for r in rs),
            "writer": ("pre-loaned, payload untouched" if mode.endswith("own-method")
                       else "loan_slice_uninit, every byte written")})
    return entries, params


def _run_iceoryx2_peer(ctx: common.Context, args: List[str], label: str) -> List[dict]:
    """One run of iceoryx2_peer (`args`, without --json): its entries. Its lines (one per
    payload size, or the error) become progress lines."""
    said: List[str] = []

    def on_line(line: str) -> None:
        said.append(line)
        ctx.progress(f"{label}: {line}")

    with tempfile.TemporaryDirectory(prefix="w3-iox2-") as tmp:
        out = pathlib.Path(tmp) / "entries.json"
        proc = subprocess.Popen(args + ["--json", str(out)], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        what = " ".join(pathlib.Path(a).name if i == 0 else a for i, a in enumerate(args))
        status = _follow(proc, 120 if ctx.smoke else 600, what, on_line)
        if status != 0:
            raise BenchError(f"{what}: exit {status}\n" + "\n".join(said[-20:]))
        try:
            return json.loads(out.read_text())
        except (OSError, ValueError) as e:
            raise BenchError(f"{what}: no result file ({e})") from e


# ---- Python -----------------------------------------------------------------------------

def _run_python(ctx: common.Context) -> tuple:
    if ctx.smoke:
        runs, base, cap_s = 1, PY_SMOKE_ROUNDS, PY_SMOKE_CAP_S
    elif ctx.quick:
        runs, cap_s = PY_QUICK_RUNS, PY_QUICK_CAP_S
        base = _env_int("QUIVER_BENCH_PY_ROUNDS", PY_QUICK_ROUNDS)
    else:
        runs, cap_s = PY_RUNS, PY_CAP_S
        base = _env_int("QUIVER_BENCH_PY_ROUNDS", PY_ROUNDS)
    writer = os.environ.get("QUIVER_BENCH_PY_WRITER", "loan")
    if writer not in ("loan", "bytes"):
        raise BenchError(f"QUIVER_BENCH_PY_WRITER={writer}: expected loan or bytes")
    placements = [p.strip() for p in os.environ.get("QUIVER_BENCH_PY_PLACEMENTS",
                                                   ",".join(PY_PLACEMENTS)).split(",") if p]
    if ctx.smoke:
        placements = ["sched"]
    # BenchError on an unknown placement, before anything runs; "apart" is skipped on a
    # one-CPU machine.
    placements, skipped = _available_placements(placements)
    _, iox2_version, iox2_missing = peer.iceoryx2_status()

    transports = [t for t in PY_TRANSPORTS if not (iox2_missing and t in peer.ICEORYX2)]
    per_run: Dict[tuple, List[dict]] = {}
    iox2_before = _iox2_files()
    for run in range(runs):
        # Runs outside, transports inside: a slow minute of the machine hits every transport.
        for placement in placements:
            for transport in transports:
                got = peer.run_transport(transport, SIZES, lambda s: py_rounds_for(base, s),
                                         cap_s, run, writer, ctx.progress, placement)
                for size, r in got.items():
                    per_run.setdefault((placement, transport, size), []).append(r)
    leftovers = _sweep(("w3-py",), only_pid=os.getpid())
    if leftovers:
        raise BenchError(f"quiver channels left behind by the Python pairs (removed): "
                         f"{', '.join(leftovers)}")
    iox2_new = _check_iox2_leftovers(iox2_before, "the Python pairs")

    entries = []
    for placement, transport, size in ((p, t, s) for p in placements for t in PY_TRANSPORTS
                                       for s in SIZES):
        base_entry = {"transport": transport, "payload_bytes": size, "placement": placement,
                      "side": "python"}
        if transport in peer.ICEORYX2 and iox2_missing:
            entries.append(common.unavailable(transport, iox2_missing, payload_bytes=size,
                                              placement=placement, side="python"))
            continue
        rs = per_run[(placement, transport, size)]
        same = [r["same_cpu_pct"] for r in rs if r["same_cpu_pct"] is not None]
        entry = {**base_entry,
                 "median_us": round(statistics.median(r["p50"] for r in rs), 3),
                 "p99_us": round(statistics.median(r["p99"] for r in rs), 3),
                 "p999_us": round(statistics.median(r["p999"] for r in rs), 3),
                 "mean_us": round(statistics.median(r["mean"] for r in rs), 3),
                 "same_cpu_pct": round(statistics.median(same), 1) if same else None,
                 "runs": len(rs),
                 "round_trips_per_run": min(r["rounds"] for r in rs)}
        if transport.startswith("py-quiver-"):
            entry["writer"] = "loan_ndarray" if writer == "loan" else "publish_bytes"
        elif transport in peer.ICEORYX2:
            entry["writer"] = "loan_slice_uninit"
        entries.append(entry)
    params = {"runs": runs, "round_trips_64B": base, "time_cap_per_case_s": cap_s,
              "placements": placements,
              **({"placements_skipped": f"{', '.join(skipped)}: the CPUs of QUIVER_BENCH_PIN "
                                        f"are not available"} if skipped else {}),
              "quiver_writer": "Publisher.loan_ndarray (in place)" if writer == "loan"
              else "Publisher.publish_bytes (one copy)",
              "iceoryx2": iox2_version or f"unavailable: {iox2_missing}",
              "iceoryx2_blocking": "event service per direction, notify after each send, "
                                   "Listener.timed_wait",
              "busy_poll_yield_after_us": peer.SPIN_BEFORE_YIELD_NS / 1000,
              "peers": "Python <-> Python, one spawned echo child per transport and run"}
    if iox2_new:
        params["iceoryx2_global_segment"] = iox2_new
    ctx.progress("python: sender cost in one process")
    # What each sender API costs in Python, one process, no wake-up: fill + send + receive
    # + check, median us. Shows why the quiver writer is what it is.
    params["writer_cost_in_process_us"] = {
        str(size): costs
        for size, costs in peer.writer_costs(SIZES, 0.005 if ctx.smoke else 0.1).items()}
    if _sweep(("w3-py",), only_pid=os.getpid()):
        raise BenchError("quiver channels of the sender-cost measurement were left behind")
    return entries, params


def run(ctx: common.Context) -> dict:
    ctx.results.mkdir(parents=True, exist_ok=True)
    stale = _sweep()
    if stale:
        ctx.done(f"{WORKLOAD}: removed channel files of earlier, interrupted runs: "
                 f"{', '.join(stale)}")
    cpp_entries, cpp_params, cpp_extra = _run_cpp(ctx)
    iox2_entries, iox2_params = _run_iceoryx2(ctx)
    py_entries, py_params = _run_python(ctx)
    native, python = iox2_params["iceoryx2"], py_params["iceoryx2"]
    if native != python and not native.startswith("unavailable") and \
            not python.startswith("unavailable"):
        # bench/iceoryx2_peer/Cargo.toml pins the crate; pip installs the newest package.
        ctx.done(f"{WORKLOAD}: warning: the native peer uses iceoryx2 {native}, the Python "
                 f"peer {python}")
    params = {"payload_bytes": list(SIZES), "latency": "one-way = round trip / 2, us",
              "statistics": "p50 (median_us), p99, p99.9 of every round trip of a run; the "
                            "median of each over the runs",
              "mode": ctx.mode(), "cpp": cpp_params, "iceoryx2_native": iox2_params,
              "python": py_params}
    return common.result_file(WORKLOAD, params, cpp_entries + iox2_entries + py_entries,
                              **cpp_extra)


# ---- Summary and plot -------------------------------------------------------------------

def _get(result: dict, transport: str, size: int, side: str, placement: str = "sched"):
    """The available entry of one case, or None."""
    return common.entry(result["results"], transport=transport, payload_bytes=size, side=side,
                        placement=placement)


def _fmt_us(e: Optional[dict]) -> str:
    if not e:
        return "n/a"
    v = e["median_us"]
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def _one_cpu_note(a: Optional[dict], b: Optional[dict]) -> str:
    """A note, " [one CPU a%/b%]", when the two cases shared one CPU for very different shares
    of their round trips (a busy-poller or a wake-up on one CPU is another regime), else ""."""
    if a and b and a.get("same_cpu_pct") is not None and b.get("same_cpu_pct") is not None \
            and abs(a["same_cpu_pct"] - b["same_cpu_pct"]) > 30:
        return f" [one CPU {a['same_cpu_pct']:.0f}%/{b['same_cpu_pct']:.0f}%]"
    return ""


def summary(result: dict) -> str:
    lines = []
    missing = [r for r in result["results"]
               if r.get("available") is False and r.get("side") == "python"]
    placements = [p for p in PY_PLACEMENTS
                  if any(r.get("side") == "python" and r.get("placement") == p
                         for r in result["results"])]
    for placement in placements:
        lines.append(f"Python <-> Python ({placement}) p50 one-way us, quiver / iceoryx2 "
                     f"(ratio < 1: quiver faster):")
        for mode in ("blocking", "spin"):
            parts = []
            for size in SIZES:
                q = _get(result, f"py-quiver-{mode}", size, "python", placement)
                i = _get(result, f"py-iceoryx2-{mode}", size, "python", placement)
                parts.append(f"{common.size_name(size)} {_fmt_us(q)}/{_fmt_us(i)} "
                             f"({common.fmt_ratio(common.ratio(q, i))}){_one_cpu_note(q, i)}")
            lines.append(f"  {mode:8s} " + "; ".join(parts))
    if missing:
        lines.append(f"  iceoryx2: {missing[0].get('reason')}")
    lines.append("C++ quiver-blocking p50 / bare futex (target <= 3x; the futex moves no "
                 "payload, so also / (futex + fill)):")
    for placement in ("sched", "apart"):
        if not _get(result, "futex", SIZES[0], "cpp", placement):
            continue
        parts = []
        for size in SIZES:
            q = _get(result, "quiver-blocking", size, "cpp", placement)
            f = _get(result, "futex", size, "cpp", placement)
            fill = result.get("cpp_fill_p50_us", {}).get(str(size))
            r = common.ratio(q, f)
            verdict = "" if r is None else (" ok" if r <= 3 else " MISSED")
            with_fill = ""
            if q and f and fill is not None:
                with_fill = f", {q['median_us'] / (f['median_us'] + fill):.2f}x"
            parts.append(f"{common.size_name(size)} {common.fmt_ratio(r)}{verdict}{with_fill}"
                         f"{_one_cpu_note(q, f)}")
        lines.append(f"  {placement:8s} " + "; ".join(parts))
    lines += _native_iceoryx2_lines(result)
    idle = result.get("cpp_idle_receiver_cpu_pct") or {}
    if idle:
        lines.append("C++ idle receiver (blocked in Receive, no traffic) CPU: " + ", ".join(
            f"{t} {pct:.2f} %" for t, pct in idle.items()))
    return "\n".join(lines)


def _native_iceoryx2_lines(result: dict) -> list:
    """Quiver's C++ peers against the native (Rust) iceoryx2 ones, per placement: busy
    polling and blocking against the goal, iceoryx2's own method like for like."""
    iox2 = [r for r in result["results"]
            if r.get("side") == "cpp" and r["transport"] in IOX2_MODES]
    unavailable = [r for r in iox2 if r.get("available") is False]
    if unavailable:
        return [f"native iceoryx2: unavailable: {unavailable[0]['reason']}"]
    lines = []
    for placement in ("apart", "sched"):
        if not any(r.get("placement") == placement for r in iox2):
            continue
        lines.append(f"native p50 one-way, quiver / iceoryx2 (goal ≤ 0.9), {placement}, us:")
        for mode, goal in (("spin", True), ("blocking", True), ("spin-own-method", False)):
            parts = []
            for size in SIZES:
                q = _get(result, f"quiver-{mode}", size, "cpp", placement)
                i = _get(result, f"iceoryx2-{mode}", size, "cpp", placement)
                r = common.ratio(q, i)
                verdict = "" if r is None or not goal else " ok" if r <= 0.9 else " MISSED"
                parts.append(f"{common.size_name(size)} {_fmt_us(q)}/{_fmt_us(i)} "
                             f"({common.fmt_ratio(r)}{verdict}){_one_cpu_note(q, i)}")
            label = mode if goal else "own method (like for like, no goal)"
            lines.append(f"  {label}: " + "; ".join(parts))
    return lines


def plot(result: dict, png: pathlib.Path) -> None:
    """The median one-way latency against payload, log-log, one message per panel: native (C++,
    and iceoryx2's Rust peer) and Python, Quiver against the peers that wait the same way
    (blocking wake-ups; busy polling). Pinned apart when that placement ran (each process on
    a CPU of its own, the case the goals are stated for), else as scheduled. The tails are in
    the tables (docs/benchmarks.md)."""
    plt = common.pyplot()

    def placement_for(side: str) -> str:
        apart = any(r.get("side") == side and r.get("placement") == "apart"
                    for r in result["results"])
        return "apart" if apart else "sched"

    panels = (
        ("cpp", "Native: blocking (woken by the peer)",
         ("quiver-blocking", "quiver-default", "futex", "uds", "pipe", "iceoryx2-blocking")),
        ("cpp", "Native: busy polling",
         ("quiver-spin", "quiver-spin-own-method", "spin", "iceoryx2-spin",
          "iceoryx2-spin-own-method")),
        ("python", "Python: blocking (woken by the peer)",
         ("py-quiver-blocking", "py-quiver-default", "py-iceoryx2-blocking", "py-uds",
          "py-pipe")),
        ("python", "Python: busy polling", ("py-quiver-spin", "py-iceoryx2-spin")),
    )
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5), sharex=True)
    palette = plt.get_cmap("tab10").colors
    for ax, (side, title, transports) in zip(axes.flat, panels):
        placement = placement_for(side)
        for k, t in enumerate(transports):
            points = [e for e in (_get(result, t, s, side, placement) for s in SIZES) if e]
            if not points:
                continue
            quiver = "quiver" in t
            ax.plot([e["payload_bytes"] for e in points],
                    [max(e["median_us"], 1e-3) for e in points],
                    marker="o", markersize=4, color=palette[k % len(palette)],
                    linewidth=2.2 if quiver else 1.2, linestyle="-" if quiver else "--",
                    label=t)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(list(SIZES))
        ax.set_xticklabels([common.size_name(s) for s in SIZES])
        ax.xaxis.set_minor_locator(plt.NullLocator())  # the payload ticks alone
        ax.set_title(f"{title} ({'pinned apart' if placement == 'apart' else 'as scheduled'})",
                     fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
        ax.set_ylabel("one-way latency, p50, us (log)")
    for ax in axes[1]:
        ax.set_xlabel("payload per message")
    machine = result.get("machine", {})
    mode = result.get("params", {}).get("mode", "full")
    fig.suptitle(f"W3: ping-pong latency, Quiver (solid) against its peers (dashed)\n"
                 f"{machine.get('cpus', '?')} CPUs, {machine.get('cpu', '')}; "
                 f"{result.get('date', '')}{'' if mode == 'full' else f' ({mode} run)'}",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)

if __name__ == "__main__":
    import suite  # only as a script: the module itself never depends on the driver

    suite.standalone(sys.modules[__name__])
