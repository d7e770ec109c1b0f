import pytest
from hypothesis import given
from hypothesis import strategies as st

from lastmile.core.errors import InvalidInput
from lastmile.core.geo import Point, Polygon, bounding_box, haversine_m
from lastmile.core.money import Money


def test_money_refuses_mixing_currencies():
    with pytest.raises(InvalidInput) as err:
        Money(amount_minor=1, currency="USD") + Money(amount_minor=1, currency="EUR")
    assert err.value.code == "currency_mismatch"


def test_money_rounds_half_to_even_in_one_place():
    assert Money(amount_minor=25, currency="USD").times("0.5").amount_minor == 12
    assert Money(amount_minor=35, currency="USD").times("0.5").amount_minor == 18


def test_money_prints_with_the_currency_exponent():
    assert str(Money(amount_minor=1234, currency="USD")) == "12.34 USD"
    assert str(Money(amount_minor=1234, currency="JPY")) == "1234 JPY"


def test_currency_must_be_iso_code():
    with pytest.raises(InvalidInput, match="3-letter"):
        Money(amount_minor=1, currency="usd")


def test_point_names_the_field_out_of_range():
    with pytest.raises(InvalidInput) as err:
        Point(lat=91, lng=0)
    assert err.value.field == "lat" and "got 91" in err.value.message


def test_haversine_of_one_degree_of_latitude_is_about_111_km():
    assert haversine_m(Point(lat=0, lng=0), Point(lat=1, lng=0)) == pytest.approx(111_195, rel=1e-3)


@given(st.floats(-60, 60), st.floats(-170, 170), st.floats(10, 20_000))
def test_bounding_box_contains_the_circle(lat, lng, radius):
    center = Point(lat=lat, lng=lng)
    lo_lat, lo_lng, hi_lat, hi_lng = bounding_box(center, radius)
    north = Point(lat=min(90, lat + (hi_lat - lat) * 0.999), lng=lng)
    assert haversine_m(center, north) <= radius * 1.001
    assert lo_lat <= lat <= hi_lat and lo_lng <= lng <= hi_lng


def test_polygon_contains_inside_and_not_outside():
    square = Polygon(vertices=(Point(lat=0, lng=0), Point(lat=0, lng=1), Point(lat=1, lng=1),
                               Point(lat=1, lng=0)))
    assert square.contains(Point(lat=0.5, lng=0.5))
    assert not square.contains(Point(lat=1.5, lng=0.5))
