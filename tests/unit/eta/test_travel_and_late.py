"""The one travel model (core.eta.travel) and the one definition of late (core.eta.late)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lastmile.core.delivery.thresholds import ThresholdRules
from lastmile.core.eta import late, travel
from lastmile.core.geo import Point
from lastmile.core.model import VEHICLE_SPEED_MPS, Vehicle
from lastmile.core.pricing import ROAD_FACTOR, PricingPolicy

A = Point(lat=37.44, lng=-122.14)
B = Point(lat=37.45, lng=-122.14)  # 1,111.95 m as the crow flies


def test_road_distance_is_great_circle_times_the_road_factor() -> None:
    assert travel.road_m(A, B) == pytest.approx(1_111.95 * 1.3, abs=0.01)
    assert travel.route_m([A, B, A]) == pytest.approx(2 * travel.road_m(A, B))
    assert travel.route_m([A]) == 0


def test_a_trip_is_the_ride_plus_both_handovers() -> None:
    assert travel.travel_s(A, B) == pytest.approx(1_445.54 / 4.5 + 240, abs=0.01)
    assert travel.SERVICE_S == travel.PICKUP_HANDOVER_S + travel.DROPOFF_HANDOVER_S


def test_there_is_one_speed_table_and_one_road_factor() -> None:
    assert ROAD_FACTOR == travel.ROAD_FACTOR
    assert {v: VEHICLE_SPEED_MPS[v] for v in Vehicle} == {
        v: travel.SPEED_MPS[v.value] for v in Vehicle}
    assert PricingPolicy().courier_speed_mps == travel.DEFAULT_SPEED_MPS
    assert ThresholdRules().courier_speed_mps == travel.DEFAULT_SPEED_MPS
    assert PricingPolicy().service_s == travel.SERVICE_S


def test_an_unknown_vehicle_rides_at_the_default_speed() -> None:
    assert travel.speed_of("car") == 8.0
    assert travel.speed_of(None) == travel.speed_of("hovercraft") == travel.DEFAULT_SPEED_MPS


def test_a_speed_or_distance_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="speed_mps"):
        travel.ride_s(100.0, 0.0)
    with pytest.raises(ValueError, match="distance_m"):
        travel.ride_s(-1.0)


@given(st.floats(min_value=0, max_value=50_000), st.floats(min_value=0, max_value=50_000))
def test_a_longer_trip_never_takes_less_time(a: float, b: float) -> None:
    near, far = sorted((a, b))
    assert travel.trip_s(near) <= travel.trip_s(far)


def test_late_means_after_the_window_s_end_not_after_the_point() -> None:
    end = late.promised_end(eta_high_at=2_400.0)
    assert not late.is_late(2_000.0, end)  # after a point of 1,800, inside the window
    assert not late.is_late(2_400.0, end)  # exactly at the end: on time
    assert late.is_late(2_401.0, end)
    assert late.late_by_s(2_460.0, end) == 60 and late.late_by_s(100.0, end) == 0


def test_a_drive_drop_off_window_is_the_promise_when_there_is_one() -> None:
    assert late.promised_end(2_400.0, dropoff_window_end_at=3_000.0) == 3_000.0
    assert not late.is_late(2_900.0, late.promised_end(2_400.0, 3_000.0))


def test_a_grace_period_moves_the_line() -> None:
    assert not late.is_late(2_900.0, 2_400.0, grace_s=600)
    assert late.is_late(3_001.0, 2_400.0, grace_s=600)
