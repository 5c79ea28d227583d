#!/usr/bin/env bash
# The C++ library as a project outside this tree uses it (tests/consumer/):
#   (a) Quiver is configured (Release; tests, benchmarks and examples OFF, so neither
#       GoogleTest nor Google Benchmark may be looked up), built and installed into a
#       temporary prefix; the install is checked (no build-tree paths in lib/cmake, the CLI
#       runs and finds libarrow through its RPATH, pkg-config files usable); then
#       tests/consumer is configured against that prefix with find_package(Quiver), built,
#       run, installed and run again from its own prefix;
#   (b) tests/consumer is configured with -DQUIVER_SOURCE_DIR=<this tree>, which takes
#       Quiver in with add_subdirectory (as FetchContent does), built and run.
# Everything happens in one temporary directory, removed at the end (KEEP=1 keeps it).
# Run by ctest (the `consumer` test) and by `make test-consumer`. About 4-5 minutes on 2 cores.
#   PYTHON / QUIVER_PYTHON  the Python whose pyarrow provides Arrow (default .venv/bin/python)
#   JOBS                    parallel compile jobs (default: 2 at most)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${QUIVER_PYTHON:-${PYTHON:-$ROOT/.venv/bin/python}}"
JOBS="${JOBS:-$(n=$(nproc 2>/dev/null || echo 1); echo $(( n < 2 ? n : 2 )))}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/consumer-XXXXXX")"
if [ "${KEEP:-0}" = 1 ]; then
  trap 'echo "consumer_test: kept $WORK"' EXIT
else
  trap 'rm -rf "$WORK"' EXIT
fi
GEN=()
if command -v ninja >/dev/null 2>&1; then GEN=(-G Ninja); fi
# The compiler flags of the caller's environment are not Quiver's business here.
unset CFLAGS CXXFLAGS LDFLAGS CPPFLAGS
COMMON=("${GEN[@]}" -DCMAKE_BUILD_TYPE=Release -DQUIVER_PYTHON="$PY")

start=$SECONDS
phase_start=$SECONDS
log() { echo "consumer_test: $*"; }
phase_done() {
  log "$1: $((SECONDS - phase_start)) s"
  timings+=("$1: $((SECONDS - phase_start)) s")
  phase_start=$SECONDS
}
fail() { echo "consumer_test: FAIL: $*" >&2; exit 1; }
timings=()
# Quiet on success, the whole log on failure.
run() {
  local logf="$WORK/last.log"
  if ! "$@" >"$logf" 2>&1; then
    cat "$logf" >&2
    fail "$*"
  fi
}
expect_output() {  # expect_output <regex> <program...>
  local want="$1"; shift
  local out
  out="$("$@")" || fail "$* exited with $?: $out"
  echo "  $out"
  grep -Eq "$want" <<<"$out" || fail "$*: expected /$want/, got: $out"
}

PREFIX="$WORK/prefix"
QB="$WORK/quiver-build"

# --- (a) build and install Quiver ----------------------------------------------------------
log "(a) Quiver: configure + build (Release, no tests/benchmarks/examples) in $QB"
run cmake -S "$ROOT" -B "$QB" "${COMMON[@]}" -DCMAKE_INSTALL_PREFIX="$PREFIX" \
  -DQUIVER_BUILD_TESTS=OFF -DQUIVER_BUILD_BENCHMARKS=OFF -DQUIVER_BUILD_EXAMPLES=OFF
if grep -Eq '^(GTest_DIR|benchmark_DIR|GTEST_INCLUDE_DIR)[:=]' "$QB/CMakeCache.txt"; then
  fail "GoogleTest or Google Benchmark was looked up with the tests and benchmarks OFF"
fi
run cmake --build "$QB" -j "$JOBS"
phase_done "Quiver build"

run cmake --install "$QB"
for f in include/quiver/channel.h include/quiver/arrow.h lib/libquiver_channel.a \
         lib/libquiver_payload.a lib/libquiver_control.a bin/quiver \
         lib/cmake/Quiver/QuiverConfig.cmake lib/cmake/Quiver/QuiverConfigVersion.cmake \
         lib/cmake/Quiver/QuiverTargets.cmake lib/cmake/Quiver/QuiverArrow.cmake \
         lib/pkgconfig/quiver.pc lib/pkgconfig/quiver-arrow.pc; do
  [ -e "$PREFIX/$f" ] || fail "not installed: $f"
