"""`make demo`: runs examples/ledger.toml under `quiver run`, then moves the same 100k rows
as JSON lines over a stdio pipe into a C++ parser (the way such pipelines are often built today), and prints
one report comparing the two, both measured in this run."""

import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples" / "ledger"))
from ledger import batch  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--build", default=str(ROOT / "build"), help="build directory")
parser.add_argument("--pipeline", default=str(ROOT / "examples" / "ledger.toml"))
args = parser.parse_args()
build = pathlib.Path(args.build)
# The pipeline names its programs; they come from this build and this Python.
env = {**os.environ,
       "PATH": f"{build}:{pathlib.Path(sys.executable).parent}:{os.environ['PATH']}"}

# 1. The pipeline, through shared memory.
print(f"== quiver run {os.path.relpath(args.pipeline, ROOT)}", flush=True)
run = subprocess.run([str(build / "quiver"), "run", args.pipeline], cwd=ROOT, env=env,
                     capture_output=True, text=True, timeout=300)
sys.stdout.write(run.stdout)
sys.stderr.write(run.stderr)
if run.returncode != 0:
    sys.exit(f"demo: the pipeline failed (exit {run.returncode})")
reports = {}
for line in run.stdout.splitlines():
    match = re.search(r"(\{\"node\".*\})\s*$", line)
    if match:
        report = json.loads(match.group(1))
        reports[report["node"]] = report
missing = {"producer", "aggregate", "polars"} - reports.keys()
if missing:
    sys.exit(f"demo: no report from {sorted(missing)}")
producer, aggregate, polars = reports["producer"], reports["aggregate"], reports["polars"]
for node in (aggregate, polars):
    if node["rows"] != producer["rows"] or abs(node["amount"] - producer["amount"]) > 1e-6 * abs(producer["amount"]):
        sys.exit(f"demo: {node['node']} got {node['rows']} rows / {node['amount']}, the producer "
                 f"sent {producer['rows']} / {producer['amount']}")
quiver_seconds = aggregate["done"] - producer["started"]

# 2. The same kind of rows as JSON lines over a pipe, parsed in C++.
rows = producer["rows"] // producer["batches"]
legacy = batch(rows, 0).to_pylist()
consumer = subprocess.Popen([str(build / "ledger_json_consumer")], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
assert consumer.stdin is not None and consumer.stdout is not None  # both PIPE
start = time.perf_counter()
consumer.stdin.write("".join(json.dumps(row) + "\n" for row in legacy))
consumer.stdin.close()
json_out = json.loads(consumer.stdout.read())
json_seconds = time.perf_counter() - start
consumer.wait()
if json_out["rows"] != rows:
    sys.exit(f"demo: the JSON consumer got {json_out['rows']} rows, not {rows}")

move = producer["seconds"] / producer["batches"]  # one copy into shared memory; reads copy nothing
mb = producer["bytes"] / 1e6
print(f"""
== Ledger demo report (one run, this machine)
  rows moved        {producer['rows']:,} in {producer['batches']} batches of {rows:,} ({mb:.1f} MB of Arrow data)
  consumers         C++ aggregate ({aggregate['codes']} codes, sum(amount) = {aggregate['amount']:,.2f})
                    and polars: both match the producer's sum
  quiver            moving: {move * 1e3:.2f} ms per {rows:,} rows ({mb / producer['seconds']:,.0f} MB/s; the one copy
                    into shared memory; the C++ and polars readers copy nothing)
                    end to end: {quiver_seconds * 1e3:.1f} ms from the first publish until C++ had totalled
                    the last batch, of which {aggregate['aggregate_seconds'] * 1e3:.1f} ms is the per-code totalling itself
  JSON over stdio   {json_seconds * 1e3:.1f} ms for {rows:,} rows (serialise in Python, pipe, parse in C++)
  ratio             moving {rows:,} rows: quiver {json_seconds / move:,.0f}x faster than JSON over stdio
""")
