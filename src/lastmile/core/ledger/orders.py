"""An order's lifecycle facts as ledger transactions (pure: the order in, transactions out).

- placed: ``authorisation``, a memo hold of the order's total (no money moves);
- delivered: the hold is released, the consumer is charged the total (``capture``):
  subtotal to the merchant less commission, commission and the delivery, service and
  small-order fees to platform revenue, tax to tax payable, the tip to the courier; then the
  courier's pay for the trip (``courier_pay``) from platform revenue;
- cancelled: the hold is released; what ``core.lifecycle.cancellation_charge`` decided the
  consumer still pays is captured (``cancellation_charge``: a consumer cancelling after
  confirmation pays subtotal, service fee and tax); the courier is paid for the trip once
  they reached the merchant (``Cancellation.courier_paid``), the tip is not charged;
- ``refund`` (money back to the card) and ``credit`` (store credit) of at most what was
  captured and not yet given back, both at the platform's expense (``refunds``);
- ``payout`` of a merchant's or courier's payable from the processor's clearing account.

Keys are ``<order>:<kind>`` for lifecycle facts, so posting the same fact twice posts once.
"""

from __future__ import annotations

from dataclasses import dataclass

from lastmile.core.errors import InvalidInput
from lastmile.core.ledger.entries import (
    PAYABLE_KINDS,
    AccountKind,
    Transaction,
    TxnKind,
    account,
    kind_of,
    parse_account,
    transaction,
)
from lastmile.core.money import Money
from lastmile.core.orders import Order, OrderStatus, PriceBreakdown

A = AccountKind


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerPolicy:
    """How a captured price is split. ``merchant_commission_bp``: the platform's share of the
    subtotal; ``courier_pay_bp``: the courier's pay for a trip as a share of the delivery fee
    (until the courier pay pipeline of issue 10 item 2 prices it; its functions take the
    amount)."""

    merchant_commission_bp: int = 1_500
    courier_pay_bp: int = 10_000

    def __post_init__(self) -> None:
        for name in ("merchant_commission_bp", "courier_pay_bp"):
            value = getattr(self, name)
            if not 0 <= value <= 10_000:
                raise InvalidInput("invalid_policy", f"{name} must be in [0, 10000] (got "
                                   f"{value})", field=name)


DEFAULT_POLICY = LedgerPolicy()


def authorisation(order: Order) -> Transaction | None:
    """The memo hold of the order's total on the consumer's card (None for a free order)."""
    return transaction(key=f"{order.id}:{TxnKind.AUTHORISATION.value}",
                       kind=TxnKind.AUTHORISATION, currency=order.currency, order_id=order.id,
                       lines=[(account(A.PROCESSOR_HOLDS), order.prices.total),
                              (account(A.HOLDS, order.consumer_id), -order.prices.total)],
                       memo="authorisation hold")


def hold_release(order: Order) -> Transaction | None:
    """The hold ends: the exact opposite of ``authorisation``."""
    return transaction(key=f"{order.id}:{TxnKind.HOLD_RELEASE.value}",
                       kind=TxnKind.HOLD_RELEASE, currency=order.currency, order_id=order.id,
                       lines=[(account(A.PROCESSOR_HOLDS), -order.prices.total),
                              (account(A.HOLDS, order.consumer_id), order.prices.total)],
                       memo="hold released")


def capture(order: Order, policy: LedgerPolicy = DEFAULT_POLICY) -> Transaction | None:
    """The consumer charged the whole price on delivery, split to who it belongs to."""
    return _charge(order, order.prices.total, TxnKind.CAPTURE, policy)


def cancellation_charge(order: Order, policy: LedgerPolicy = DEFAULT_POLICY
                        ) -> Transaction | None:
    """What the cancelled ``order`` still charges (``order.cancellation.consumer_charge``)."""
    if order.cancellation is None:
        raise InvalidInput("not_cancelled", f"order {order.id} is {order.status.value}, not "
                           "cancelled", field="order")
    return _charge(order, order.cancellation.consumer_charge, TxnKind.CANCELLATION_CHARGE,
                   policy)


