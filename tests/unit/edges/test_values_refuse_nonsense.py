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


# --- webhook URLs: private destinations are refused at registration -----------------------

@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/h", "http://localhost/h", "http://api.localhost./h",
    "http://10.0.0.5/h", "http://192.168.1.1/h", "http://172.16.0.1/h", "http://100.64.0.1/h",
    "http://169.254.169.254/latest/meta-data", "http://[::1]/h", "http://[fe80::1%25eth0]/h",
    "http://[fd00::1]/h", "http://[::ffff:127.0.0.1]/h", "http://0.0.0.0/h",
    "http://2130706433/h", "http://0x7f.1/h", "http://0177.0.0.1/h", "http://224.0.0.1/h",
])
def test_a_webhook_url_to_a_private_destination_is_refused(url: str) -> None:
    from lastmile.core.webhooks import validate_url

    with pytest.raises(InvalidInput) as err:
        validate_url(url)
    assert (err.value.code, err.value.field) == ("private_url", "url")
    assert validate_url(url, allow_private=True) == url


@pytest.mark.parametrize("url", ["https://hooks.example.com/h", "http://93.184.216.34/h",
                                 "https://[2606:4700::1111]/h", "https://10x.example.com/h"])
def test_a_webhook_url_to_a_public_host_is_accepted(url: str) -> None:
    from lastmile.core.webhooks import validate_url

    assert validate_url(url) == url
