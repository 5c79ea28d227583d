"""CPU cost of moving data, for the W1 and W2 workloads: CPU seconds (user + system) of every
process of a transport per GB moved (GB = 1e9 payload bytes; each workload says which bytes).

The figures are deltas of this process's CPU clock (CLOCK_PROCESS_CPUTIME_ID) taken around
the work of moving the data, in each process that does it: the Python producer here (the clock
counts every thread, so also those a transport starts, such as gRPC's), the C++ peers around
their own loops (they report their deltas in their result lines), and the in-process memcpy
baselines. Process start, imports, channel creation and building the input stay outside every
span, so the figure is the CPU of the transfer, not of a process's lifetime.

Why that clock: it is the kernel's runtime of the process's threads, the very sum getrusage
(RUSAGE_SELF) reports as ru_utime + ru_stime, but in nanoseconds instead of microseconds (a
smoke-test copy takes one), and it brings the calling thread's runtime up to date, so it is
exact. RUSAGE_THREAD is not: on this kernel it moves in whole scheduler ticks (4 ms). A thread
running on another CPU at a snapshot is behind by at most a tick; the transports' other threads
(gRPC's) are mostly asleep then. The user/system split is not recorded: the kernel apportions
it from tick samples, which over spans of milliseconds is noise (arrow-ipc-pipe's few
milliseconds a run came out 100% user at 10k rows and 100% system at 100k).

Goals from the design: Quiver's IPC costs >= 20x less CPU per GB than JSON, and <= 1.5x a
memcpy of the same bytes.
"""

from __future__ import annotations

import time
from typing import Optional, Sequence

import common

JSON_GOAL = 20.0    # json CPU/GB divided by quiver's: at least this
MEMCPY_GOAL = 1.5   # quiver CPU/GB divided by memcpy's: at most this


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far (all its threads)."""
    return time.clock_gettime_ns(time.CLOCK_PROCESS_CPUTIME_ID) / 1e9


class Meter:
    """Accumulates this process's CPU seconds inside `with meter:` blocks."""

    def __init__(self) -> None:
        self.used = 0.0
        self._start = 0.0

    def __enter__(self) -> "Meter":
        self._start = cpu_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        self.used += cpu_seconds() - self._start


def _sig(value: float) -> float:
    return float(f"{value:.4g}")


def per_gb(nbytes: int, processes: dict) -> dict:
    """The CPU fields of a result entry: `processes` maps each process's role ("producer",
    "consumer") to its CPU seconds summed over the runs that moved `nbytes` payload bytes."""
    gb = nbytes / 1e9
    return {"cpu_s_per_gb": _sig(sum(processes.values()) / gb),
            "cpu_s_per_gb_by_process": {role: _sig(cpu / gb) for role, cpu in processes.items()}}


def _verdict(value: Optional[float], goal: float, at_least: bool) -> str:
    if value is None:
        return "n/a"
    return "ok" if (value >= goal if at_least else value <= goal) else "MISSED"


def figures_line(case: str, entries: list, transports: Sequence[str], **match: object) -> str:
    """Every transport's CPU s/GB in one case (the entries matching `match`)."""
    found = {t: common.entry(entries, transport=t, **match) for t in transports}
    return f"  CPU s/GB {case}: " + ", ".join(
        f"{t} {e['cpu_s_per_gb']:.3g}" if e and "cpu_s_per_gb" in e else f"{t} n/a"
        for t, e in found.items())


def goals_line(case: str, entries: list, quiver: str, json: str, **match: object) -> str:
    """`quiver`'s CPU s/GB in one case against `json`'s and memcpy's, with the goals."""
    q, j, m = (common.entry(entries, transport=t, **match) for t in (quiver, json, "memcpy"))
    lower = common.ratio(j, q, "cpu_s_per_gb")
    over = common.ratio(q, m, "cpu_s_per_gb")
    return (f"  CPU goals {case}: {quiver} vs {json} {common.fmt_ratio(lower)} lower "
            f"(goal >= {JSON_GOAL:g}x: {_verdict(lower, JSON_GOAL, at_least=True)}); "
            f"{quiver} / memcpy {common.fmt_ratio(over)} "
            f"(goal <= {MEMCPY_GOAL:g}x: {_verdict(over, MEMCPY_GOAL, at_least=False)})")
