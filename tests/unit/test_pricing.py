from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lastmile.core.errors import InvalidInput
from lastmile.core.geo import Point
from lastmile.core.money import Money
from lastmile.core.pricing import (
    PricingPolicy,
    SupplyDemand,
    delivery_fee,
    delivery_quote,
    quote,
    surge_multiplier,
)

POLICY = PricingPolicy()
PICKUP = Point(lat=37.44, lng=-122.14)


CALM = SupplyDemand(open_orders=1, available_couriers=5)


def _quote(dropoff: Point, subtotal: int = 2000, supply: SupplyDemand = CALM):
    return quote(pickup=PICKUP, dropoff=dropoff, subtotal=Money(amount_minor=subtotal,
                 currency="USD"), tip=Money(amount_minor=0, currency="USD"), tax_rate_bp=900,
                 prep_time_s=600, supply=supply, now=0.0, policy=POLICY)


def test_no_surge_when_couriers_keep_up():
    assert surge_multiplier(SupplyDemand(open_orders=3, available_couriers=10), POLICY) == 1


def test_surge_rises_in_quarter_steps_and_is_capped():
    mid = surge_multiplier(SupplyDemand(open_orders=25, available_couriers=10), POLICY)
    assert mid == Decimal("1.50")
    assert surge_multiplier(SupplyDemand(open_orders=500, available_couriers=1), POLICY) == Decimal(
        "2.50")
    assert surge_multiplier(SupplyDemand(open_orders=5, available_couriers=0), POLICY) == Decimal(
        "2.50")


def test_small_orders_pay_the_small_order_fee():
    q = _quote(Point(lat=37.45, lng=-122.14), subtotal=500)
    assert q.prices.small_order_fee.amount_minor == 200


def test_drop_off_beyond_range_is_refused_naming_the_field():
    with pytest.raises(InvalidInput) as err:
        _quote(Point(lat=38.0, lng=-122.14))
    assert err.value.field == "dropoff" and err.value.code == "out_of_range"


def test_total_is_the_sum_of_its_parts():
    p = _quote(Point(lat=37.45, lng=-122.15)).prices
    parts = [p.subtotal, p.delivery_fee, p.service_fee, p.small_order_fee, p.tax, p.tip]
    assert p.total.amount_minor == sum(x.amount_minor for x in parts)


@given(st.floats(0, 11_000), st.floats(0, 11_000), st.integers(0, 300), st.integers(0, 100))
def test_delivery_fee_never_negative_and_never_falls_with_distance(d1, d2, orders, couriers):
    surge = surge_multiplier(SupplyDemand(open_orders=orders, available_couriers=couriers), POLICY)
    near, far = sorted((d1, d2))
    fee_near = delivery_fee(near, "USD", surge, POLICY).amount_minor
    fee_far = delivery_fee(far, "USD", surge, POLICY).amount_minor
    assert 0 <= fee_near <= fee_far


@given(st.floats(0.0, 0.05), st.integers(0, 100_000))
def test_quote_is_never_negative_and_window_is_ordered(dlat, subtotal):
    q = _quote(Point(lat=37.44 + dlat, lng=-122.14), subtotal=subtotal)
    assert all(v >= 0 for v in q.prices.as_minor().values())
    assert q.eta.low_at <= q.eta.expected_at <= q.eta.high_at


def test_a_free_courier_for_every_waiting_order_means_just_the_pickup_leg():
    from lastmile.core.pricing import courier_wait_s

    supply = SupplyDemand(open_orders=3, available_couriers=4, busy_couriers=6)
    assert courier_wait_s(supply, POLICY) == 300  # the pickup leg alone


def test_without_free_couriers_the_order_queues_for_the_next_busy_one():
    from dataclasses import replace

    from lastmile.core.pricing import courier_wait_s

    supply = SupplyDemand(open_orders=2, available_couriers=0, busy_couriers=5)
    # Third in line; one of five busy couriers frees up every 1,500 s / 5 = 300 s, so
    # 3 x 300 s in the queue, then the 300 s pickup leg.
    assert courier_wait_s(supply, replace(POLICY, courier_cycle_s=1_500)) == 1200


@given(st.integers(0, 200), st.integers(0, 200), st.integers(0, 50), st.integers(1, 50))
def test_eta_never_improves_as_more_orders_wait_or_fewer_couriers_work(orders, more, free, busy):
    from lastmile.core.pricing import eta_window

    calm = SupplyDemand(open_orders=orders, available_couriers=free, busy_couriers=busy)
    rush = SupplyDemand(open_orders=orders + more, available_couriers=free, busy_couriers=busy)
    fewer = SupplyDemand(open_orders=orders, available_couriers=free,
                         busy_couriers=max(1, busy - 1))
    base = eta_window(3000.0, 600, 0.0, POLICY, calm).expected_at
    assert eta_window(3000.0, 600, 0.0, POLICY, rush).expected_at >= base
    assert eta_window(3000.0, 600, 0.0, POLICY, fewer).expected_at >= base


def test_a_delivery_sold_on_its_own_costs_the_marketplace_delivery_fee_and_the_tip():
    busy = SupplyDemand(open_orders=25, available_couriers=10)
    dropoff = Point(lat=37.47, lng=-122.10)
    tip = Money(amount_minor=250, currency="USD")
    drive = delivery_quote(pickup=PICKUP, dropoff=dropoff, tip=tip, prep_time_s=600,
                           supply=busy, now=0.0, policy=POLICY)
    market = _quote(dropoff, supply=busy)
    assert drive.prices.delivery_fee == market.prices.delivery_fee
    assert drive.prices.total == drive.prices.delivery_fee + tip
    assert (drive.eta, drive.distance_m, drive.surge_multiplier) == (
        market.eta, market.distance_m, market.surge_multiplier)


def test_a_delivery_quote_refuses_what_a_marketplace_quote_refuses():
    far = Point(lat=37.60, lng=-122.14)
    with pytest.raises(InvalidInput) as err:
        delivery_quote(pickup=PICKUP, dropoff=far, tip=Money(amount_minor=0, currency="USD"),
                       prep_time_s=600, supply=CALM, now=0.0, policy=POLICY)
    assert err.value.code == "out_of_range"
