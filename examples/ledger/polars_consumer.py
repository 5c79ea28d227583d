"""Pipeline node: reads channel `ledger` as polars DataFrames until the producer is done."""

import json
import time

import polars as pl

import quiver

subscriber = quiver.Channel.attach("ledger").subscriber()
rows = batches = 0
amount = 0.0
first = None
for sample in subscriber:  # ends when the publisher is gone
    first = first or time.perf_counter()
    frame = pl.from_arrow(sample.to_arrow())  # numeric columns: no copy
    rows += frame.height
    amount += frame["amount"].sum()
    batches += 1
print(json.dumps({"node": "polars", "batches": batches, "rows": rows, "amount": amount}),
      flush=True)