done
# The package must not point back into the source or build tree.
if grep -rn -e "$ROOT" -e "$QB" "$PREFIX/lib/cmake"; then
  fail "build-tree or source-tree paths in the installed CMake package (above)"
fi
# The Arrow dependency is stated in the exported targets, not hidden.
grep -q 'Arrow::arrow_shared' "$PREFIX/lib/cmake/Quiver/QuiverTargets.cmake" ||
  fail "Quiver::payload does not name Arrow::arrow_shared in its interface"
# The installed CLI finds libarrow without LD_LIBRARY_PATH (its RPATH: pyarrow's directory).
expect_output '^quiver ' env -u LD_LIBRARY_PATH "$PREFIX/bin/quiver" --version
log "  quiver RUNPATH: $(readelf -d "$PREFIX/bin/quiver" | sed -n 's/.*R\(UN\)\?PATH.*\[\(.*\)\]/\2/p')"
phase_done "install + checks"

# --- (a) the consumer against the installed tree -------------------------------------------
CB="$WORK/consumer-installed"
log "(a) consumer: find_package(Quiver) from $PREFIX"
run cmake -S "$ROOT/tests/consumer" -B "$CB" "${COMMON[@]}" -DCMAKE_PREFIX_PATH="$PREFIX" \
  -DCMAKE_INSTALL_PREFIX="$WORK/consumer-prefix"
run cmake --build "$CB" -j "$JOBS"
expect_output '^consumer: ok 3 rows$' "$CB/consumer"
expect_output '^consumer: ok 12 bytes$' "$CB/consumer_core"
# Quiver::quiver is the core without Arrow: a program of raw channels loads no libarrow.
if readelf -d "$CB/consumer_core" | grep NEEDED | grep -q libarrow; then
  fail "consumer_core (Quiver::quiver only) needs libarrow"
fi
run cmake --install "$CB"
expect_output '^consumer: ok 3 rows$' env -u LD_LIBRARY_PATH "$WORK/consumer-prefix/bin/consumer"
phase_done "consumer (find_package)"

# --- (a) pkg-config ------------------------------------------------------------------------
if command -v pkg-config >/dev/null 2>&1; then
  export PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig"
  log "(a) consumer: c++ \$(pkg-config --cflags --libs quiver-control)"
  # shellcheck disable=SC2046
  run c++ -std=c++20 -O1 "$ROOT/tests/consumer/main.cc" -o "$WORK/pc_consumer" \
    $(pkg-config --cflags --libs quiver-control)
  expect_output '^consumer: ok 3 rows$' "$WORK/pc_consumer"
  # shellcheck disable=SC2046
  run c++ -std=c++20 -O1 -DCONSUMER_CORE_ONLY=1 "$ROOT/tests/consumer/main.cc" \
    -o "$WORK/pc_core" $(pkg-config --cflags --libs quiver)
  expect_output '^consumer: ok 12 bytes$' "$WORK/pc_core"
  unset PKG_CONFIG_PATH
  phase_done "consumer (pkg-config)"
else
  log "(a) pkg-config is not installed: the .pc files are not tried"
fi

# --- (b) add_subdirectory ------------------------------------------------------------------
SB="$WORK/consumer-subdir"
log "(b) consumer: add_subdirectory($ROOT)"
run cmake -S "$ROOT/tests/consumer" -B "$SB" "${COMMON[@]}" -DQUIVER_SOURCE_DIR="$ROOT"
if grep -Eq '^(GTest_DIR|benchmark_DIR|GTEST_INCLUDE_DIR)[:=]' "$SB/CMakeCache.txt"; then
  fail "GoogleTest or Google Benchmark was looked up by Quiver as a subproject"
fi
# Everything the subproject builds by default: its libraries, and the consumer.
run cmake --build "$SB" -j "$JOBS"
expect_output '^consumer: ok 3 rows$' "$SB/consumer"
expect_output '^consumer: ok 12 bytes$' "$SB/consumer_core"
phase_done "consumer (add_subdirectory)"

log "timings: $(IFS=';'; echo "${timings[*]}" | sed 's/;/; /g')"
log "ok ($((SECONDS - start)) s)"
