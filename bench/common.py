"""Shared pieces of the benchmark suite (bench/suite.py): the run context with its progress
display, statistics, the machine description and the result-file shape of docs/benchmarks.md.

A workload module (bench/w1_ledger.py, ...) defines

    WORKLOAD = "w1_ledger"              # the result file is bench/results/<WORKLOAD>.json
    TITLE = "W1 ledger: ..."
    def run(ctx: Context) -> dict        # returns result_file(...); raises BenchError on a
                                         # wrong answer (the benchmark then fails)
    def plot(result: dict, png: Path)    # one PNG per workload (matplotlib, Agg)
    def summary(result: dict) -> str     # a few lines for the console (ratios)

and, to run on its own (`python bench/<workload>.py [suite options]`), ends with

    if __name__ == "__main__":
        import suite  # only as a script: the module itself never depends on the driver
        suite.standalone(sys.modules[__name__])

The dependencies run one way: suite.py -> the workload modules -> common.py.

Times cross processes as CLOCK_MONOTONIC nanoseconds: Python's time.monotonic_ns() and C++'s
std::chrono::steady_clock read the same clock on Linux.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import platform
import select
import shutil
import statistics
import subprocess
import sys
import time
from typing import Any, Iterable, Optional, Sequence

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Every named channel the suite creates is called `<prefix><run>-...`, one of these prefixes
# and the run's id: the suite's process id, exported to every program it starts as
# QUIVER_BENCH_RUN_PID (the C++ peers read it through bench/run_id.h). The suite fails a
# workload that leaves a channel of its own run behind in this user's channel directory;
# another run's channels (a second suite on the same machine) are not its business.
CHANNEL_PREFIXES = ("w1-", "w2-", "w3-py-", "w4-", "w5-", "w6-", "pingpong-")
RUN_ENV = "QUIVER_BENCH_RUN_PID"


def named_directory() -> pathlib.Path:
    """Where this user's named channels live (quiver.Channel.named_directory(): the library's
    rule, not a copy of it). `make bench-setup` installs the package."""
    import quiver

    return pathlib.Path(quiver.Channel.named_directory())


def named_channels() -> list:
    """The names of this user's named channels now (none if the directory does not exist)."""
    try:
        return [p.name for p in named_directory().iterdir()]
    except FileNotFoundError:
        return []


def run_channels(run_pid: int) -> set:
    """The named channels of the run whose suite has process id `run_pid`."""
    prefixes = tuple(f"{p}{run_pid}-" for p in CHANNEL_PREFIXES)
    return {n for n in named_channels() if n.startswith(prefixes)}


class BenchError(Exception):
    """A benchmark produced a wrong answer or could not run: the suite fails."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise BenchError(message)


@dataclasses.dataclass
class Context:
    """What a workload needs to run: where the binaries are, how much to do, and a progress
    display on stderr (the console; stdout may be carrying --json)."""

    build: pathlib.Path                  # the Release build tree with the C++ peers
    results: pathlib.Path                # bench/results/
    quick: bool = False                  # `make bench-quick`: few repetitions, small counts
    smoke: bool = False                  # tests only: tiny counts, every transport once;
                                         # checks answers, its numbers mean nothing
    quiet: bool = False
    workload: str = ""
    _started: float = dataclasses.field(default_factory=time.monotonic)
    _last_len: int = 0

    def repetitions(self, full: int, quick: int = 1) -> int:
        return 1 if self.smoke else quick if self.quick else full

    def mode(self) -> str:
        return "smoke" if self.smoke else "quick" if self.quick else "full"

    def binary(self, name: str) -> pathlib.Path:
        """A C++ program of the Release build; BenchError naming the fix if it is missing."""
        path = self.build / name
        if not os.access(path, os.X_OK):
            raise BenchError(f"{path} is missing: build the benchmarks first (`make bench` "
                             f"builds {self.build.name}/ in Release)")
        return path

    def progress(self, text: str) -> None:
        """One status line, rewritten in place on a terminal, appended otherwise."""
        if self.quiet:
            return
        elapsed = time.monotonic() - self._started
        line = f"[{elapsed:6.1f}s] {self.workload}: {text}"
        if sys.stderr.isatty():
            pad = max(0, self._last_len - len(line))
            sys.stderr.write("\r" + line + " " * pad)
            self._last_len = len(line)
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def done(self, text: str) -> None:
        """A line that stays (ends the rewritten status line)."""
        if self.quiet:
            return
        if sys.stderr.isatty() and self._last_len:
            sys.stderr.write("\r" + " " * self._last_len + "\r")
            self._last_len = 0
        sys.stderr.write(text + "\n")
        sys.stderr.flush()


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of nothing")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summarize_us(samples_us: Sequence[float]) -> dict:
    """median_us / p99_us / p999_us / min_us / runs of one transport's per-run times."""
    return {
        "median_us": round(statistics.median(samples_us), 3),
        "p99_us": round(percentile(samples_us, 0.99), 3),
        "p999_us": round(percentile(samples_us, 0.999), 3),
        "min_us": round(min(samples_us), 3),
        "runs": len(samples_us),
    }


