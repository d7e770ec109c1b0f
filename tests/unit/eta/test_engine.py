"""The ETA engine (core.eta.engine): the heuristic, its interval, learned models, live ETAs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lastmile.core.eta import travel
from lastmile.core.eta.engine import (
    DEFAULT_HEURISTIC,
    HeuristicModel,
    HeuristicParams,
    LiveState,
    courier_delay_s,
    estimate,
    estimate_batch,
    live_estimate,
    quote_estimate,
)
from lastmile.core.eta.features import SERIES_BUCKETS, EtaFeatures
from lastmile.core.geo import Point

PICKUP = Point(lat=37.44, lng=-122.14)
DROPOFF = Point(lat=37.45, lng=-122.14)  # 1,111.95 m as the crow flies, 1,445.54 m by road
COURIER = Point(lat=37.43, lng=-122.14)

distances = st.floats(min_value=0, max_value=20_000)
preps = st.floats(min_value=0, max_value=7_200)
counts = st.integers(min_value=0, max_value=200)


def a_row(**overrides: object) -> EtaFeatures:
    base: dict[str, object] = dict(
        merchant_id="m1", region="r1", hour=12, weekday=2, distance_m=2_000.0,
        travel_s=travel.trip_s(2_600.0), prep_mean_s=600.0, prep_p90_s=900.0,
        orders_per_min=(0.5,) * SERIES_BUCKETS, idle_couriers=(3.0,) * SERIES_BUCKETS)
    return EtaFeatures(**{**base, **overrides})  # type: ignore[arg-type]


def test_the_quote_is_the_later_of_food_and_courier_then_ride_and_handovers() -> None:
    est = quote_estimate(distance_m=2_700.0, prep_s=900.0, waiting=0, idle=2, busy=0)
    # food (900 s) after the courier's leg (300 s); 2,700 m at 4.5 m/s = 600 s; + 240 s
    assert est.point_s == pytest.approx(900 + 600 + 240)
    assert est.p10_s == pytest.approx(est.point_s * DEFAULT_HEURISTIC.p10_ratio)
    assert est.p90_s == pytest.approx(est.point_s * DEFAULT_HEURISTIC.p90_ratio)
    assert est.model == DEFAULT_HEURISTIC.name


def test_a_queue_for_couriers_delays_the_order_by_one_cycle_share_per_order_ahead() -> None:
    params = HeuristicParams(courier_cycle_s=1_500)
    # 4 waiting, 1 idle: 4 orders ahead; 5 busy couriers free one every 1500 / 5 = 300 s
    assert float(courier_delay_s(4, 1, 5, params)) == pytest.approx(300 + 4 * 300)
    assert float(courier_delay_s(0, 3, 5, params)) == pytest.approx(300)


@given(distance=distances, prep=preps, waiting=counts, idle=counts, busy=counts)
def test_p10_is_never_above_the_point_nor_the_point_above_p90(distance: float, prep: float,
                                                               waiting: int, idle: int,
                                                               busy: int) -> None:
    est = quote_estimate(distance_m=distance, prep_s=prep, waiting=waiting, idle=idle,
                         busy=busy)
    assert 0 <= est.p10_s <= est.point_s <= est.p90_s


@given(a=distances, b=distances, prep=preps, waiting=counts, idle=counts)
def test_the_estimate_never_falls_as_distance_grows(a: float, b: float, prep: float,
                                                    waiting: int, idle: int) -> None:
    near, far = sorted((a, b))
    kw = dict(prep_s=prep, waiting=waiting, idle=idle, busy=3)
    lo, hi = quote_estimate(distance_m=near, **kw), quote_estimate(distance_m=far, **kw)
    assert lo.point_s <= hi.point_s and lo.p90_s <= hi.p90_s and lo.p10_s <= hi.p10_s


@given(waiting=counts, extra=st.integers(min_value=1, max_value=50), idle=counts)
def test_more_orders_waiting_never_make_the_estimate_earlier(waiting: int, extra: int,
                                                             idle: int) -> None:
    kw = dict(distance_m=3_000.0, prep_s=300.0, idle=idle, busy=4)
    assert (quote_estimate(waiting=waiting, **kw).point_s
            <= quote_estimate(waiting=waiting + extra, **kw).point_s)


def test_a_faster_vehicle_quotes_an_earlier_door_time() -> None:
    slow = quote_estimate(distance_m=5_000.0, prep_s=0.0, speed_mps=travel.SPEED_MPS["bicycle"])
    fast = quote_estimate(distance_m=5_000.0, prep_s=0.0, speed_mps=travel.SPEED_MPS["car"])
    assert fast.point_s < slow.point_s


def test_interval_ratios_that_do_not_bracket_the_point_are_refused() -> None:
    with pytest.raises(ValueError, match="0 < p10 <= 1 <= p90"):
        HeuristicParams(p10_ratio=1.1, p90_ratio=1.5)
    with pytest.raises(ValueError, match="pickup_leg_s"):
        HeuristicParams(pickup_leg_s=-1)


def test_the_heuristic_model_on_feature_rows_agrees_with_the_quote_rule() -> None:
    # 0.5 orders/min: over a 300 s leg 2.5 orders wait, over a 1500 s cycle 12.5 couriers
    # are busy; with 3 idle nobody queues: the courier takes the leg (300 s) < prep.
    row = a_row()
    got = estimate(row, HeuristicModel())
    want = quote_estimate(distance_m=2_600.0, prep_s=600.0, waiting=2.5, idle=3, busy=12.5)
    assert got.point_s == pytest.approx(want.point_s)
    assert (got.p10_s, got.p90_s) == pytest.approx((want.p10_s, want.p90_s))


def test_short_supply_in_the_last_bucket_pushes_the_estimate_later() -> None:
    calm = estimate(a_row(), HeuristicModel())
    short = estimate(a_row(idle_couriers=(3.0,) * 5 + (0.0,),
                           orders_per_min=(0.5,) * 5 + (2.0,)), HeuristicModel())
    assert short.point_s > calm.point_s


class CrossedQuantiles:
    """A learned model whose quantiles cross (and dip below zero) on some rows."""

    name = "crossed-1"

    def predict_batch(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = len(matrix)
        return np.full(n, 1_000.0), np.full(n, 1_500.0), np.full(n, -20.0)


def test_a_learned_model_s_crossed_quantiles_are_put_back_in_order() -> None:
    (est,) = estimate_batch([a_row()], CrossedQuantiles())
    assert (est.p10_s, est.point_s, est.p90_s) == (0.0, 1_000.0, 1_500.0)
    assert est.model == "crossed-1"


def test_a_batch_gives_one_estimate_per_row_in_order() -> None:
    rows = [a_row(travel_s=t) for t in (300.0, 900.0, 1_800.0)]
    points = [e.point_s for e in estimate_batch(rows, HeuristicModel())]
    assert points == sorted(points) and len(points) == 3
    assert estimate_batch([], HeuristicModel()) == []


def _live(status: str, **kw: object) -> LiveState:
    base: dict[str, object] = dict(now=1_000.0, status=status, courier_at=COURIER,
                                   pickup=PICKUP, dropoff=DROPOFF, speed_mps=5.0)
    return LiveState(**{**base, **kw})  # type: ignore[arg-type]


def test_live_after_pickup_the_ride_to_the_door_and_its_handover_remain() -> None:
    live = live_estimate(_live("picked_up", courier_at=PICKUP))
    assert live is not None
    assert live.remaining_m == pytest.approx(1_445.54, abs=0.01)
    assert live.estimate.point_s == pytest.approx(289.11 + travel.DROPOFF_HANDOVER_S, abs=0.01)


def test_live_the_eta_shrinks_as_the_courier_moves_towards_the_door() -> None:
    far = live_estimate(_live("picked_up", courier_at=PICKUP))
    mid = live_estimate(_live("picked_up", courier_at=Point(lat=37.445, lng=-122.14)))
    assert far is not None and mid is not None
    assert mid.estimate.point_s < far.estimate.point_s
    assert mid.estimate.p90_s - mid.estimate.p10_s < far.estimate.p90_s - far.estimate.p10_s


def test_live_a_courier_early_at_the_merchant_waits_for_the_food() -> None:
    live = live_estimate(_live("at_pickup", courier_at=PICKUP, food_ready_at=2_000.0))
    assert live is not None
    trip = travel.travel_s(PICKUP, DROPOFF, speed_mps=5.0)
    assert live.estimate.point_s == pytest.approx(2_000.0 - 1_000.0 + trip)


def test_live_a_stacked_order_s_stops_each_add_a_ride_and_a_handover() -> None:
    other = Point(lat=37.435, lng=-122.13)
    plain = live_estimate(_live("assigned"))
    stacked = live_estimate(_live("assigned", via=(other, PICKUP)))
    assert plain is not None and stacked is not None
    assert stacked.remaining_m > plain.remaining_m
    assert stacked.estimate.point_s > plain.estimate.point_s + travel.PICKUP_HANDOVER_S - 1


def test_there_is_no_live_eta_when_no_courier_holds_the_order() -> None:
    for status in ("placed", "confirmed", "ready", "unassigned", "delivered", "cancelled"):
        assert live_estimate(_live(status)) is None


def test_live_refuses_a_speed_that_is_not_positive() -> None:
    with pytest.raises(ValueError, match="speed_mps"):
        live_estimate(_live("picked_up", speed_mps=0.0))


@given(lat=st.floats(min_value=37.40, max_value=37.50), lng=st.floats(min_value=-122.2,
       max_value=-122.1), status=st.sampled_from(["assigned", "at_pickup", "picked_up",
                                                    "at_dropoff"]))
def test_live_interval_always_brackets_the_point(lat: float, lng: float, status: str) -> None:
    live = live_estimate(_live(status, courier_at=Point(lat=lat, lng=lng)))
    assert live is not None
    e = live.estimate
    assert 0 <= e.p10_s <= e.point_s <= e.p90_s and math.isfinite(e.p90_s)


def test_a_model_that_reads_whole_rows_is_served_through_its_estimates():
    from lastmile.core.eta.engine import estimate
    from lastmile.core.eta.features import EtaEstimate

    class ByMerchant:
        name = "by-merchant"

        def predict_batch(self, matrix):  # what a matrix-only path would give
            n = len(matrix)
            return np.full(n, 1.0), np.full(n, 1.0), np.full(n, 1.0)

        def estimates(self, rows):
            return [EtaEstimate(point_s=600.0 if r.merchant_id == "m1" else 900.0, p10_s=300.0,
                                p90_s=1200.0, model=self.name) for r in rows]

    got = estimate(a_row(merchant_id="m1"), ByMerchant())
    assert (got.point_s, got.model) == (600.0, "by-merchant")
