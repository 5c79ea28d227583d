#!/usr/bin/env bash
# make test (after make wheel): the wheel in dist/ as a new user gets it. In a fresh venv,
# with no compiler on PATH (PATH is the venv's bin alone, CC and CXX fail), `pip install` of
# the wheel must take it as it is (no build), then:
#   - `import quiver` and the `quiver` command (`quiver --help`, `quiver ls`) work;
#   - two processes publish and receive through a channel;
#   - pip refuses the wheel beside a pyarrow of another major version (the pin), and
#     `import quiver` with one forced in says which pyarrow it needs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SYSTEM_PYTHON="${SYSTEM_PYTHON:-python3}"
wheel=$(ls "$ROOT"/dist/quiver_ipc-*.whl 2>/dev/null | head -1)
[ -n "$wheel" ] || { echo "wheel-test: no wheel in dist/ (run 'make wheel')" >&2; exit 2; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
venv="$work/venv"
"$SYSTEM_PYTHON" -m venv "$venv"
# Only the venv's programs: no gcc, g++, cmake or make to fall back on.
in_venv() { PATH="$venv/bin" CC=/bin/false CXX=/bin/false "$@"; }
fail() { echo "wheel-test: FAILED: $*" >&2; exit 1; }
start=$SECONDS

echo "wheel-test: pip install $(basename "$wheel") into a fresh venv, no compiler on PATH"
in_venv "$venv/bin/python" -m pip install -q --only-binary=:all: "$wheel" ||
  fail "pip install of the wheel"
in_venv "$venv/bin/python" -c "import quiver; print('wheel-test: import quiver ok,', quiver.__version__)"
in_venv "$venv/bin/quiver" --help >"$work/help.txt" || fail "quiver --help"
grep -q "run" "$work/help.txt" && grep -q "serve" "$work/help.txt" ||
  fail "quiver --help lists no run/serve: $(head -5 "$work/help.txt")"
in_venv "$venv/bin/quiver" ls >/dev/null || fail "quiver ls"
echo "wheel-test: the quiver command runs"

name="wheel-test-$$"
cat >"$work/consumer.py" <<PY
import sys, quiver
with quiver.Channel.open(sys.argv[1], wait=30).subscriber() as sub:
    print(sum(s.to_arrow().column("x").to_pylist()[0] for s in sub))
PY
cat >"$work/producer.py" <<PY
import sys, pyarrow as pa, quiver
schema = pa.schema([("x", pa.int64())])
with quiver.Channel.create(sys.argv[1], "1MiB", schema=schema) as ch, ch.publisher() as pub:
    pub.wait_for_subscribers(1, timeout=30)
    for i in range(1, 4):
        pub.publish(pa.record_batch([pa.array([i])], schema=schema))
PY
in_venv "$venv/bin/python" "$work/consumer.py" "$name" >"$work/consumer.out" &
consumer=$!
in_venv "$venv/bin/python" "$work/producer.py" "$name" || fail "the producer"
wait "$consumer" || fail "the consumer"
[ "$(cat "$work/consumer.out")" = "6" ] || fail "the consumer got $(cat "$work/consumer.out"), not 6"
echo "wheel-test: two processes published and received 3 batches"

# The pin: built against pyarrow N, the wheel wants N.x.
want=$(in_venv "$venv/bin/python" -c "import quiver._build as b; print(b.PYARROW_VERSION.split('.')[0])")
other=$((want - 1))
if in_venv "$venv/bin/python" -m pip install -q --dry-run "$wheel" "pyarrow==$other.*" \
  >"$work/pin.txt" 2>&1; then
  fail "pip took the wheel beside pyarrow $other"
fi
grep -q "pyarrow" "$work/pin.txt" || fail "pip's refusal does not name pyarrow: $(tail -3 "$work/pin.txt")"
echo "wheel-test: pip refuses the wheel beside pyarrow $other.x"
in_venv "$venv/bin/python" -m pip install -q --only-binary=:all: "pyarrow==$other.*" 2>/dev/null ||
  fail "installing pyarrow $other by hand"
if in_venv "$venv/bin/python" -c "import quiver" 2>"$work/import.txt"; then
  fail "import quiver worked with pyarrow $other"
fi
grep -q "needs pyarrow $want.x" "$work/import.txt" ||
  fail "import quiver with pyarrow $other did not say what it needs: $(tail -2 "$work/import.txt")"
echo "wheel-test: import quiver with pyarrow $other says: $(grep -o "needs pyarrow $want.x[^:]*" "$work/import.txt" | head -1)"
echo "wheel-test: ok ($((SECONDS - start)) s)"