def courier_pay(order: Order, courier_id: str, pay: Money) -> Transaction | None:
    """The courier's pay for the order's trip, from platform revenue (the tip is not in it:
    the capture credits it to the courier directly)."""
    if pay.amount_minor < 0:
        raise InvalidInput("invalid_amount", f"courier pay must be >= 0 (got "
                           f"{pay.amount_minor}) for order {order.id}", field="pay")
    return transaction(key=f"{order.id}:{TxnKind.COURIER_PAY.value}",
                       kind=TxnKind.COURIER_PAY, currency=order.currency, order_id=order.id,
                       lines=[(account(A.PLATFORM_REVENUE), pay),
                              (account(A.COURIER_PAYABLE, courier_id), -pay)],
                       memo="courier pay for the trip")


def trip_pay(order: Order, policy: LedgerPolicy = DEFAULT_POLICY) -> Money:
    """The courier's pay for the trip under ``policy``: a share of the delivery fee."""
    return order.prices.delivery_fee.basis_points(policy.courier_pay_bp)


def order_delivered(order: Order, policy: LedgerPolicy = DEFAULT_POLICY, *,
                    trip: Money | None = None) -> list[Transaction]:
    """Hold release, capture and the courier's pay of a delivered order: ``trip``, the pay
    pipeline's amount for the trip without the tip (``app.pay.trip_pay``), or the policy's
    share of the delivery fee when none is given."""
    if order.status is not OrderStatus.DELIVERED:
        raise InvalidInput("not_delivered", f"order {order.id} is {order.status.value}, not "
                           "delivered", field="order")
    found = [hold_release(order), capture(order, policy)]
    if order.courier_id is not None:
        found.append(courier_pay(order, order.courier_id,
                                 trip if trip is not None else trip_pay(order, policy)))
    return [t for t in found if t is not None]


def guarantee_top_up(courier_id: str, shift_id: str, amount: Money) -> Transaction | None:
    """What the platform adds so a shift earns its guaranteed minimum per active hour (the
    pay statement's ``guarantee_top_up`` line): platform revenue to the courier, once per
    shift (None when nothing was owed)."""
    if amount.amount_minor < 0:
        raise InvalidInput("invalid_amount", f"a guarantee top-up must be >= 0 (got "
                           f"{amount.amount_minor}) for shift {shift_id}", field="top_up")
    return transaction(key=f"{shift_id}:guarantee_top_up", kind=TxnKind.COURIER_PAY,
                       currency=amount.currency,
                       lines=[(account(A.PLATFORM_REVENUE), amount),
                              (account(A.COURIER_PAYABLE, courier_id), -amount)],
                       memo=f"guaranteed minimum for shift {shift_id}")


def order_cancelled(order: Order, policy: LedgerPolicy = DEFAULT_POLICY) -> list[Transaction]:
    """Hold release, what the cancellation charges, and the courier's pay when they had
    reached the merchant."""
    found = [hold_release(order), cancellation_charge(order, policy)]
    assert order.cancellation is not None  # cancellation_charge refused otherwise
    if order.cancellation.courier_paid and order.courier_id is not None:
        found.append(courier_pay(order, order.courier_id, trip_pay(order, policy)))
    return [t for t in found if t is not None]


def refund(order: Order, amount: Money, *, key: str, refundable: Money,
           memo: str = "") -> Transaction:
    """``amount`` back to the consumer's card, at most ``refundable`` (captured, less what
    was refunded or credited already)."""
    _check_refundable(order, amount, refundable)
    consumer = account(A.CONSUMER, order.consumer_id)
    made = transaction(key=key, kind=TxnKind.REFUND, currency=order.currency,
                       order_id=order.id, memo=memo or "refund",
                       lines=[(account(A.REFUNDS), amount), (consumer, -amount),
                              (consumer, amount), (account(A.PROCESSOR_CLEARING), -amount)])
    assert made is not None  # amount > 0 was checked
    return made


def credit(order: Order, amount: Money, *, key: str, refundable: Money,
           memo: str = "") -> Transaction:
    """``amount`` of store credit to the consumer, at most ``refundable``."""
    _check_refundable(order, amount, refundable)
    made = transaction(key=key, kind=TxnKind.CREDIT, currency=order.currency,
                       order_id=order.id, memo=memo or "store credit",
                       lines=[(account(A.REFUNDS), amount),
                              (account(A.CREDITS, order.consumer_id), -amount)])
    assert made is not None
    return made


