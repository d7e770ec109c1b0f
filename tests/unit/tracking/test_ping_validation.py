import math

import pytest

from lastmile.core.errors import InvalidInput
from lastmile.core.tracking import TrackingPolicy, implied_speed_mps, validate_ping

from .builders import LAT0, LNG0, POLICY, T0, a_ping, raw_ping


def test_valid_raw_fields_become_a_ping():
    ping = validate_ping(**raw_ping(), policy=POLICY)
    assert (ping.lat, ping.lng, ping.accuracy_m) == (LAT0, LNG0, 10.0)
    assert (ping.speed_mps, ping.heading_deg) == (4.0, 90.0)


def test_speed_and_heading_are_optional():
    ping = validate_ping(**raw_ping(speed_mps=None, heading_deg=None), policy=POLICY)
    assert ping.speed_mps is None and ping.heading_deg is None


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("lat", 90.5, "invalid_lat"),
        ("lat", 85.06, "invalid_lat"),  # beyond what the live store can index
        ("lat", -85.06, "invalid_lat"),
        ("lat", -91, "invalid_lat"),
        ("lng", 180.1, "invalid_lng"),
        ("lat", math.nan, "invalid_lat"),
        ("lng", math.inf, "invalid_lng"),
        ("lat", "52.5", "invalid_lat"),
        ("lat", True, "invalid_lat"),
        ("accuracy_m", -1, "invalid_accuracy_m"),
        ("accuracy_m", 5_000.1, "invalid_accuracy_m"),
        ("speed_mps", -0.1, "invalid_speed_mps"),
        ("speed_mps", 91, "invalid_speed_mps"),
        ("heading_deg", 360, "invalid_heading_deg"),
        ("heading_deg", -1, "invalid_heading_deg"),
        ("device_id", "", "invalid_device_id"),
        ("device_id", "   ", "invalid_device_id"),
        ("device_id", "d" * 129, "invalid_device_id"),
        ("device_id", 42, "invalid_device_id"),
        ("courier_id", "", "invalid_courier_id"),
        ("client_ts", None, "invalid_client_ts"),
    ],
)
def test_bad_field_is_rejected_naming_the_field_and_rule(field, value, code):
    with pytest.raises(InvalidInput) as err:
        validate_ping(**raw_ping(**{field: value}), policy=POLICY)
    assert err.value.code == code
    assert err.value.field == field
    assert field in err.value.message


def test_client_clock_ahead_by_more_than_the_skew_tolerance_is_rejected():
    with pytest.raises(InvalidInput) as err:
        validate_ping(**raw_ping(client_ts=T0 + 31, received_ts=T0), policy=POLICY)
    assert (err.value.code, err.value.field) == ("ping_from_future", "client_ts")


def test_client_clock_ahead_within_the_skew_tolerance_is_accepted():
    ping = validate_ping(**raw_ping(client_ts=T0 + 30, received_ts=T0), policy=POLICY)
    assert ping.client_ts == T0 + 30


def test_ping_older_than_the_age_bound_is_rejected():
    with pytest.raises(InvalidInput) as err:
        validate_ping(**raw_ping(client_ts=T0 - 3_601, received_ts=T0), policy=POLICY)
    assert (err.value.code, err.value.field) == ("ping_too_old", "client_ts")


def test_bounds_come_from_the_policy():
    strict = TrackingPolicy(max_accuracy_m=50.0)
    with pytest.raises(InvalidInput):
        validate_ping(**raw_ping(accuracy_m=60.0), policy=strict)


def test_policy_refuses_non_positive_thresholds():
    with pytest.raises(InvalidInput) as err:
        TrackingPolicy(vmax_mps=0)
    assert err.value.field == "vmax_mps"


def test_implied_speed_discounts_both_accuracy_radii():
    a = a_ping(accuracy_m=50.0, client_ts=T0)
    b = a_ping(lat=LAT0 + 0.001, accuracy_m=50.0, client_ts=T0 + 1)  # ~111 m away
    assert implied_speed_mps(a, b, POLICY) == pytest.approx(11.2, abs=0.2)


def test_implied_speed_floors_the_time_between_fixes():
    a = a_ping(accuracy_m=0.0, client_ts=T0)
    b = a_ping(lat=LAT0 + 0.001, accuracy_m=0.0, client_ts=T0 + 0.001)
    assert implied_speed_mps(a, b, POLICY) == pytest.approx(111.2, abs=0.5)
