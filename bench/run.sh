#!/usr/bin/env bash
# Runs the W3 ping-pong latency benchmark and stores its results in bench/results/.
# Builds nothing: `make bench` builds build-release/ and then calls this script.
#
#   bench/run.sh [extra Google Benchmark flags...]
#
# Environment:
#   QUIVER_PINGPONG_BIN        the binary (default: $QUIVER_BUILD_DIR/pingpong_benchmark)
#   QUIVER_BUILD_DIR           the release tree (default: build-release/; set by `make bench`)
#   QUIVER_BENCH_RESULTS       where results go (default: bench/results/)
#   QUIVER_BENCH_REPETITIONS   runs of every case; the summary reports medians (default 3)
#   QUIVER_BENCH_ROUNDS, QUIVER_BENCH_PIN, QUIVER_BENCH_IDLE_MS: see pingpong_benchmark.cc
#
# Writes pingpong.json (Google Benchmark's JSON), pingpong.md (the summary tables),
# w3_frames.json (the workload-shaped file of BENCHMARKS.md) and pingpong.log (console).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${QUIVER_BUILD_DIR:-$repo/build-release}
bin=${QUIVER_PINGPONG_BIN:-$build_dir/pingpong_benchmark}
results=${QUIVER_BENCH_RESULTS:-$repo/bench/results}
repetitions=${QUIVER_BENCH_REPETITIONS:-3}

if [[ ! -x $bin ]]; then
  echo "run.sh: no executable $bin; run 'make bench' (or set QUIVER_PINGPONG_BIN)" >&2
  exit 1
fi
mkdir -p "$results"

args=(
  --benchmark_out="$results/pingpong.json"
  --benchmark_out_format=json
)
if ((repetitions > 1)); then
  # Interleaved, so a slow minute of this shared machine does not land on one case only.
  args+=(--benchmark_repetitions="$repetitions" --benchmark_enable_random_interleaving=true)
fi

# Channel files are named pingpong-<pid>-...; one whose process is gone was left behind.
# Prints and removes them; returns 1 if there were any.
sweep_leftovers() {
  local shm_dir=${QUIVER_SHM_DIR:-/dev/shm} prefix file owner found=0
  prefix=quiver-$(id -u)-pingpong-
  for file in "$shm_dir/$prefix"*; do
    [[ -e $file ]] || continue
    owner=${file##*/"$prefix"}
    owner=${owner%%-*}
    kill -0 "$owner" 2>/dev/null && continue
    echo "run.sh: $1 (removed): $file" >&2
    rm -f -- "$file"
    found=1
  done
  return "$found"
}

sweep_leftovers "left behind by an earlier, interrupted run" || true

echo "== $bin (repetitions: $repetitions)"
status=0
QUIVER_BENCH_SUMMARY_MD="$results/pingpong.md" \
  QUIVER_BENCH_SUMMARY_JSON="$results/w3_frames.json" \
  "$bin" "${args[@]}" "$@" 2>&1 | tee "$results/pingpong.log" || status=$?

# The benchmark removes its channels itself; a file surviving it is a bug worth failing on.
if ! sweep_leftovers "left behind by this run" && ((status == 0)); then
  status=2
fi

# W4 ingest, the msgspec path: msgpack records decoded into Arrow, against Arrow builders.
msgpack_bin=${QUIVER_MSGPACK_BIN:-$build_dir/msgpack_records_benchmark}
if [[ -x $msgpack_bin ]]; then
  echo "== $msgpack_bin"
  "$msgpack_bin" --benchmark_repetitions="$repetitions" --benchmark_report_aggregates_only=true \
    --benchmark_out="$results/msgpack_records.json" --benchmark_out_format=json || status=$?
fi

echo "== results in $results: pingpong.json pingpong.md w3_frames.json pingpong.log msgpack_records.json"
exit "$status"
