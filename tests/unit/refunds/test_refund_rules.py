"""The refund rules (core.refunds): literal cases and invariants."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fakes import an_order, usd
from lastmile.core.errors import InvalidInput
from lastmile.core.orders import DeliveryProof, OrderLine, OrderStatus
from lastmile.core.refunds import (
    Decision,
    ItemLine,
    Outcome,
    Reason,
    RefundHistory,
    RefundPolicy,
    RefundRequest,
    by_ops,
    decide,
    items_value,
)

DELIVERED_AT = 2_600.0  # inside the eta window of an_order (high 3000)


def delivered(**overrides):  # type: ignore[no-untyped-def]
    return an_order(**{"status": OrderStatus.DELIVERED, "delivered_at": DELIVERED_AT,
                       **overrides})


def history(refundable: int = 5_439, given: int = 0, now: float = DELIVERED_AT + 60):
    return RefundHistory(now=now, refundable=usd(refundable), consumer_given_minor=given)


def missing(qty: int = 1, item: str = "itm_1") -> RefundRequest:
    return RefundRequest(order_id="ord_1", reason=Reason.MISSING_ITEM,
                         items=(ItemLine(item_id=item, quantity=qty),))


def test_refunds_a_missing_item_with_its_tax_share_to_the_card():
    d = decide(missing(), delivered(), history())
    # 1200 + 200 tax x 1200 / 2400 = 1300
    assert (d.outcome, d.amount, d.as_credit) == (Outcome.REFUND, usd(1300), False)
    assert d.code == "missing_item_approved" and "card" in d.reason


def test_never_gives_more_than_is_left_on_the_order():
    d = decide(missing(2), delivered(), history(refundable=1000))
    assert (d.outcome, d.amount) == (Outcome.PARTIAL, usd(1000))


def test_rejects_when_everything_was_given_back():
    assert decide(missing(), delivered(), history(refundable=0)).code == "nothing_left"


def test_an_item_not_on_the_order_is_invalid_input_naming_items():
    with pytest.raises(InvalidInput) as e:
        decide(missing(item="itm_9"), delivered(), history())
    assert e.value.field == "items" and e.value.code == "item_not_on_order"


def test_more_than_ordered_is_invalid_input():
    with pytest.raises(InvalidInput) as e:
        decide(missing(3), delivered(), history())
    assert e.value.code == "quantity_above_ordered"


def test_rejects_after_the_window():
    d = decide(missing(), delivered(), history(now=DELIVERED_AT + 48 * 3600 + 1))
    assert (d.outcome, d.code) == (Outcome.REJECT, "window_closed")


def test_rejects_an_order_not_delivered():
    assert decide(missing(), an_order(), history()).code == "order_not_delivered"


def test_over_the_thirty_day_cap_goes_to_a_human():
    d = decide(missing(), delivered(), history(given=4_000))
    assert (d.outcome, d.code, d.amount) == (Outcome.HUMAN, "over_cap", usd(0))


def test_late_delivery_gets_a_credit_by_policy():
    late = delivered(delivered_at=3_000.0 + 601)
    d = decide(RefundRequest(order_id="ord_1", reason=Reason.LATE), late,
               history(now=late.delivered_at + 10))
    assert (d.outcome, d.amount, d.as_credit) == (Outcome.CREDIT, usd(240), True)


def test_on_time_delivery_is_not_late():
    d = decide(RefundRequest(order_id="ord_1", reason=Reason.LATE), delivered(), history())
    assert d.code == "not_late"


def test_never_arrived_with_a_proof_photo_goes_to_a_human():
    order = delivered(proof=DeliveryProof(photo_ref="ph_1"))
    d = decide(RefundRequest(order_id="ord_1", reason=Reason.NEVER_ARRIVED), order, history())
    assert (d.outcome, d.code) == (Outcome.HUMAN, "proof_photo_on_file")


def test_never_arrived_without_a_photo_refunds_what_is_left():
    order = delivered(proof=DeliveryProof(note="door"))
    d = decide(RefundRequest(order_id="ord_1", reason=Reason.NEVER_ARRIVED), order,
               history(refundable=3_000), RefundPolicy(cap_minor=10_000))
    assert (d.outcome, d.amount) == (Outcome.REFUND, usd(3_000))


def test_a_fraud_check_can_send_it_to_a_human():
    def suspicious(req, order, hist):  # type: ignore[no-untyped-def]
        return Decision(outcome=Outcome.HUMAN, amount=usd(0), code="fraud_review",
                        reason="A person will review this request.")
    d = decide(missing(), delivered(), history(), checks=[suspicious])
    assert d.code == "fraud_review"


def test_item_reasons_need_items():
    with pytest.raises(InvalidInput) as e:
        RefundRequest(order_id="ord_1", reason=Reason.DAMAGED)
    assert e.value.field == "items"


@pytest.mark.parametrize("field,value", [("window_s", 0), ("cap_minor", -1),
                                         ("late_credit_bp", 10_001), ("cap_window_s", -5)])
def test_policy_is_validated_naming_the_field(field, value):  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput) as e:
        RefundPolicy(**{field: value})
    assert e.value.field == field


def test_ops_may_not_give_more_than_refundable():
    with pytest.raises(InvalidInput) as e:
        by_ops(delivered(), outcome=Outcome.REFUND, amount_minor=101, refundable=usd(100),
               reason="ok")
    assert e.value.field == "amount_minor"


lines = st.lists(st.tuples(st.integers(1, 5), st.integers(1, 5_000)), min_size=1, max_size=4)


@given(lines=lines, asks=st.lists(st.tuples(st.integers(0, 5), st.integers(1, 9)), max_size=5),
       refundable=st.integers(0, 50_000), given_before=st.integers(0, 10_000),
       reason=st.sampled_from(list(Reason)), tax=st.integers(0, 2_000))
def test_never_more_than_refundable_and_items_within_the_order(  # type: ignore[no-untyped-def]
        lines, asks, refundable, given_before, reason, tax):
    order_lines = tuple(OrderLine(item_id=f"itm_{n % 3}", name="x", quantity=q,
                                  unit_price=usd(p)) for n, (q, p) in enumerate(lines))
    subtotal = sum(q * p for q, p in lines)
    order = delivered(lines=order_lines, prices=replace(
        an_order().prices, subtotal=usd(subtotal), tax=usd(tax)))
    wanted: dict[str, int] = {}
    for item, qty in asks:
        wanted[f"itm_{item}"] = wanted.get(f"itm_{item}", 0) + qty
    items = tuple(ItemLine(item_id=i, quantity=min(q, 99)) for i, q in wanted.items())
    if reason in (Reason.MISSING_ITEM, Reason.WRONG_ITEM, Reason.DAMAGED) and not items:
        return
    request = RefundRequest(order_id="ord_1", reason=reason, items=items)
    ordered = {}
    for ln in order_lines:
        ordered[ln.item_id] = ordered.get(ln.item_id, 0) + ln.quantity
    within = all(ordered.get(i.item_id, 0) >= i.quantity for i in items)
    try:
        d = decide(request, order, history(refundable=refundable, given=given_before))
    except InvalidInput as e:
        assert not within and e.field == "items"
        return
    assert within
    assert 0 <= d.amount.amount_minor <= refundable
    if d.gives_money and reason in (Reason.MISSING_ITEM, Reason.WRONG_ITEM, Reason.DAMAGED):
        assert d.amount <= items_value(request, order)
        assert d.amount.amount_minor <= subtotal + tax
