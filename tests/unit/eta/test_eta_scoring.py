"""Evaluation figures: errors, the promised window, PIT levels, couriers short."""

from __future__ import annotations

import numpy as np
import pytest

from lastmile.core.eta.scoring import metrics, pit_histogram, short_supply

from .builders import COL, a_table


def test_metrics_on_literal_deliveries():
    y = np.array([100.0, 200.0, 300.0, 400.0])
    point = np.array([110.0, 180.0, 300.0, 500.0])
    m = metrics(point, point - 50, point + 50, y)
    assert m["mae_s"] == pytest.approx(32.5)
    assert m["coverage80"] == 0.75 and m["inside_window"] == 0.75
    assert m["late_share"] == 0.0  # the one miss arrived early
    assert m["pit"] == pytest.approx([2.5, 0.625, 1.25, 0.0])  # 1 below, 1, 2 (300 = point), 0


def test_no_deliveries_is_zero_orders():
    empty = np.empty(0)
    assert metrics(empty, empty, empty, empty) == {"orders": 0}


def test_a_calibrated_pit_histogram_is_flat():
    h = pit_histogram(np.random.default_rng(0).uniform(size=100_000))
    assert h == pytest.approx([1.0] * 10, abs=0.05)


def test_couriers_are_short_when_recent_orders_outnumber_idle_couriers():
    t = a_table(2, seed=1)
    t.matrix[:, COL["orders_per_min_5"]] = [1.0, 1.0]  # 5 orders in the last bucket
    t.matrix[:, COL["idle_couriers_5"]] = [2.0, 6.0]
    assert short_supply(t.matrix).tolist() == [True, False]
