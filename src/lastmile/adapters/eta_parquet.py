"""The ETA history as a Parquet file (``lastmile eta export``) and back.

One row per order, flat columns: the features under ``core.eta.features.NUMERIC_COLUMNS``'
names (the series as ``orders_per_min_0..5`` and ``idle_couriers_0..5``, oldest bucket
first), ids and channel, the quote it was given, then how it ended. Times are epoch seconds
(UTC); durations seconds; money minor units. Outcome columns are null for a cancellation.
The file's metadata names the layout (``lastmile.schema``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from lastmile.core.eta.features import (
    EXTRA_COLUMNS,
    EXTRA_SERIES,
    SERIES_BUCKETS,
    EtaFeatures,
    EtaOutcome,
)
from lastmile.core.eta.history import Finish, HistoryRecord

SCHEMA_NAME = b"lastmile.eta_history/1"
_OUTCOMES = ("assign_s", "to_merchant_s", "wait_s", "to_consumer_s", "total_s")
_F64 = pa.float64()
SCHEMA = pa.schema([
    ("order_id", pa.string()), ("channel", pa.string()), ("region_id", pa.string()),
    ("merchant_id", pa.string()), ("placed_at", _F64),
    ("hour", pa.int8()), ("weekday", pa.int8()), ("distance_m", _F64), ("travel_s", _F64),
    ("prep_mean_s", _F64), ("prep_p90_s", _F64),
    *((f"orders_per_min_{i}", _F64) for i in range(SERIES_BUCKETS)),
    *((f"idle_couriers_{i}", _F64) for i in range(SERIES_BUCKETS)),
    ("items", pa.int32()), ("subtotal_minor", pa.int64()),
    *((name, _F64) for name in EXTRA_COLUMNS),  # null: not known (files before: absent)
    *((f"{name}_{i}", _F64) for name in EXTRA_SERIES for i in range(SERIES_BUCKETS)),
    ("quoted_low_s", _F64), ("quoted_s", _F64), ("quoted_high_s", _F64),
    ("status", pa.string()), ("finished_at", _F64), ("cancelled_from", pa.string()),
    ("prep_s", _F64), *((name, _F64) for name in _OUTCOMES),
], metadata={b"lastmile.schema": SCHEMA_NAME})


def _row(r: HistoryRecord) -> dict[str, Any]:
    f, fin = r.features, r.finish
    outcome = None if fin is None else fin.outcome
    return {
        "order_id": r.order_id, "channel": r.channel, "region_id": f.region,
        "merchant_id": f.merchant_id, "placed_at": r.placed_at, "hour": f.hour,
        "weekday": f.weekday, "distance_m": f.distance_m, "travel_s": f.travel_s,
        "prep_mean_s": f.prep_mean_s, "prep_p90_s": f.prep_p90_s,
        **{f"orders_per_min_{i}": v for i, v in enumerate(f.orders_per_min)},
        **{f"idle_couriers_{i}": v for i, v in enumerate(f.idle_couriers)},
        "items": f.items, "subtotal_minor": f.subtotal_minor,
        **{k: None if math.isnan(getattr(f, k)) else getattr(f, k) for k in EXTRA_COLUMNS},
        **{f"{k}_{i}": None if math.isnan(v) else v
           for k in EXTRA_SERIES for i, v in enumerate(getattr(f, k))},
        "quoted_low_s": r.quoted_low_s, "quoted_s": r.quoted_s,
        "quoted_high_s": r.quoted_high_s,
        "status": "open" if fin is None else fin.status,
        "finished_at": None if fin is None else fin.finished_at,
        "cancelled_from": None if fin is None else fin.cancelled_from,
        "prep_s": None if fin is None else fin.prep_s,
        **{k: None if outcome is None else getattr(outcome, k) for k in _OUTCOMES},
    }


def write_history(records: Sequence[HistoryRecord], path: Path) -> int:
    """Write ``records`` to ``path`` (replaced if it exists); returns the row count."""
    table = pa.Table.from_pylist([_row(r) for r in records], schema=SCHEMA)
    pq.write_table(table, path)
    return int(table.num_rows)


def read_history(path: Path) -> list[HistoryRecord]:
    """The records of a file ``write_history`` wrote; ValueError for another layout."""
    table = pq.read_table(path)
    got = (table.schema.metadata or {}).get(b"lastmile.schema")
    if got != SCHEMA_NAME:
        raise ValueError(f"{path} is not an ETA history export (layout {got!r}, expected "
                         f"{SCHEMA_NAME!r})")
    return [_record(row) for row in table.to_pylist()]


def _extras(row: dict[str, Any]) -> dict[str, Any]:
    """The fields after the cart (null or absent: unknown)."""
    out: dict[str, Any] = {k: math.nan if row.get(k) is None else row[k] for k in EXTRA_COLUMNS}
    out.update({k: tuple(math.nan if row.get(f"{k}_{i}") is None else row[f"{k}_{i}"]
                         for i in range(SERIES_BUCKETS)) for k in EXTRA_SERIES})
    return out


def _record(row: dict[str, Any]) -> HistoryRecord:
    features = EtaFeatures(
        merchant_id=row["merchant_id"], region=row["region_id"], hour=row["hour"],
        weekday=row["weekday"], distance_m=row["distance_m"], travel_s=row["travel_s"],
        prep_mean_s=row["prep_mean_s"], prep_p90_s=row["prep_p90_s"],
        orders_per_min=tuple(row[f"orders_per_min_{i}"] for i in range(SERIES_BUCKETS)),
        idle_couriers=tuple(row[f"idle_couriers_{i}"] for i in range(SERIES_BUCKETS)),
        items=row["items"], subtotal_minor=row["subtotal_minor"],
        **_extras(row))
    outcome = (None if any(row[k] is None for k in _OUTCOMES)
               else EtaOutcome(**{k: row[k] for k in _OUTCOMES}))
    finish = None if row["status"] == "open" else Finish(
        status=row["status"], finished_at=row["finished_at"], prep_s=row["prep_s"],
        outcome=outcome, cancelled_from=row["cancelled_from"])
    return HistoryRecord(order_id=row["order_id"], channel=row["channel"],
                         placed_at=row["placed_at"], features=features,
                         quoted_low_s=row["quoted_low_s"], quoted_s=row["quoted_s"],
                         quoted_high_s=row["quoted_high_s"], finish=finish)
