#!/usr/bin/env bash
# Install what Quiver needs to build and test; fast no-op when everything is present.
#   - Debian packages (installed with apt-get when run as root; otherwise listed)
#   - .venv with python/requirements-dev.txt (skipped while the stamp file matches)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${QUIVER_VENV:-$ROOT/.venv}"
REQS="$ROOT/python/requirements-dev.txt"

DEB_PACKAGES=(
  build-essential cmake ninja-build
  libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libcli11-dev libtomlplusplus-dev libspdlog-dev libfmt-dev libmsgpack-cxx-dev
  clang-format clang-tidy python3-venv
  pkg-config  # scripts/consumer_test.sh builds a consumer from Quiver's .pc files
  clang libclang-rt-14-dev  # `make fuzz` (libFuzzer)
)

log() { echo "bootstrap: $*"; }
die() { echo "bootstrap: error: $*" >&2; exit 1; }

# ---- system packages --------------------------------------------------------------------
if command -v dpkg >/dev/null 2>&1; then
  missing=()
  for p in "${DEB_PACKAGES[@]}"; do
    dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed' || missing+=("$p")
  done
  if ((${#missing[@]})); then
    if [[ "$(id -u)" -eq 0 ]]; then
      log "installing missing packages: ${missing[*]}"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq </dev/null
      apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
    else
      die "missing Debian packages: ${missing[*]}
  Install them as root, e.g.:
    sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}
  then re-run 'make deps'."
    fi
  fi
else
  log "warning: no dpkg (not Debian?); make sure these (or equivalents) are installed:"
  log "  ${DEB_PACKAGES[*]}"
fi

# ---- Python venv ------------------------------------------------------------------------
if [[ ! -x "$VENV/bin/python" ]]; then
  command -v python3 >/dev/null 2>&1 || die "python3 not found"
  log "creating $VENV"
  python3 -m venv "$VENV" </dev/null || die "could not create $VENV (is python3-venv installed?)"
fi
PY="$VENV/bin/python"
"$PY" -c 'import sys' 2>/dev/null || die "$PY does not run; delete $VENV and re-run 'make deps'"

[[ -f "$REQS" ]] || die "missing $REQS"
hash="$(sha256sum "$REQS" | cut -c1-16)"
stamp="$VENV/.quiver-deps-$hash"

# Import check: every requirement is installed and satisfies its version specifier.
reqs_ok() {
  "$PY" - "$REQS" <<'PYEOF' 2>/dev/null
import sys
from importlib import metadata
try:
    from packaging.requirements import Requirement
except ImportError:
    from pip._vendor.packaging.requirements import Requirement
ok = True
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    req = Requirement(line)
    try:
        version = metadata.version(req.name)
    except metadata.PackageNotFoundError:
        print("missing: %s" % req.name, file=sys.stderr); ok = False; continue
    if not req.specifier.contains(version, prereleases=True):
        print("outdated: %s %s" % (req.name, version), file=sys.stderr); ok = False
import pyarrow, numpy, pytest  # the ones the build and tests load directly
pyarrow.get_include
sys.exit(0 if ok else 1)
PYEOF
}

# Fast path: stamp matches the requirements file and the packages the build/tests load
# directly still import (catches a manual `pip uninstall`; a leftover pyarrow/ directory
# imports as an empty namespace package, hence the attribute access).
quick_ok() { "$PY" -c 'import pyarrow, numpy, pytest; pyarrow.get_include' >/dev/null 2>&1; }

if [[ ! -f "$stamp" ]] || ! quick_ok; then
  if ! reqs_ok; then
    log "installing Python packages from ${REQS#$ROOT/} into ${VENV#$ROOT/}"
    "$PY" -m pip install -q --disable-pip-version-check -r "$REQS" </dev/null \
      || die "pip install -r $REQS failed (network? see output above)"
    reqs_ok || die "Python requirements still not satisfied after pip install"
  fi
  rm -f "$VENV"/.quiver-deps-*
  touch "$stamp"
fi
log "ok"
