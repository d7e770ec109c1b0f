"""Quotes (issue 10): surge per drop-off cell from supply and demand, smoothed per round;
a quote's token holds its prices until it expires; fees per region on top of the tenant's."""

from dataclasses import replace
from decimal import Decimal

import pytest

from fakes import in_memory
from lastmile.app import queries, tenants
from lastmile.app.ordering import LineRequest, OrderRequest, get_quote, issue_quote, place_order
from lastmile.core.errors import Conflict, InvalidInput
from lastmile.core.geo import Point
from lastmile.core.pricing import PricingPolicy

DROP = Point(lat=37.445, lng=-122.15)
ELSEWHERE = Point(lat=37.405, lng=-122.09)  # ~7 km away: outside the ring at resolution 7
ROUND_S = PricingPolicy().surge_round_s


def _request(p, consumer=0, qty=1, tip=0, dropoff=DROP, token=None):
    m = queries.get_merchant(p.services, p.seed.merchant_ids[0])
    return OrderRequest(consumer_id=p.seed.consumer_ids[consumer], merchant_id=m.id,
                        lines=(LineRequest(item_id=m.menu[0].id, quantity=qty),), dropoff=dropoff,
                        tip_minor=tip, quote_token=token)


def _rush(p, n, dropoff=DROP):
    """``n`` open orders to ``dropoff`` (no courier is on shift in the seed)."""
    for i in range(n):
        place_order(p.services, _request(p, consumer=i % 4, dropoff=dropoff),
                    idempotency_key=f"rush-{dropoff.lat}-{i}")


def _surge_after_rounds(p, rounds, dropoff=DROP):
    out = []
    for _ in range(rounds):
        p.clock.advance(ROUND_S)
        out.append(get_quote(p.services, _request(p, dropoff=dropoff)).surge_multiplier)
    return out


@in_memory
def test_demand_in_the_drop_off_cell_raises_surge_one_step_per_round(platform):
    _rush(platform, 8)
    assert _surge_after_rounds(platform, 3) == [Decimal("1.25"), Decimal("1.50"), Decimal("1.75")]


@in_memory
def test_surge_is_local_to_the_cell_and_its_ring(platform):
    _rush(platform, 8)
    platform.clock.advance(ROUND_S)
    here = get_quote(platform.services, _request(platform))
    there = get_quote(platform.services, _request(platform, dropoff=ELSEWHERE))
    assert here.surge_multiplier > 1 and there.surge_multiplier == 1
    assert here.prices.delivery_fee.amount_minor > 0


@in_memory
def test_quotes_within_one_round_see_the_same_surge(platform):
    _rush(platform, 8)
    platform.clock.advance(ROUND_S)
    first = get_quote(platform.services, _request(platform)).surge_multiplier
    _rush(platform, 20)  # more demand, but the round has not come round yet
    platform.clock.advance(ROUND_S - 1)
    assert get_quote(platform.services, _request(platform)).surge_multiplier == first


@in_memory
def test_a_surged_quote_says_why_in_the_consumers_words(platform):
    _rush(platform, 8)
    platform.clock.advance(ROUND_S)
    q = get_quote(platform.services, _request(platform))
    surge_line = next(line for line in q.fee_lines if line.kind == "surge")
    assert surge_line.amount.amount_minor > 0
    assert f"busy nearby: +{surge_line.amount.amount_minor / 100:.2f}" in q.reasons


@in_memory
def test_live_idle_couriers_next_door_damp_the_surge(platform):
    from lastmile.app.live import CourierLive

    live = platform.container.live  # given to the services, as bootstrap does
    platform.container.services = replace(platform.services, live=live)
    _rush(platform, 8)
    for i in range(8):
        live.upsert(CourierLive(courier_id=f"cur_x{i}", region_id=platform.seed.region.id,
                                lat=DROP.lat, lng=DROP.lng, status="idle",
                                updated_at=platform.clock.now() + ROUND_S))
    assert _surge_after_rounds(platform, 3) == [Decimal("1.00")] * 3


@in_memory
def test_an_order_with_the_quote_token_pays_the_quoted_price_within_its_validity(platform):
    issued = issue_quote(platform.services, _request(platform))
    _rush(platform, 8)
    for _ in range(3):  # surge rises meanwhile, still within the quote's 300 s
        platform.clock.advance(ROUND_S)
        get_quote(platform.services, _request(platform))
    fresh = get_quote(platform.services, _request(platform))
    assert fresh.prices.delivery_fee > issued.quote.prices.delivery_fee
    order = place_order(platform.services, _request(platform, token=issued.token),
                        idempotency_key="with-quote").order
    assert order.prices == issued.quote.prices


@in_memory
def test_an_expired_quote_is_refused_with_a_clear_conflict(platform):
    issued = issue_quote(platform.services, _request(platform))
    platform.clock.advance(PricingPolicy().quote_ttl_s)
    with pytest.raises(Conflict) as err:
        place_order(platform.services, _request(platform, token=issued.token),
                    idempotency_key="late")
    assert err.value.code == "quote_expired" and err.value.field == "quote_token"
    assert "new quote" in err.value.message


@in_memory
def test_a_token_for_another_request_or_altered_is_refused(platform):
    issued = issue_quote(platform.services, _request(platform))
    with pytest.raises(InvalidInput) as err:
        place_order(platform.services, _request(platform, qty=2, token=issued.token),
                    idempotency_key="other-basket")
    assert err.value.code == "quote_mismatch"
    with pytest.raises(InvalidInput) as err:
        place_order(platform.services, _request(platform, consumer=1, token=issued.token),
                    idempotency_key="other-consumer")
    assert err.value.code == "quote_mismatch"
    body, _, mac = issued.token.partition(".")
    with pytest.raises(InvalidInput) as err:
        place_order(platform.services, _request(platform, token=body[:-2] + "xx." + mac),
                    idempotency_key="forged")
    assert err.value.code == "invalid_quote_token"


def test_region_fees_apply_on_top_of_the_tenants_fees(platform):
    s = platform.services
    region_id = platform.seed.region.id
    before = get_quote(s, _request(platform))
    tenants.configure(s, {"fees": {"base_delivery_fee_minor": 300},
                          "region_fees": {region_id: {"base_delivery_fee_minor": 500},
                                          "reg_other": {"base_delivery_fee_minor": 50}}})
    after = get_quote(s, _request(platform))
    assert (after.prices.delivery_fee.amount_minor
            - before.prices.delivery_fee.amount_minor) == 500 - 199
    with pytest.raises(InvalidInput) as err:
        tenants.configure(s, {"region_fees": {region_id: {"surge_cap": 0.5}}})
    assert err.value.field == f"config.region_fees.{region_id}.surge_cap"


def test_surge_and_quote_tokens_on_a_database(platform):
    _rush(platform, 6)
    issued = issue_quote(platform.services, _request(platform))
    assert _surge_after_rounds(platform, 2)[-1] > 1
    order = place_order(platform.services, _request(platform, token=issued.token),
                        idempotency_key="db").order
    assert order.prices == issued.quote.prices
