#!/usr/bin/env bash
# Builds the libFuzzer fuzzers (tests/fuzz/) with clang into build-fuzz/ and runs each, one
# after the other, for FUZZ_SECONDS on a fresh copy of its seed corpus. Prints executions and
# executions per second for each; exits nonzero if any fuzzer found a crash, a leak, a
# sanitizer report, a timeout or a broken invariant, leaving the input that did it.
#
#   scripts/fuzz.sh                          every fuzzer, 60 s each
#   FUZZ_SECONDS=600 scripts/fuzz.sh sample_fuzzer envelope_fuzzer
#
# Environment:
#   FUZZ_SECONDS   seconds per fuzzer (default 60)
#   FUZZ_BUILD     build directory (default build-fuzz)
#   FUZZ_KEEP=1    keep each fuzzer's working corpus in $FUZZ_BUILD/fuzz-corpus between runs
#                  (default: start from the committed seeds every time)
#   FUZZ_MERGE=1   afterwards, merge what the runs found into tests/fuzz/corpus/ (minimized
#                  with -merge=1); by default the committed corpus is never touched
#   FUZZ_ARGS      extra libFuzzer flags, e.g. "-use_value_profile=1"
#   QUIVER_PYTHON  Python whose pyarrow provides Arrow C++ (default .venv/bin/python)
#   CC, CXX        default clang, clang++ (libFuzzer needs clang; Debian: clang and
#                  libclang-rt-<version>-dev)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SECONDS_EACH="${FUZZ_SECONDS:-60}"
BUILD="${FUZZ_BUILD:-build-fuzz}"
PYTHON="${QUIVER_PYTHON:-$ROOT/.venv/bin/python}"
export CC="${CC:-clang}" CXX="${CXX:-clang++}"
JOBS=$(n=$(nproc 2>/dev/null || echo 1); echo $((n < 2 ? n : 2)))

log() { echo "fuzz: $*"; }
die() { echo "fuzz: error: $*" >&2; exit 2; }

[[ "$SECONDS_EACH" =~ ^[0-9]+$ && "$SECONDS_EACH" -gt 0 ]] || die "FUZZ_SECONDS must be a positive integer"
command -v "$CXX" >/dev/null || die "$CXX not found (apt-get install clang libclang-rt-dev)"
"$CXX" --version | head -1 | grep -qi clang || die "CXX=$CXX is not clang; libFuzzer needs clang"
[[ -x "$PYTHON" ]] || die "$PYTHON not found: run 'make deps' or set QUIVER_PYTHON"

# ---- build ----------------------------------------------------------------------------------
generator=()
if [[ ! -f "$BUILD/CMakeCache.txt" ]] && command -v ninja >/dev/null; then generator=(-G Ninja); fi
# -O2 with debug info but without NDEBUG: assertions stay on while fuzzing.
cmake -S . -B "$BUILD" "${generator[@]}" -DQUIVER_FUZZ=ON -DQUIVER_PYTHON="$PYTHON" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g" >/dev/null
cmake --build "$BUILD" -j "$JOBS" --target fuzzers

all=()
for src in tests/fuzz/*_fuzzer.cc; do all+=("$(basename "$src" .cc)"); done
if (($#)); then fuzzers=("$@"); else fuzzers=("${all[@]}"); fi
for f in "${fuzzers[@]}"; do
  [[ -x "$BUILD/$f" ]] || die "unknown fuzzer '$f' (have: ${all[*]})"
done

# ---- run ------------------------------------------------------------------------------------
# The wheel's libarrow allocates from jemalloc/mimalloc unless told otherwise: invisible to ASan.
export ARROW_DEFAULT_MEMORY_POOL=system
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

# Inputs longer than this are not generated (the seeds set the default, at least 4096).
max_len_of() {
  case "$1" in
    envelope_fuzzer) echo 4096 ;;
    sample_fuzzer) echo 16384 ;;
    *) echo 0 ;;
  esac
}

summary=()
failed=()
start=$(date +%s)
for f in "${fuzzers[@]}"; do
  corpus="$BUILD/fuzz-corpus/$f"
  artifacts="$BUILD/fuzz-artifacts/$f"
  logfile="$BUILD/fuzz-logs/$f.log"
  if [[ "${FUZZ_KEEP:-0}" != 1 ]]; then rm -rf "$corpus"; fi
  mkdir -p "$corpus" "$artifacts" "$(dirname "$logfile")"
  cp -n tests/fuzz/corpus/"$f"/* "$corpus"/ 2>/dev/null || true
  dict=()
  [[ -f "tests/fuzz/dict/$f.dict" ]] && dict=("-dict=tests/fuzz/dict/$f.dict")
  log "$f: ${SECONDS_EACH}s on $(ls "$corpus" | wc -l) inputs (log: $logfile)"
  rc=0
  # shellcheck disable=SC2086  # FUZZ_ARGS is a list of flags
  "$BUILD/$f" "$corpus" "${dict[@]}" -max_total_time="$SECONDS_EACH" -timeout=10 \
    -rss_limit_mb=2048 -max_len="$(max_len_of "$f")" -print_final_stats=1 \
    -artifact_prefix="$artifacts/" ${FUZZ_ARGS:-} >"$logfile" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logfile" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$logfile" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$logfile" | tail -1 | cut -d' ' -f2)
  summary+=("$(printf '%-24s %12s execs %8s exec/s  cov %6s  %s' "$f" "${execs:-?}" "${rate:-?}" \
    "${cov:-?}" "$([[ $rc == 0 ]] && echo ok || echo "FAILED (exit $rc)")")")
  if [[ $rc != 0 ]]; then
    failed+=("$f")
    echo
    log "$f FAILED (exit $rc). The report:"
    grep -E -A30 '^(==[0-9]+==ERROR|quiver fuzz: invariant|SUMMARY|.*runtime error)' "$logfile" |
      head -60 || tail -40 "$logfile"
    input=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$logfile" | tail -1)
    echo
    if [[ -n "$input" ]]; then
      log "the input: $input"
      log "reproduce: ARROW_DEFAULT_MEMORY_POOL=system $BUILD/$f $input"
      log "minimize:  ARROW_DEFAULT_MEMORY_POOL=system $BUILD/$f -minimize_crash=1 -runs=100000 $input"
    fi
    log "then fix it and add the input to tests/fuzz_regression_test.cc (and the seed corpus)"
    echo
  fi
  if [[ "${FUZZ_MERGE:-0}" == 1 && $rc == 0 ]]; then
    "$BUILD/$f" -merge=1 "tests/fuzz/corpus/$f" "$corpus" >>"$logfile" 2>&1 ||
      log "$f: merge into tests/fuzz/corpus/$f failed (see $logfile)"
  fi
done

echo
log "results ($(($(date +%s) - start))s in all):"
for line in "${summary[@]}"; do echo "  $line"; done
if ((${#failed[@]})); then
  log "FAILED: ${failed[*]} (inputs in $BUILD/fuzz-artifacts/)"
  exit 1
fi
log "no crashes"
