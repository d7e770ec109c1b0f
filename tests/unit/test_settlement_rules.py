"""Settlement from postings (core.ledger.settlement) with literal orders in two currencies."""

from datetime import date

from fakes import an_order, usd
from lastmile.core.ledger import orders as lo
from lastmile.core.ledger.entries import StatementLine
from lastmile.core.ledger.settlement import OrderFacts, day_bounds, local_hour, settle
from lastmile.core.money import Money
from lastmile.core.orders import OrderStatus, PriceBreakdown

AT = 1_767_225_600.0  # 2026-01-01 00:00 UTC


def _lines(txns, at=AT):  # type: ignore[no-untyped-def]
    return [StatementLine(transaction_id=f"ltx_{i}", key=t.key, kind=t.kind,
                          order_id=t.order_id, account=p.account, currency=t.currency,
                          amount_minor=p.amount_minor, created_at=at)
            for i, t in enumerate(txns) for p in t.postings]


def _yen(minor: int) -> Money:
    return Money(amount_minor=minor, currency="JPY")


def _facts(*orders):  # type: ignore[no-untyped-def]
    return {o.id: OrderFacts(merchant_id=o.merchant_id, prices=o.prices) for o in orders}


def test_a_delivered_order_splits_into_gross_commission_fees_and_the_couriers_pay_and_tip():
    order = an_order(status=OrderStatus.DELIVERED, courier_id="cou_1")
    txns = [lo.authorisation(order), *lo.order_delivered(order, trip=usd(500))]
    s = settle(_lines(txns), _facts(order))
    [m] = s.merchants
    assert (m.gross_sales_minor, m.commission_minor, m.fees_minor) == (2400, 360, 539)
    assert m.net_payable_minor == 2040 and m.orders == 1
    [c] = s.couriers
    assert (c.trips, c.pay_minor, c.tips_minor, c.top_ups_minor) == (1, 500, 300, 0)
    assert c.earnings_by_hour == (800,) + (0,) * 23
    [p] = s.platform
    assert p.gmv_minor == order.prices.total.amount_minor == 3439
    assert p.net_revenue_minor == 360 + 539 - 500
    assert p.take_rate == round(399 / 3439, 4)


def test_take_rate_is_per_currency_and_a_top_up_has_no_trip():
    dollars = an_order(status=OrderStatus.DELIVERED, courier_id="cou_1")
    yen = an_order(id="ord_2", merchant_id="mer_2", status=OrderStatus.DELIVERED,
                   courier_id="cou_2",
                   prices=PriceBreakdown(subtotal=_yen(2000), delivery_fee=_yen(300),
                                         service_fee=_yen(100), small_order_fee=_yen(0),
                                         tax=_yen(200), tip=_yen(0)))
    txns = [*lo.order_delivered(dollars, trip=usd(500)),
            *lo.order_delivered(yen, trip=_yen(250)),
            lo.guarantee_top_up("cou_2", "shf_1", _yen(50))]
    s = settle(_lines(txns), _facts(dollars, yen))
    assert [p.currency for p in s.platform] == ["JPY", "USD"]
    jpy = s.platform[0]
    assert jpy.gmv_minor == 2600 and jpy.commission_minor == 300 and jpy.fees_minor == 400
    assert jpy.net_revenue_minor == 300 + 400 - 250 - 50 and jpy.courier_pay_minor == 300
    cou_2 = next(c for c in s.couriers if c.courier_id == "cou_2")
    assert (cou_2.trips, cou_2.pay_minor, cou_2.top_ups_minor) == (1, 250, 50)


def test_payouts_and_refunds_are_reported_beside_the_net_payable():
    order = an_order(status=OrderStatus.DELIVERED, courier_id="cou_1")
    cap = lo.order_delivered(order, trip=usd(500))
    refund = lo.refund(order, usd(100), key="r1", refundable=order.prices.total)
    paid = lo.payout("merchant_payable:mer_1", usd(2040), key="p1", owed=usd(2040))
    [m] = settle(_lines([*cap, refund, paid]), _facts(order)).merchants
    assert (m.net_payable_minor, m.payouts_minor, m.refunds_minor) == (2040, 2040, 100)


def test_a_day_is_midnight_to_midnight_in_the_zone_and_23_hours_on_spring_forward():
    start, end = day_bounds(date(2026, 3, 8), "America/Los_Angeles")
    assert end - start == 23 * 3600
    assert local_hour(start, "America/Los_Angeles") == 0
    start, end = day_bounds(date(2026, 1, 1), "UTC")
    assert (start, end - start) == (AT, 24 * 3600)
