#!/usr/bin/env bash
# make test-free-threaded: builds Quiver's Python module for a free-threaded CPython (no GIL)
# and runs the Python suite there.
#
# The interpreter: $QUIVER_FT_PYTHON if set (any python3.13t or later), else CPython 3.13
# built from source with --disable-gil into $FT_DIR/python (the source is Debian's copy of
# the python.org tarball, checked against the md5 Debian's index gives; the build takes about
# 5 minutes on 2 cores and is reused afterwards). Its venv ($FT_DIR/venv) gets pyarrow,
# numpy, pytest and the build tools as free-threaded wheels from PyPI, and matplotlib,
# polars and msgspec where they exist for it; then `pip install .` builds the module
# (nanobind FREE_THREADED: it declares that it runs without the GIL) and pytest runs the
# suite. Tests whose third-party packages have no free-threaded build are reported as
# skipped by the suite's own importorskip, or fail naming the package.
#
# Not part of `make test` (it needs a second interpreter and ~10 minutes): run it after a
# change to the bindings, and record the result in README's "Free-threaded Python".
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FT_DIR="${FT_DIR:-$ROOT/build-free-threaded}"
CPYTHON_VERSION=3.13.5
CPYTHON_TARBALL="python3.13_${CPYTHON_VERSION}.orig.tar.xz"
CPYTHON_URL="https://deb.debian.org/debian/pool/main/p/python3.13/$CPYTHON_TARBALL"
CPYTHON_MD5=dbaa8833aa736eddbb18a6a6ae0c10fa  # from Debian's trixie Sources index

say() { echo "test-free-threaded: $*"; }

mkdir -p "$FT_DIR"
python="${QUIVER_FT_PYTHON:-}"
if [ -z "$python" ]; then
  python="$FT_DIR/python/bin/python3.13t"
  if [ ! -x "$python" ]; then
    say "building CPython $CPYTHON_VERSION with --disable-gil into $FT_DIR/python (once)"
    tarball="$FT_DIR/$CPYTHON_TARBALL"
    if [ ! -f "$tarball" ]; then
      curl -fsSL -o "$tarball.part" "$CPYTHON_URL" || {
        say "cannot download $CPYTHON_URL; set QUIVER_FT_PYTHON to a python3.13t instead" >&2
        exit 2
      }
      mv "$tarball.part" "$tarball"
    fi
    echo "$CPYTHON_MD5  $tarball" | md5sum -c --quiet - || {
      say "$tarball does not have Debian's checksum; remove it and retry" >&2
      exit 2
    }
    src="$FT_DIR/src"
    rm -rf "$src" && mkdir -p "$src"
    tar -xf "$tarball" -C "$src" --strip-components=1
    (cd "$src" && ./configure --disable-gil --prefix="$FT_DIR/python" --with-ensurepip=install \
      >"$FT_DIR/configure.log" 2>&1 && make -j"$(nproc)" >"$FT_DIR/make.log" 2>&1 &&
      make install >"$FT_DIR/install.log" 2>&1) || {
      say "the CPython build failed; see $FT_DIR/*.log" >&2
      exit 1
    }
  fi
fi
"$python" -c 'import sys, sysconfig
if not sysconfig.get_config_var("Py_GIL_DISABLED"):
    sys.exit(f"{sys.executable} is not a free-threaded build (Py_GIL_DISABLED unset)")'

venv="$FT_DIR/venv"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
say "installing pyarrow, numpy, pytest and the build tools into $venv"
"$venv/bin/python" -m pip install -q --only-binary=pyarrow,numpy \
  pyarrow numpy pytest nanobind scikit-build-core
for optional in matplotlib polars msgspec; do
  "$venv/bin/python" -m pip install -q --only-binary=:all: "$optional" >/dev/null 2>&1 ||
    say "$optional has no free-threaded build for $("$venv/bin/python" -V); tests that need it fail naming it"
done

say "building the module"
(cd "$ROOT" && "$venv/bin/python" -m pip install -q --no-build-isolation --no-deps .)
"$venv/bin/python" - <<'EOF'
import sys
import quiver
if sys._is_gil_enabled():
    sys.exit("importing quiver enabled the GIL: the module does not declare free-threading")
print(f"test-free-threaded: {sys.version.split()[0]} free-threaded, GIL still off after "
      f"import quiver")
EOF

say "running the Python suite"
cd "$ROOT"
QUIVER_TEST_BUILD_DIR="${QUIVER_TEST_BUILD_DIR:-$ROOT/build}" QUIVER_PYTHON="$venv/bin/python" \
  "$venv/bin/python" -m pytest -q -p no:cacheprovider python/tests "$@"
