"""The consumer feed's live ETA: remaining road distance over the vehicle's speed, plus the
handovers still ahead (the ETA engine's live estimate, core.eta.engine)."""

from __future__ import annotations

import pytest

from lastmile.app.dashboard import live_eta
from lastmile.core.errors import InvalidInput
from lastmile.core.geo import Point
from lastmile.core.orders import OrderStatus

# Worked by hand: each leg is 0.01 degree of latitude = 6,371,008.8 m x pi/180 x 0.01
# = 1,111.95 m as the crow flies, 1,445.54 m by road (x 1.3), 289.11 s at 5 m/s.
PICKUP = Point(lat=37.44, lng=-122.14)
DROPOFF = Point(lat=37.45, lng=-122.14)
COURIER = Point(lat=37.43, lng=-122.14)
ROAD_LEG_M = 1445.54
HANDOVER_S = 120.0  # core.eta.travel: at the merchant and at the door


def test_after_pickup_only_the_ride_to_the_consumer_remains() -> None:
    eta = live_eta(now=1000.0, courier_at=PICKUP, speed_mps=5.0, status=OrderStatus.PICKED_UP,
                   pickup=PICKUP, dropoff=DROPOFF)
    assert eta is not None
    assert eta.remaining_m == pytest.approx(ROAD_LEG_M, abs=0.01)
    assert eta.eta_at == pytest.approx(1000.0 + 289.11 + HANDOVER_S, abs=0.01)


def test_before_pickup_the_courier_rides_to_the_merchant_then_to_the_consumer() -> None:
    eta = live_eta(now=0.0, courier_at=COURIER, speed_mps=5.0, status=OrderStatus.ASSIGNED,
                   pickup=PICKUP, dropoff=DROPOFF)
    assert eta is not None
    assert eta.remaining_m == pytest.approx(2 * ROAD_LEG_M, abs=0.01)  # 2,891.07 m
    assert eta.duration_s == pytest.approx(578.21 + 2 * HANDOVER_S, abs=0.01)


def test_a_courier_early_at_the_merchant_waits_for_the_food() -> None:
    eta = live_eta(now=0.0, courier_at=PICKUP, speed_mps=5.0, status=OrderStatus.AT_PICKUP,
                   pickup=PICKUP, dropoff=DROPOFF, food_ready_at=900.0)
    assert eta is not None
    assert eta.eta_at == pytest.approx(900.0 + HANDOVER_S + 289.11 + HANDOVER_S, abs=0.01)


def test_a_faster_vehicle_gives_an_earlier_eta() -> None:
    slow, fast = (live_eta(now=0.0, courier_at=COURIER, speed_mps=v, status=OrderStatus.PICKED_UP,
                           pickup=PICKUP, dropoff=DROPOFF) for v in (4.5, 8.0))
    assert slow is not None and fast is not None
    assert fast.eta_at < slow.eta_at


def test_there_is_no_live_eta_without_a_courier_carrying_the_order() -> None:
    for status in (OrderStatus.PLACED, OrderStatus.CONFIRMED, OrderStatus.DELIVERED):
        assert live_eta(now=0.0, courier_at=COURIER, speed_mps=5.0, status=status,
                        pickup=PICKUP, dropoff=DROPOFF) is None


def test_a_non_positive_speed_is_refused() -> None:
    with pytest.raises(InvalidInput) as info:
        live_eta(now=0.0, courier_at=COURIER, speed_mps=0.0, status=OrderStatus.PICKED_UP,
                 pickup=PICKUP, dropoff=DROPOFF)
    assert info.value.field == "speed_mps"


def test_the_live_eta_carries_an_interval_around_its_point() -> None:
    eta = live_eta(now=0.0, courier_at=COURIER, speed_mps=5.0, status=OrderStatus.PICKED_UP,
                   pickup=PICKUP, dropoff=DROPOFF)
    assert eta is not None and eta.p10_at is not None and eta.p90_at is not None
    assert eta.p10_at < eta.eta_at < eta.p90_at
