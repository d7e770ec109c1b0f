"""The ledger's rules with literal inputs: splits, currencies, accounts and the audit."""

from dataclasses import replace

import pytest

from fakes import an_order, usd
from lastmile.core.errors import InvalidInput
from lastmile.core.ledger import orders as lo
from lastmile.core.ledger.audit import PostingRow, audit, balances
from lastmile.core.ledger.entries import Posting, Transaction, TxnKind, parse_account
from lastmile.core.money import Money, minor_exponent
from lastmile.core.orders import (
    Actor,
    ActorKind,
    Cancellation,
    OrderStatus,
    PriceBreakdown,
)


def _delivered(**overrides):  # type: ignore[no-untyped-def]
    return an_order(status=OrderStatus.DELIVERED, courier_id="cou_1", **overrides)


def _rows(txns):  # type: ignore[no-untyped-def]
    return [PostingRow(transaction_id=f"ltx_{i}", kind=t.kind.value, order_id=t.order_id,
                       currency=t.currency, account=p.account, amount_minor=p.amount_minor)
            for i, t in enumerate(txns) for p in t.postings]


def test_capture_splits_the_total_between_merchant_platform_tax_and_courier():
    # subtotal 2400, delivery 299, service 240, tax 200, tip 300; commission 15 % = 360
    capture = lo.capture(_delivered())
    assert capture.net("merchant_payable:mer_1") == -(2400 - 360)
    assert capture.net("platform_revenue") == -(360 + 299 + 240)
    assert capture.net("tax_payable") == -200
    assert capture.net("courier_payable:cou_1") == -300
    assert capture.net("processor_clearing") == 3439
    assert capture.net("consumer:con_1") == 0  # charged and paid in the same transaction


def test_delivery_posts_release_capture_and_the_couriers_trip_pay_once_each():
    kinds = [t.kind for t in lo.order_delivered(_delivered())]
    assert kinds == [TxnKind.HOLD_RELEASE, TxnKind.CAPTURE, TxnKind.COURIER_PAY]
    keys = [t.key for t in lo.order_delivered(_delivered())]
    assert keys == ["ord_1:hold_release", "ord_1:capture", "ord_1:courier_pay"]


def test_consumer_cancellation_after_confirmation_charges_food_service_and_tax_only():
    order = an_order(status=OrderStatus.CANCELLED, cancellation=Cancellation(
        actor=Actor(kind=ActorKind.CONSUMER, id="con_1"), reason="x",
        from_status=OrderStatus.CONFIRMED, consumer_charge=usd(2400 + 240 + 200),
        courier_paid=False))
    [release, charge] = lo.order_cancelled(order)
    assert release.kind is TxnKind.HOLD_RELEASE
    assert charge.net("processor_clearing") == 2840
    assert charge.net("platform_revenue") == -(360 + 240)
    assert charge.net("tax_payable") == -200
    assert not any(p.account.startswith("courier") for p in charge.postings)


def test_merchant_cancellation_charges_nothing_but_pays_a_courier_who_reached_the_store():
    order = an_order(status=OrderStatus.CANCELLED, courier_id="cou_1", cancellation=Cancellation(
        actor=Actor(kind=ActorKind.MERCHANT, id="mer_1"), reason="x",
        from_status=OrderStatus.AT_PICKUP, consumer_charge=usd(0), courier_paid=True))
    kinds = [t.kind for t in lo.order_cancelled(order)]
    assert kinds == [TxnKind.HOLD_RELEASE, TxnKind.COURIER_PAY]


@pytest.mark.parametrize(("currency", "exponent"), [("JPY", 0), ("USD", 2), ("KWD", 3),
                                                     ("CLF", 4), ("EUR", 2)])
def test_minor_units_follow_iso_4217(currency, exponent):  # type: ignore[no-untyped-def]
    assert minor_exponent(currency) == exponent


def test_zero_and_three_decimal_currencies_split_in_whole_minor_units():
    for cur, sub in (("JPY", 1999), ("KWD", 12_345)):
        m = lambda n, c=cur: Money(amount_minor=n, currency=c)  # noqa: E731
        prices = PriceBreakdown(subtotal=m(sub), delivery_fee=m(7), service_fee=m(3),
                                small_order_fee=m(0), tax=m(11), tip=m(5))
        order = _delivered(prices=prices, lines=(replace(an_order().lines[0],
                                                         unit_price=m(sub)),))
        capture = lo.capture(order)
        assert capture.currency == cur
        assert sum(p.amount_minor for p in capture.postings) == 0
        assert capture.net("merchant_payable:mer_1") == -(sub - round(sub * 0.15))


def test_a_transaction_refuses_to_mix_currencies_or_not_balance():
    eur = Posting(account="platform_revenue", amount_minor=-5, currency="EUR")
    ok = Posting(account="processor_clearing", amount_minor=5, currency="USD")
    with pytest.raises(InvalidInput) as err:
        Transaction(key="k", kind=TxnKind.CAPTURE, currency="USD", postings=(ok, eur))
    assert err.value.code == "currency_mismatch"
    bad = Posting(account="platform_revenue", amount_minor=-4, currency="USD")
    with pytest.raises(InvalidInput) as err:
        Transaction(key="k", kind=TxnKind.CAPTURE, currency="USD", postings=(ok, bad))
    assert err.value.code == "unbalanced"


@pytest.mark.parametrize("raw", ["merchant_payable", "platform_revenue:x", "wallet:con_1",
                                 "consumer:", "consumer:a b"])
def test_accounts_are_a_known_kind_with_a_party_where_it_needs_one(raw):  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput) as err:
        parse_account(raw)
    assert err.value.code == "invalid_account" and err.value.field == "account"


def test_refunds_and_credits_stop_at_what_was_captured():
    order = _delivered()
    left = usd(100)
    lo.refund(order, usd(100), key="r1", refundable=left)
    with pytest.raises(InvalidInput) as err:
        lo.credit(order, usd(101), key="r2", refundable=left)
    assert err.value.code == "invalid_amount"


def test_payout_only_pays_a_payable_and_at_most_what_it_is_owed():
    with pytest.raises(InvalidInput):
        lo.payout("platform_revenue", usd(5), key="p", owed=usd(10))
    with pytest.raises(InvalidInput):
        lo.payout("merchant_payable:mer_1", usd(11), key="p", owed=usd(10))
    assert lo.payout("merchant_payable:mer_1", usd(10), key="p",
                     owed=usd(10)).net("processor_clearing") == -10


def test_the_audit_finds_a_tampered_posting_and_a_capture_that_disagrees_with_the_order():
    order = _delivered()
    txns = [lo.authorisation(order), *lo.order_delivered(order)]
    rows = _rows(txns)
    assert audit(rows, balances(rows), {order.id: order}).ok
    tampered = [*rows[:-1], replace(rows[-1], amount_minor=rows[-1].amount_minor + 1)]
    report = audit(tampered, balances(rows), {order.id: order})
    assert any("sum to 1" in p for p in report.problems)
    assert any("stored balance" in p for p in report.problems)
    dearer = replace(order, prices=replace(order.prices, tip=usd(301)))
    report = audit(rows, balances(rows), {order.id: dearer})
    assert any("captured 34.39 USD, expected 34.40 USD" in p for p in report.problems)


def test_an_order_whose_events_are_not_posted_yet_is_listed_not_failed():
    report = audit([], {}, {"ord_1": an_order()})
    assert report.ok and report.unposted_orders == ("ord_1",)
