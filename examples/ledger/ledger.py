"""Ledger rows (a bookkeeping table: row number, code, name, unit, quantity, unit price, amount) (benchmark W1, docs/benchmarks.md), generated fast with numpy and deterministic."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

_FIELDS: list[pa.Field[Any]] = [
    pa.field("stt", pa.int32(), False),
    pa.field("code", pa.utf8(), False),
    pa.field("name", pa.utf8(), False),
    pa.field("unit", pa.utf8(), False),
    pa.field("quantity", pa.float64(), False),
    pa.field("unit_price", pa.float64(), False),
    pa.field("amount", pa.float64(), False),
]
SCHEMA = pa.schema(_FIELDS)

_CODES = np.array([f"C{i:08d}" for i in range(1000)], dtype=object)
_UNITS = np.array(["kg", "pcs", "box", "m", "l"], dtype=object)


def batch(rows: int, seed: int) -> pa.RecordBatch:
    """`rows` rows; 1,000 distinct codes so that per-code totals are meaningful."""
    rng = np.random.default_rng(seed)
    quantity = rng.integers(1, 1000, rows) / 10.0
    price = rng.integers(1, 100_000, rows) / 100.0
    names = np.char.add("Item ", np.char.zfill(rng.integers(0, 10**12, rows).astype(str), 19))
    name_array = pa.array(names, pa.utf8())
    if isinstance(name_array, pa.ChunkedArray):  # pyarrow splits large numpy str columns
        name_array = name_array.combine_chunks()
    return pa.record_batch([
        pa.array(np.arange(1, rows + 1, dtype=np.int32)),
        pa.array(_CODES[rng.integers(0, len(_CODES), rows)], pa.utf8()),
        name_array,
        pa.array(_UNITS[np.arange(rows) % len(_UNITS)], pa.utf8()),
        pa.array(quantity),
        pa.array(price),
        pa.array(quantity * price),
    ], schema=SCHEMA)
