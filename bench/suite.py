"""Quiver's benchmark suite: the workloads of docs/benchmarks.md, each against real peers measured
in the same run, each writing bench/results/<workload>.json and a plot <workload>.png.

    bench/suite.py                         # everything (what `make bench` runs)
    bench/suite.py --quick                 # the same workloads at small counts (bench-quick)
    bench/suite.py --workload w1,w3 --json # some of them; the results as JSON on stdout

`quiver bench` runs this script. Progress goes to stderr; a summary (or, with --json, one JSON
document with every result file) to stdout. Exit status 1 if any workload failed: a wrong
answer from any transport fails its workload.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pathlib
import sys
import time
import traceback
import types

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

# name -> module; the result file is named after the module's WORKLOAD.
WORKLOADS = {
    "w1": "w1_ledger",
    "w2": "w2_image",
    "w3": "w3_frames",
    "w4": "w4_ingest",
    "w5": "w5_flight",
    "w6": "w6_command",
}


def parse_workloads(text: str) -> list:
    if text in ("", "all"):
        return list(WORKLOADS)
    chosen = []
    for part in text.split(","):
        key = part.strip().lower()
        match = [k for k, m in WORKLOADS.items() if key in (k, m, m.split("_", 1)[1])]
        if not match:
            names = ", ".join(f"{k} ({m})" for k, m in WORKLOADS.items())
            raise SystemExit(f"suite.py: unknown workload '{part}'; choose from {names}, or all")
        if match[0] not in chosen:
            chosen.append(match[0])
    return chosen


def build_type(build: pathlib.Path) -> str:
    try:
        for line in (build / "CMakeCache.txt").read_text().splitlines():
            if line.startswith("CMAKE_BUILD_TYPE:"):
                return line.split("=", 1)[1] or "(none)"
    except OSError:
        pass
    return "unknown"


def shm_files() -> set:
    """This run's named channels (see common.CHANNEL_PREFIXES)."""
    return common.run_channels(os.getpid())


def main() -> int:
    parser = argparse.ArgumentParser(
        prog=os.environ.get("QUIVER_BENCH_PROG", "bench/suite.py"),
        description="Quiver's benchmark suite (docs/benchmarks.md): W1 ledger, W2 image, "
                    "W3 frames latency, W4 ingest, W5 flight, W6 command/result, each against "
                    "real peers in the same run.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="workloads: " + ", ".join(f"{k} ({m})" for k, m in WORKLOADS.items()))
    parser.add_argument("--workload", "-w", default="all",
                        help="comma-separated workloads to run (default: all)")
    parser.add_argument("--quick", action="store_true",
                        help="small repetition counts: the whole suite in under 2 minutes")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON document with every result on stdout")
    parser.add_argument("--build", type=pathlib.Path, default=common.ROOT / "build-release",
                        help="the build tree with the C++ peers (default: build-release/)")
    parser.add_argument("--results", type=pathlib.Path,
                        default=common.ROOT / "bench" / "results",
                        help="where <workload>.json and .png go (default: bench/results/)")
    parser.add_argument("--smoke", action="store_true",
                        help="for tests: tiny counts, every transport once, answers checked; "
                             "the numbers mean nothing")
    parser.add_argument("--no-plots", action="store_true", help="write no PNG files")
    parser.add_argument("--list", action="store_true", help="list the workloads and exit")
    args = parser.parse_args()

    if args.list:
        for key, module in WORKLOADS.items():
            print(f"{key}  {module:10}  {importlib.import_module(module).TITLE}")
        return 0
    chosen = parse_workloads(args.workload)
    build = args.build.resolve()
    kind = build_type(build)
    args.results.mkdir(parents=True, exist_ok=True)
    out = sys.stderr if args.json else sys.stdout
    if kind not in ("Release", "RelWithDebInfo"):
        print(f"suite.py: warning: {build} is a '{kind}' build; benchmark a Release build "
              f"(`make bench` makes build-release/)", file=sys.stderr)

    # Every channel of this run carries this process's id (common.CHANNEL_PREFIXES).
    os.environ[common.RUN_ENV] = str(os.getpid())
    started = time.monotonic()
    documents, failed = [], []
    for i, key in enumerate(chosen, 1):
        module = importlib.import_module(WORKLOADS[key])
        ctx = common.Context(build=build, results=args.results, quick=args.quick,
                             smoke=args.smoke,
                             workload=f"[{i}/{len(chosen)}] {module.WORKLOAD}")
        ctx.done(f"== {module.TITLE} ({ctx.mode()})")
        before = shm_files()
        try:
            result = module.run(ctx)
        except common.BenchError as e:
            ctx.done(f"{module.WORKLOAD}: FAILED: {e}")
            failed.append(module.WORKLOAD)
            continue
        except Exception:  # a bug in the workload: show it, go on with the others
            ctx.done(f"{module.WORKLOAD}: FAILED with an exception:\n{traceback.format_exc()}")
            failed.append(module.WORKLOAD)
            continue
        left = sorted(shm_files() - before)
        if left:
            ctx.done(f"{module.WORKLOAD}: FAILED: it left shared memory behind: {left}")
            failed.append(module.WORKLOAD)
        result["mode"] = ctx.mode()
        result["build_type"] = kind
        result["seconds"] = round(time.monotonic() - ctx._started, 1)
        path = args.results / f"{module.WORKLOAD}.json"
        common.write_json(path, result)
        files = [path.name]
        if not args.no_plots:
            png = args.results / f"{module.WORKLOAD}.png"
            module.plot(result, png)
            files.append(png.name)
        ctx.done(f"{module.WORKLOAD}: {result['seconds']:.0f} s; wrote "
                 f"{', '.join(files)} in {args.results}")
        print(module.summary(result), file=out, flush=True)
        documents.append(result)

    elapsed = time.monotonic() - started
    if args.json:
        mode = "smoke" if args.smoke else "quick" if args.quick else "full"
        json.dump({"suite": "quiver-bench", "mode": mode,
                   "seconds": round(elapsed, 1), "failed": failed, "workloads": documents},
                  sys.stdout, indent=1)
        sys.stdout.write("\n")
    print(f"suite: {len(documents)} workload(s) in {elapsed:.0f} s"
          + (f"; FAILED: {', '.join(failed)}" if failed else ""), file=sys.stderr)
    return 1 if failed else 0


def standalone(module: types.ModuleType) -> None:
    """`python bench/<workload>.py [suite options]`: the suite with just this workload, for a
    workload module's `if __name__ == "__main__"`."""
    sys.argv[1:1] = ["--workload", module.WORKLOAD]
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