def unavailable(transport: str, reason: str, **extra: Any) -> dict:
    """The result entry of a peer that could not be installed or started: it says so, and
    carries no number."""
    return {"transport": transport, "available": False, "reason": reason, **extra}


def machine() -> dict:
    info: dict = {"cpus": os.cpu_count(), "kernel": platform.release()}
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info["python"] = platform.python_version()
    # This machine is shared: the load when the result was written says how noisy it was.
    info["loadavg_1m"] = round(os.getloadavg()[0], 2)
    return info


def result_file(workload: str, params: dict, results: list, **extra: Any) -> dict:
    return {"workload": workload, "params": params, "machine": machine(),
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "results": results, **extra}


def write_json(path: pathlib.Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)


def entry(results: Iterable[dict], **match: Any) -> Optional[dict]:
    """The first available result entry whose fields equal `match`."""
    for r in results:
        if r.get("available", True) and all(r.get(k) == v for k, v in match.items()):
            return r
    return None


def ratio(a: Optional[dict], b: Optional[dict], key: str = "median_us") -> Optional[float]:
    if not a or not b or not b.get(key):
        return None
    return a[key] / b[key]


def fmt_ratio(value: Optional[float]) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f}x" if value >= 100 else f"{value:.2f}x"


def fmt_us(value: float) -> str:
    """A duration given in microseconds, in the unit that reads best (s, ms or us)."""
    if value >= 1e6:
        return f"{value / 1e6:.2f} s"
    if value >= 1e3:
        return f"{value / 1e3:.2f} ms"
    return f"{value:.2f} us" if value < 100 else f"{value:.0f} us"


def size_name(n: int) -> str:
    """A payload size: 64 B, 3,840 B, 64 KiB, 8 MiB."""
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20} MiB"
    if n >= 1 << 10 and n % (1 << 10) == 0:
        return f"{n >> 10} KiB"
    return f"{n:,} B"


def run_checked(args: Sequence[str], *, timeout: float, what: str, **kwargs: Any
                ) -> subprocess.CompletedProcess:
    """Runs a child to completion; BenchError with its stderr if it fails."""
    try:
        proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout,
                              **kwargs)
    except subprocess.TimeoutExpired as e:
        raise BenchError(f"{what}: timed out after {timeout:.0f} s") from e
    if proc.returncode != 0:
        raise BenchError(f"{what}: exit {proc.returncode}\n{proc.stderr.strip()[-2000:]}")
    return proc


def pyplot():
    """matplotlib.pyplot with the file-only backend."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def which(name: str) -> Optional[str]:
    return shutil.which(name)


class LineReader:
    """Lines from a child's stdout, each within a deadline (select + os.read, so a child
    that hangs or dies is reported instead of blocking the suite)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""

    def line(self, timeout: float, what: str, failure) -> bytes:
        """The next line (without its newline); raises `failure(message)` on a timeout or
        EOF."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise failure(f"no {what} line within {timeout:.0f} s")
            readable, _, _ = select.select([self.fd], [], [], left)
            if not readable:
                continue
            chunk = os.read(self.fd, 65536)
            if not chunk:
                raise failure(f"stdout closed before the {what} line")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line
