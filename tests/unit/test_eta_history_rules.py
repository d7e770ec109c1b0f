"""The ETA history's pure rules: supply series from minute counters, a merchant's
preparation statistics, and the stages of a finished order (core.eta.history)."""

import json
from dataclasses import replace

import pytest

from fakes import an_order
from lastmile.adapters.db import mapping as m
from lastmile.core.eta.history import (
    MIN_PREP_SAMPLES,
    MinuteCount,
    finish_of,
    minute_of,
    prep_stats,
    supply_series,
)
from lastmile.core.lifecycle import ArriveAtPickup, Assign, Unassign, decide
from lastmile.core.money import Money
from lastmile.core.orders import SYSTEM, Actor, ActorKind, Cancellation, OrderStatus

NOW = 1_767_268_830.0  # 30 s into its minute
CURRENT = minute_of(NOW)


def _minute(offset: int, orders: int = 0, idle: float = 0.0, samples: int = 0) -> MinuteCount:
    return MinuteCount(minute=CURRENT - offset, orders=orders, idle_sum=idle,
                       idle_samples=samples)


def test_orders_fall_into_five_minute_buckets_oldest_first():
    rows = [_minute(29, orders=5), _minute(25, orders=10), _minute(24, orders=5),
            _minute(3, orders=9)]
    per_min, _ = supply_series(rows, now=NOW, idle_now=0)
    # bucket 0: minutes -29..-25 (5 + 10 in 5 min); bucket 1: -24..-20; bucket 5: -4..now
    assert per_min[:5] == (3.0, 1.0, 0.0, 0.0, 0.0)
    assert per_min[5] == pytest.approx(9 / 4.5)  # 4 whole minutes and half the current one


def test_minutes_outside_the_window_are_ignored():
    rows = [_minute(30, orders=100, idle=50, samples=1), _minute(-1, orders=100)]
    per_min, idle = supply_series(rows, now=NOW, idle_now=2)
    assert per_min == (0.0,) * 6
    assert idle == (2.0,) * 6


def test_idle_couriers_are_the_mean_of_the_bucket_samples_carried_forward():
    rows = [_minute(20, idle=6, samples=2),  # bucket 1: mean 3
            _minute(8, idle=10, samples=2), _minute(7, idle=2, samples=2)]  # bucket 4: 3
    _, idle = supply_series(rows, now=NOW, idle_now=9)
    # bucket 0 has no sample before the first: the first known mean; 2 and 3 carry bucket 1's
    assert idle == (3.0, 3.0, 3.0, 3.0, 3.0, 9.0)


def test_the_idle_couriers_seen_now_are_a_sample_of_the_current_bucket():
    _, idle = supply_series([_minute(1, idle=4, samples=1)], now=NOW, idle_now=0)
    assert idle[-1] == 2.0


def test_prep_stats_need_a_few_orders_else_the_merchant_default_stands():
    assert prep_stats([100.0] * (MIN_PREP_SAMPLES - 1), default_s=600) == (600.0, 600.0)


def test_prep_stats_are_the_mean_and_interpolated_p90():
    samples = [float(s) for s in range(100, 1100, 100)]  # 100..1000
    mean, p90 = prep_stats(samples, default_s=0)
    assert mean == 550.0
    assert p90 == pytest.approx(910.0)  # numpy.percentile(samples, 90)


def _delivered():
    return an_order(placed_at=1000.0, status=OrderStatus.DELIVERED, courier_id="cou_1",
                     assigned_at=1100.0, at_pickup_at=1400.0, ready_at=1500.0,
                     picked_up_at=1600.0, delivered_at=2500.0)


def test_stages_of_a_delivered_order_add_up_to_its_click_to_door():
    finish = finish_of(_delivered(), now=9999.0)
    o = finish.outcome
    assert (o.assign_s, o.to_merchant_s, o.wait_s, o.to_consumer_s) == (100, 300, 200, 900)
    assert o.total_s == 1500 == o.assign_s + o.to_merchant_s + o.wait_s + o.to_consumer_s
    assert finish.status == "delivered" and finish.finished_at == 2500.0
    assert finish.prep_s == 500.0


def test_a_delivered_order_missing_a_stage_time_has_no_outcome():
    finish = finish_of(replace(_delivered(), at_pickup_at=None), now=9999.0)
    assert finish.status == "delivered" and finish.outcome is None


def test_a_cancelled_order_ends_with_no_stages_and_the_state_it_left():
    cancelled = an_order(status=OrderStatus.CANCELLED, cancellation=Cancellation(
        actor=Actor(kind=ActorKind.CONSUMER, id="con_1"), reason="late",
        from_status=OrderStatus.CONFIRMED, consumer_charge=Money.zero("USD"),
        courier_paid=False))
    finish = finish_of(cancelled, now=4000.0)
    assert (finish.status, finish.finished_at, finish.outcome, finish.cancelled_from) == (
        "cancelled", 4000.0, None, "confirmed")


def test_an_open_order_has_no_finish():
    assert finish_of(an_order(status=OrderStatus.PICKED_UP), now=1.0) is None


def test_acceptance_and_arrival_are_stamped_and_cleared_when_the_courier_drops_it():
    order = an_order(status=OrderStatus.CONFIRMED)
    courier = Actor(kind=ActorKind.COURIER, id="cou_1")
    assigned, _ = decide(order, Assign(courier_id="cou_1"), actor=courier, now=1200.0)
    arrived, _ = decide(assigned, ArriveAtPickup(), actor=courier, now=1500.0)
    assert (arrived.assigned_at, arrived.at_pickup_at) == (1200.0, 1500.0)
    dropped, _ = decide(arrived, Unassign(reason="flat tyre"), actor=SYSTEM, now=1600.0)
    assert (dropped.assigned_at, dropped.at_pickup_at) == (None, None)


def test_the_stage_times_survive_the_order_document():
    order = _delivered()
    stored = json.loads(json.dumps(m.order_row(order)))
    assert m.order_from(stored) == order
    del stored["doc"]["assigned_at"], stored["doc"]["at_pickup_at"]  # written before 0019
    old = m.order_from(stored)
    assert (old.assigned_at, old.at_pickup_at) == (None, None)
