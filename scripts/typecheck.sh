#!/usr/bin/env bash
# The type check of `make test` (mypy, configured in pyproject.toml [tool.mypy]), from the
# repository root with the venv's Python. `quiver` resolves to python/quiver (mypy_path),
# the code in this tree with its committed stubs (python/quiver/_quiver/*.pyi), not the copy
# installed in .venv. Each run prints its errors and one summary line; the script exits
# non-zero if any found an error (all of them run):
#   package   python/quiver under --strict (the config)
#   examples  the example programs, examples/ledger/*.py and examples/evidence/*.py, under
#             --strict (one run per directory: both have a demo.py)
#   tests     python/tests: every call checked against the package's types
#             (--check-untyped-defs) without asking test functions for annotations, the
#             rest of --strict except what is test idiom rather than API use:
#               --allow-untyped-defs --allow-incomplete-defs   unannotated tests and fixtures
#               --allow-untyped-calls
#               --allow-any-generics --no-warn-return-any      bare `-> list`, fixtures' Any
#               --allow-redefinition                           a name reused with another type
#               --no-strict-optional                           Popen's pipes, Optional results
#                                                              the test knows are there
#             A line that still needs it carries `# type: ignore[code]`, e.g. pa.schema of
#             mixed types (pyarrow-stubs join its fields to `object`: [arg-type]).
# Needs mypy>=2 (--allow-redefinition's meaning) and pyarrow-stubs: python/requirements-dev.txt.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-$ROOT/.venv/bin/python}"

if ! "$PY" -m mypy --version >/dev/null 2>&1; then
  echo "typecheck: mypy is not installed for $PY (run 'make deps')" >&2
  exit 2
fi

MYPY=("$PY" -m mypy --config-file pyproject.toml)
TEST_FLAGS=(--strict --allow-untyped-defs --allow-incomplete-defs --allow-untyped-calls
            --check-untyped-defs --allow-any-generics --no-warn-return-any
            --allow-redefinition --no-strict-optional
            --cache-dir .mypy_cache/tests)  # its own: other options would evict the strict cache

failed=0
# step NAME MYPY-ARGUMENTS...: runs mypy, shows its errors, then one summary line.
step() {
  local name=$1 out rc start=$EPOCHREALTIME
  shift
  out=$("${MYPY[@]}" "$@" 2>&1)
  rc=$?
  local seconds
  seconds=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
  if ((rc != 0)); then
    failed=1
    # Everything but mypy's own last line (its summary, repeated below).
    printf '%s\n' "$out" | sed '$d'
    echo "typecheck: $name: FAILED: $(printf '%s\n' "$out" | tail -n 1) (${seconds} s)"
  else
    echo "typecheck: $name: $(printf '%s\n' "$out" | tail -n 1) (${seconds} s)"
  fi
}

step "package (python/quiver, --strict)"
step "examples (examples/ledger, --strict)" --strict examples/ledger/*.py
step "examples (examples/evidence, --strict)" --strict examples/evidence/*.py
step "tests (python/tests, --check-untyped-defs)" "${TEST_FLAGS[@]}" python/tests

exit "$failed"
