"""Pipeline node: publishes Ledger batches on channel `ledger` and reports what it sent."""

import argparse
import json
import sys
import time

import pyarrow.compute as pc

import quiver
from ledger import batch

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--batches", type=int, default=10)
parser.add_argument("--rows", type=int, default=100_000)
args = parser.parse_args()

publisher = quiver.Channel.attach("ledger").publisher()
batches = [batch(args.rows, seed) for seed in range(args.batches)]  # made before the clock
# Every node the pipeline file subscribes to `ledger` (quiver run says how many).
try:
    publisher.wait_for_subscribers(timeout=30)
except quiver.TimeoutError as e:
    sys.exit(f"producer: {e}")

started = time.monotonic()  # CLOCK_MONOTONIC, the clock the C++ nodes read too
start = time.perf_counter()
for b in batches:
    publisher.publish(b)
seconds = time.perf_counter() - start
total = sum(pc.sum(b.column("amount")).as_py() for b in batches)
print(json.dumps({"node": "producer", "batches": args.batches, "rows": args.rows * args.batches,
                  "bytes": sum(b.nbytes for b in batches), "seconds": seconds,
                  "amount": total, "started": started}), flush=True)
