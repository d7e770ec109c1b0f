"""Core values refuse what has no meaning: cross-currency ordering, unknown time zones."""

from __future__ import annotations

import operator
from collections.abc import Callable

import pytest

from lastmile.core.errors import InvalidInput
from lastmile.core.geo import Point, Polygon
from lastmile.core.ids import RegionId
from lastmile.core.model import Region
from lastmile.core.money import Money

USD = Money(amount_minor=1_000, currency="USD")
EUR = Money(amount_minor=1_000, currency="EUR")


@pytest.mark.parametrize("compare", [operator.lt, operator.le, operator.gt, operator.ge])
def test_ordering_money_of_two_currencies_raises(compare: Callable[[Money, Money], bool]) -> None:
    with pytest.raises(InvalidInput) as err:
        compare(USD, EUR)
    assert err.value.code == "currency_mismatch"


def test_money_of_one_currency_orders_by_amount() -> None:
    small = Money(amount_minor=5, currency="USD")
    assert small < USD and small <= USD and USD > small and USD >= USD
    assert sorted([USD, small]) == [small, USD]


def test_money_of_two_currencies_is_unequal_not_an_error() -> None:
    assert USD != EUR


def a_region(**overrides: object) -> Region:
    fields: dict[str, object] = {
        "id": RegionId("reg_1"), "name": "Palo Alto", "market": "bay", "time_zone": "UTC",
        "currency": "USD",
        "polygon": Polygon(vertices=(Point(lat=0, lng=0), Point(lat=0, lng=1),
                                     Point(lat=1, lng=1)))}
    return Region(**{**fields, **overrides})  # type: ignore[arg-type]


@pytest.mark.parametrize("zone", ["Mars/Olympus", "America", "", "../../etc/passwd",
                                  "Europe/Paris ", "/etc/localtime"])
def test_a_region_refuses_a_time_zone_the_iana_database_does_not_know(zone: str) -> None:
    with pytest.raises(InvalidInput) as err:
        a_region(time_zone=zone)
    assert (err.value.code, err.value.field) == ("invalid_time_zone", "time_zone")


def test_a_region_accepts_iana_zones() -> None:
    assert a_region(time_zone="America/Los_Angeles").time_zone == "America/Los_Angeles"


def test_a_region_refuses_a_currency_that_is_not_an_iso_code() -> None:
    with pytest.raises(InvalidInput) as err:
        a_region(currency="dollars")
    assert err.value.code == "invalid_currency"
