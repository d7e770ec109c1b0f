"""The queue-ahead features in the shared schema: defaults, checks, storage, cached tables,
and a LightGBM model that learns its excess over the queue's point."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from lastmile.adapters.db.repositories_eta import features_from, record_row
from lastmile.adapters.eta_parquet import read_history, write_history
from lastmile.core.eta.features import (
    EXTRA_COLUMNS,
    EXTRA_SERIES,
    NUMERIC_COLUMNS,
    UNKNOWN_SERIES,
    EtaFeatures,
    EtaOutcome,
    numeric_matrix,
)
from lastmile.core.eta.history import Finish, HistoryRecord
from lastmile.core.eta.quantile_gbm import from_parts, to_parts, train_two_stage
from lastmile.core.eta.table import STAGES, EtaTable, concat, table_from_rows
from lastmile.sim.eta_cache import cached_table

from .builders import COL, a_table


def features(**kw) -> EtaFeatures:
    base = dict(merchant_id="m1", region="r1", hour=12, weekday=3, distance_m=1500.0,
                travel_s=600.0, prep_mean_s=700.0, prep_p90_s=900.0,
                orders_per_min=(1.0,) * 6, idle_couriers=(2.0,) * 6)
    return EtaFeatures(**{**base, **kw})


QUEUE = dict(orders_ahead=3.0, orders_ahead_near=1.0, couriers_on_shift=12.0,
             committed_orders=4.0, busy_backlog_s=350.0, queue_pickup_s=820.0,
             merchant_pickup_delay_s=45.0,
             assign_delay_s=(math.nan, 300.0, 280.0, 410.0, 390.0, 500.0),
             pickup_delay_s=(0.0, 30.0, math.nan, 60.0, 90.0, 120.0))


def test_a_source_that_does_not_know_the_queue_leaves_it_unknown():
    f = features()
    assert all(math.isnan(getattr(f, k)) for k in EXTRA_COLUMNS)
    assert f.assign_delay_s == UNKNOWN_SERIES and f.pickup_delay_s == UNKNOWN_SERIES
    row = numeric_matrix([f])[0]
    assert len(row) == len(NUMERIC_COLUMNS)
    assert np.isnan(row[COL["queue_pickup_s"]]) and np.isnan(row[COL["pickup_delay_s_5"]])


def test_the_queue_fields_land_in_their_named_columns():
    row = numeric_matrix([features(**QUEUE)])[0]
    assert row[COL["queue_pickup_s"]] == 820.0 and row[COL["orders_ahead_near"]] == 1.0
    assert row[COL["assign_delay_s_5"]] == 500.0 and np.isnan(row[COL["assign_delay_s_0"]])
    assert row[COL["pickup_delay_s_0"]] == 0.0 and row[COL["pickup_delay_s_5"]] == 120.0


@pytest.mark.parametrize(("field", "value", "rule"), [
    ("orders_ahead", -1.0, "orders_ahead must be >= 0"),
    ("assign_delay_s", (1.0,) * 5, "assign_delay_s must have 6 buckets"),
    ("pickup_delay_s", (0.0, 0.0, -5.0, 0.0, 0.0, 0.0), "pickup_delay_s must be >= 0"),
])
def test_bad_queue_fields_are_refused_naming_them(field, value, rule):
    with pytest.raises(ValueError, match=rule):
        features(**{field: value})


def record(f: EtaFeatures) -> HistoryRecord:
    out = EtaOutcome(assign_s=60.0, to_merchant_s=300.0, wait_s=120.0, to_consumer_s=700.0,
                     total_s=1180.0)
    return HistoryRecord(order_id="o1", channel="marketplace", placed_at=1.0e9, features=f,
                         quoted_low_s=900.0, quoted_s=1200.0, quoted_high_s=1800.0,
                         finish=Finish(status="delivered", finished_at=1.0e9 + 1180.0,
                                       prep_s=650.0, outcome=out))


def same(a: EtaFeatures, b: EtaFeatures) -> bool:
    return bool(np.array_equal(numeric_matrix([a]), numeric_matrix([b]), equal_nan=True))


def test_the_queue_fields_survive_the_history_table_and_the_parquet_export(tmp_path):
    f = features(**QUEUE)
    assert same(features_from(record_row(record(f))), f)
    write_history([record(f), record(features())], tmp_path / "h.parquet")
    back = read_history(tmp_path / "h.parquet")
    assert same(back[0].features, f) and same(back[1].features, features())


def test_a_history_row_written_before_the_queue_fields_reads_them_as_unknown():
    row = record_row(record(features(**QUEUE)))
    row["placement_state"] = {k: v for k, v in row["placement_state"].items()
                              if k in EXTRA_COLUMNS[:5]}
    f = features_from(row)
    assert math.isnan(f.queue_pickup_s) and f.assign_delay_s == UNKNOWN_SERIES
    assert set(EXTRA_SERIES) <= set(record_row(record(f))["placement_state"])


def test_a_cached_table_of_fewer_columns_reads_back_with_the_new_ones_unknown(tmp_path):
    t = a_table(5, seed=1)
    path = tmp_path / "old.npz"
    old = t.matrix[:, :COL["orders_ahead"]]  # a file written before the queue columns
    np.savez(path, matrix=old, merchant=t.merchant, source=t.source, total_s=t.total_s)
    back = cached_table(path, lambda: pytest.fail("must not rebuild"))
    assert back.matrix.shape == t.matrix.shape and back.stages is None
    assert np.array_equal(back.matrix[:, :old.shape[1]], old)
    assert np.isnan(back.matrix[:, old.shape[1]:]).all()
    np.savez(path, matrix=np.hstack([t.matrix, t.matrix]), merchant=t.merchant,
             source=t.source, total_s=t.total_s)
    with pytest.raises(ValueError, match="more than"):
        cached_table(path, lambda: t)


def test_tables_keep_the_stages_through_the_cache_take_and_concat(tmp_path):
    f = features(**QUEUE)
    out = EtaOutcome(assign_s=60.0, to_merchant_s=300.0, wait_s=120.0, to_consumer_s=700.0,
                     total_s=1180.0)
    t = table_from_rows([f, f], [out, replace(out, wait_s=0.0, total_s=1060.0)], source="x")
    assert t.stages is not None and t.stages.shape == (2, len(STAGES))
    assert np.array_equal(t.stages.sum(axis=1), t.total_s)
    back = cached_table(tmp_path / "t.npz", lambda: t)
    back = cached_table(tmp_path / "t.npz", lambda: pytest.fail("must read the file"))
    assert back.stages is not None and np.array_equal(back.stages, t.stages)
    assert concat([back, back.take(np.array([1]))]).stages.shape == (3, 4)
    assert concat([back, a_table(2, seed=1)]).stages is None  # one source lacks them


def queue_table(n: int, seed: int) -> EtaTable:
    """Durations that are the queue's pickup plus the trip, plus noise: the queue explains
    what the heuristic's counts cannot."""
    t = a_table(n, seed=seed)
    rng = np.random.default_rng(seed + 100)
    m = t.matrix.copy()
    pickup = m[:, COL["prep_mean_s"]] + rng.exponential(600.0, n)
    m[:, COL["queue_pickup_s"]] = pickup
    return EtaTable(matrix=m, merchant=t.merchant, source=t.source,
                    total_s=pickup + m[:, COL["travel_s"]] + rng.normal(0.0, 30.0, n))


def test_a_model_on_the_queue_base_learns_the_queue_and_round_trips():
    fit, cal, test = queue_table(2000, 1), queue_table(600, 2), queue_table(1000, 3)
    on_queue = train_two_stage(fit, cal, rounds=30, base="queue")
    on_heuristic = train_two_stage(fit, cal, rounds=30)
    mae = {name: float(np.mean(np.abs(m.predict_batch(test.matrix)[0] - test.total_s)))
           for name, m in (("queue", on_queue), ("heuristic", on_heuristic))}
    assert mae["queue"] < 60.0 and mae["queue"] < mae["heuristic"]
    meta, texts = to_parts(on_queue)
    assert meta["target"] == "total_s - queue_point_s"
    back = from_parts(meta, texts)
    assert np.allclose(back.predict_batch(test.matrix)[0], on_queue.predict_batch(test.matrix)[0])
    with pytest.raises(ValueError, match="target"):
        from_parts({**meta, "target": "total_s"}, texts)


def test_an_unknown_base_is_refused_naming_it():
    with pytest.raises(ValueError, match="base must be one of"):
        train_two_stage(queue_table(50, 1), queue_table(20, 2), rounds=2, base="median")
