"""Pipeline node: reads channel `ledger` as polars DataFrames until the producer is done."""

import json
import time
from typing import cast

import polars as pl

import quiver

subscriber = quiver.Channel.attach("ledger").subscriber()
rows = batches = 0
amount = 0.0
first = None
for sample in subscriber:  # ends when the publisher is gone
    first = first or time.perf_counter()
    # A batch gives a DataFrame (polars types it DataFrame | Series); numeric columns: no copy.
    frame = cast(pl.DataFrame, pl.from_arrow(sample.to_arrow()))
    rows += frame.height
    amount += cast(float, frame["amount"].sum())  # float64: a float (typed int | float | Decimal)
    batches += 1
print(json.dumps({"node": "polars", "batches": batches, "rows": rows, "amount": amount}),
      flush=True)