def payout(payable: str, amount: Money, *, key: str, owed: Money) -> Transaction:
    """Pay ``amount`` of what ``payable`` (a merchant's or courier's account) is owed
    (``owed``: minus its balance) out of the processor's clearing account."""
    parse_account(payable)
    if kind_of(payable) not in PAYABLE_KINDS:
        raise InvalidInput("invalid_account", f"only merchant_payable and courier_payable "
                           f"accounts are paid out (got {payable})", field="account")
    if not 0 < amount.amount_minor <= owed.amount_minor:
        raise InvalidInput("invalid_amount", f"a payout of {payable} must be > 0 and at most "
                           f"what it is owed, {owed} (got {amount})", field="amount")
    made = transaction(key=key, kind=TxnKind.PAYOUT, currency=amount.currency,
                       lines=[(payable, amount), (account(A.PROCESSOR_CLEARING), -amount)],
                       memo="payout")
    assert made is not None
    return made


def _check_refundable(order: Order, amount: Money, refundable: Money) -> None:
    if amount.currency != order.currency:
        raise InvalidInput("currency_mismatch", f"order {order.id} was paid in "
                           f"{order.currency} (got {amount.currency})", field="amount")
    if not 0 < amount.amount_minor <= refundable.amount_minor:
        raise InvalidInput("invalid_amount", f"a refund or credit on order {order.id} must be "
                           f"> 0 and at most what was captured and not given back, "
                           f"{refundable} (got {amount})", field="amount")


def _charge(order: Order, charge: Money, kind: TxnKind, policy: LedgerPolicy
            ) -> Transaction | None:
    """The consumer charged ``charge`` (at most the order's total), split line by line in
    the order subtotal, service fee, tax, delivery fee, small-order fee, tip: a partial
    charge (a cancellation) keeps the food and the service first, as
    ``core.lifecycle.cancellation_charge`` does."""
    p, cur = order.prices, order.currency
    if not 0 <= charge.amount_minor <= p.total.amount_minor:
        raise InvalidInput("invalid_amount", f"a charge on order {order.id} must be in "
                           f"[0, {p.total}] (got {charge})", field="charge")
    parts = _allocate(p, charge)
    commission = parts["subtotal"].basis_points(policy.merchant_commission_bp)
    revenue = (commission + parts["service_fee"] + parts["delivery_fee"]
               + parts["small_order_fee"])
    consumer = account(A.CONSUMER, order.consumer_id)
    lines = [(consumer, charge), (account(A.PROCESSOR_CLEARING), charge), (consumer, -charge),
             (account(A.MERCHANT_PAYABLE, order.merchant_id), -(parts["subtotal"] - commission)),
             (account(A.PLATFORM_REVENUE), -revenue),
             (account(A.TAX_PAYABLE), -parts["tax"])]
    if parts["tip"].amount_minor:
        if order.courier_id is None:  # no courier took it: the platform keeps nothing back
            raise InvalidInput("no_courier", f"order {order.id} charges a tip but has no "
                               "courier", field="tip")
        lines.append((account(A.COURIER_PAYABLE, order.courier_id), -parts["tip"]))
    return transaction(key=f"{order.id}:{kind.value}", kind=kind, currency=cur,
                       order_id=order.id, lines=lines, memo=kind.value.replace("_", " "))


_ALLOCATION_ORDER = ("subtotal", "service_fee", "tax", "delivery_fee", "small_order_fee", "tip")


def charge_parts(p: PriceBreakdown, charge: Money) -> dict[str, Money]:
    """How a charge of ``charge`` on a price ``p`` splits into its lines (subtotal, service
    fee, tax, delivery fee, small-order fee, tip, filled in that order): the split the
    capture and the cancellation charge post (settlement reports read it back)."""
    return _allocate(p, charge)


def _allocate(p: PriceBreakdown, charge: Money) -> dict[str, Money]:
    left = charge.amount_minor
    parts = {}
    for name in _ALLOCATION_ORDER:
        line: Money = getattr(p, name)
        take = min(left, line.amount_minor)
        parts[name] = Money(amount_minor=take, currency=charge.currency)
        left -= take
    return parts
