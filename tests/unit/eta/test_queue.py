"""``heuristic-3`` (core.eta.queue): the courier queue played forward at quote time."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lastmile.core.eta.queue import (
    DEFAULT_QUEUE,
    QueueCourier,
    QueueOrder,
    QueueParams,
    QueueState,
    defers,
    plan,
    queue_estimate,
)

NOW = 1_000_000.0
# Exact arithmetic: road factor 1, no lag, no bundles, one courier's pace for the ride.
P = replace(DEFAULT_QUEUE, road_factor=1.0, dispatch_speed_mps=5.0, assign_lag_s=0.0, queue_drain=1.0,
            bundle_gap_s=0.0, ride_pool=1, pickup_service_s=100.0, dropoff_service_s=50.0)


def courier(x: float = 0.0, y: float = 0.0, free: float = NOW, speed: float = 5.0
            ) -> QueueCourier:
    return QueueCourier(x_m=x, y_m=y, free_s=free, speed_mps=speed)


def order(ready_in: float = 0.0, *, px: float = 1_000.0, dx: float = 2_000.0,
          merchant: str = "m1") -> QueueOrder:
    return QueueOrder(merchant_id=merchant, pickup_x_m=px, pickup_y_m=0.0, dropoff_x_m=dx,
                      dropoff_y_m=0.0, ready_s=NOW + ready_in)


def test_one_idle_courier_rides_to_the_merchant_then_the_door() -> None:
    p = plan(QueueState(now_s=NOW, couriers=(courier(),)), order(), P)
    # 1,000 m to the merchant at 5 m/s, a 100 s handover, 1,000 m to the door, 50 s.
    assert p.courier_s == pytest.approx(200.0)
    assert p.door_s == pytest.approx(200.0 + 100.0 + 200.0 + 50.0)
    assert p.courier_bound


def test_food_later_than_the_courier_sets_the_pickup() -> None:
    p = plan(QueueState(now_s=NOW, couriers=(courier(),)), order(ready_in=900.0), P)
    assert p.door_s == pytest.approx(900.0 + 100.0 + 200.0 + 50.0)
    assert not p.courier_bound and p.food_s == pytest.approx(900.0)


def test_a_busy_courier_starts_from_where_and_when_its_route_ends() -> None:
    busy = courier(x=1_000.0, free=NOW + 600.0)  # frees up at the merchant in 10 min
    p = plan(QueueState(now_s=NOW, couriers=(busy,)), order(), P)
    assert p.courier_s == pytest.approx(600.0)


def test_orders_ready_first_take_the_courier_first() -> None:
    ahead = order(ready_in=0.0, px=1_000.0, dx=1_000.0, merchant="m0")  # to its own door
    alone = plan(QueueState(now_s=NOW, couriers=(courier(),)), order(ready_in=60.0), P)
    queued = plan(QueueState(now_s=NOW, couriers=(courier(),), waiting=(ahead,)),
                  order(ready_in=60.0), P)
    # The waiting order's courier: 200 s there, 100 s handover, 0 m, 50 s: free at 350 s
    # at x = 1,000, the new order's merchant.
    assert alone.courier_s == pytest.approx(200.0)
    assert queued.courier_s == pytest.approx(350.0)


def test_an_order_ready_later_does_not_delay_the_new_one() -> None:
    later = order(ready_in=3_000.0, merchant="m0")
    p = plan(QueueState(now_s=NOW, couriers=(courier(),), waiting=(later,)), order(), P)
    assert p.courier_s == pytest.approx(200.0)


def test_the_dispatcher_ranks_at_one_speed_but_the_courier_rides_at_its_own() -> None:
    near_bike = courier(x=500.0, speed=2.5)  # ranked first at 5 m/s: 100 s away
    far_car = courier(x=-500.0, speed=10.0)  # 300 s at the ranking speed
    p = plan(QueueState(now_s=NOW, couriers=(near_bike, far_car)), order(), P)
    assert p.courier_s == pytest.approx(200.0)  # 500 m at the bike's own 2.5 m/s
    assert p.door_s == pytest.approx(200.0 + 100.0 + 400.0 + 50.0)


def test_the_ride_pool_times_the_ride_at_the_mean_pace_of_the_first_ranked() -> None:
    near_bike, far_car = courier(x=500.0, speed=2.5), courier(x=-500.0, speed=10.0)
    p = plan(QueueState(now_s=NOW, couriers=(near_bike, far_car)), order(),
             replace(P, ride_pool=2))
    pace = (1 / 2.5 + 1 / 10.0) / 2
    assert p.door_s == pytest.approx(200.0 + 100.0 + 1_000.0 * pace + 50.0)


def test_same_merchant_orders_ready_close_together_share_a_courier() -> None:
    first = order(ready_in=600.0, dx=1_500.0)
    bundled = replace(P, bundle_gap_s=300.0)
    p = plan(QueueState(now_s=NOW, couriers=(courier(), courier(x=1_000.0)),
                        waiting=(first,)), order(ready_in=700.0), bundled)
    # Collected with the first at 700 + 100 s, delivered after its door (1,500: 100 s
    # on, 50 s there), then 500 m back to 2,000 (100 s) and 50 s.
    assert p.door_s == pytest.approx(800.0 + 100.0 + 50.0 + 100.0 + 50.0)
    apart = plan(QueueState(now_s=NOW, couriers=(courier(), courier(x=1_000.0)),
                            waiting=(first,)), order(ready_in=1_000.0), bundled)
    assert apart.door_s == pytest.approx(1_000.0 + 100.0 + 200.0 + 50.0)  # its own courier


def test_no_courier_on_shift_waits_the_no_courier_delay() -> None:
    p = plan(QueueState(now_s=NOW, couriers=()), order(), P)
    assert p.courier_s == P.no_courier_s and p.courier_bound


def test_the_interval_uses_the_pair_of_the_binding_side() -> None:
    idle = QueueState(now_s=NOW, couriers=(courier(),))
    food = queue_estimate(idle, order(ready_in=900.0), P)
    assert (food.p10_s, food.p90_s) == pytest.approx(
        (food.point_s * P.food_p10, food.point_s * P.food_p90))
    late = queue_estimate(idle, order(), P)
    assert (late.p10_s, late.p90_s) == pytest.approx(
        (late.point_s * P.courier_p10, late.point_s * P.courier_p90))
    assert late.model == "heuristic-3"


@pytest.mark.parametrize("bad", [dict(road_factor=0.0), dict(assign_lag_s=-1.0),
                                 dict(ride_pool=0), dict(food_p10=1.2),
                                 dict(courier_p90=math.inf), dict(dispatch_speed_mps=math.nan)])
def test_params_refuse_values_outside_their_rules(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        QueueParams(**bad)  # type: ignore[arg-type]


def test_a_courier_needs_a_positive_speed() -> None:
    with pytest.raises(ValueError, match="speed_mps"):
        courier(speed=0.0)


xs = st.floats(min_value=-5_000, max_value=5_000)


@given(st.lists(st.tuples(xs, xs, st.floats(0, 3_600)), min_size=1, max_size=8),
       st.lists(st.tuples(xs, xs, st.floats(0, 3_600)), max_size=10), st.floats(0, 3_600),
       xs, xs)
def test_more_orders_ahead_never_make_the_door_sooner_and_the_window_holds_the_point(
        couriers: list[tuple[float, float, float]],
        ahead: list[tuple[float, float, float]], ready_in: float, px: float, dx: float) -> None:
    # One speed, the one the dispatcher ranks at: each order ahead only moves a courier's
    # arrival later (a faster courier ranked second could otherwise take over).
    cs = tuple(courier(x=x, y=y, free=NOW + f) for x, y, f in couriers)
    new = order(ready_in=ready_in, px=px, dx=dx)
    waiting = tuple(order(ready_in=r, px=x, dx=y, merchant=f"w{i}")
                    for i, (x, y, r) in enumerate(ahead))
    params = replace(P, ride_pool=1)
    alone = plan(QueueState(now_s=NOW, couriers=cs), new, params)
    queued = plan(QueueState(now_s=NOW, couriers=cs, waiting=waiting), new, params)
    assert queued.door_s >= alone.door_s - 1e-6
    est = queue_estimate(QueueState(now_s=NOW, couriers=cs, waiting=waiting), new)
    assert 0 <= est.p10_s <= est.point_s <= est.p90_s
    assert est.point_s >= new.ready_s - NOW


def test_a_draining_queue_holds_couriers_back_for_part_of_each_trip_ahead() -> None:
    ahead = order(ready_in=0.0, px=1_000.0, dx=1_000.0, merchant="m0")
    state = QueueState(now_s=NOW, couriers=(courier(),), waiting=(ahead,))
    whole = plan(state, order(ready_in=60.0), P)
    half = plan(state, order(ready_in=60.0), replace(P, queue_drain=0.5))
    # The trip ahead holds the courier 350 s; half of it: free at 175 s, already at x=1,000.
    assert whole.courier_s == pytest.approx(350.0)
    assert half.courier_s == pytest.approx(175.0)
    # The new order's own trip is whole: pickup at its food (60 s) or the courier, then on.
    assert half.door_s == pytest.approx(175.0 + 100.0 + 200.0 + 50.0)


def test_more_orders_waiting_than_couriers_times_the_backlog_limit_defers() -> None:
    two = (order(merchant="a"), order(merchant="b"))
    assert not defers(QueueState(now_s=NOW, couriers=(courier(), courier()), waiting=two), P)
    assert defers(QueueState(now_s=NOW, couriers=(courier(),), waiting=two), P)
    assert not defers(QueueState(now_s=NOW, couriers=(courier(),), waiting=two),
                      replace(P, max_backlog=2.0))
