"""Refund requests and the rules that decide them (issue 10 item 5; docs/refunds.md).

Pure: the app layer loads the order, what its ledger still allows (``refundable``) and the
consumer's recent refunds, then calls ``decide``. Amounts are integer minor units of the
order's currency. A decision carries a stable ``code`` and a short ``reason`` a consumer and
ops can read. ``checks`` is the seam for fraud rules (a later issue): each may send the
request to a human or reject it before money moves; there are none today.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction

from lastmile.core.errors import InvalidInput
from lastmile.core.eta import late
from lastmile.core.money import Money
from lastmile.core.orders import Order, OrderStatus

MAX_NOTE = 500
MAX_PHOTO_REF = 200
MAX_LINES = 50


class Reason(StrEnum):
    MISSING_ITEM = "missing_item"
    WRONG_ITEM = "wrong_item"
    DAMAGED = "damaged"
    LATE = "late"
    NEVER_ARRIVED = "never_arrived"
    OTHER = "other"


# Reasons about particular items: the request must name them.
ITEM_REASONS = frozenset({Reason.MISSING_ITEM, Reason.WRONG_ITEM, Reason.DAMAGED})


class Outcome(StrEnum):
    REFUND = "refund"  # the whole asked amount back to the card
    CREDIT = "credit"  # the whole asked amount as store credit
    PARTIAL = "partial"  # less than asked (what the order has left); ``as_credit`` says how
    REJECT = "reject"
    HUMAN = "human"  # waits for ops (``app.refunds.decide_by_ops``)


class Status(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"
    PENDING_REVIEW = "pending_review"


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemLine:
    item_id: str
    quantity: int

    def __post_init__(self) -> None:
        if not 1 <= self.quantity <= 99:
            raise InvalidInput("invalid_quantity", f"quantity must be in [1, 99] (got "
                               f"{self.quantity}) for item {self.item_id}", field="items")


@dataclass(frozen=True, slots=True, kw_only=True)
class RefundRequest:
    order_id: str
    reason: Reason
    items: tuple[ItemLine, ...] = ()
    photo_ref: str | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if self.reason in ITEM_REASONS and not self.items:
            raise InvalidInput("items_required", f"a {self.reason.value} request must name "
                               f"the items (got none)", field="items")
        if len(self.items) > MAX_LINES:
            raise InvalidInput("too_many_items", f"at most {MAX_LINES} item lines (got "
                               f"{len(self.items)})", field="items")
        ids = [i.item_id for i in self.items]
        if len(set(ids)) != len(ids):
            raise InvalidInput("duplicate_item", "each item may appear once; add up its "
                               "quantity instead", field="items")
        if len(self.note) > MAX_NOTE:
            raise InvalidInput("invalid_note", f"note must be at most {MAX_NOTE} characters "
                               f"(got {len(self.note)})", field="note")
        if self.photo_ref is not None and not 1 <= len(self.photo_ref) <= MAX_PHOTO_REF:
            raise InvalidInput("invalid_photo_ref", f"photo_ref must be 1..{MAX_PHOTO_REF} "
                               f"characters (got {len(self.photo_ref)})", field="photo_ref")


@dataclass(frozen=True, slots=True, kw_only=True)
class RefundPolicy:
    window_s: int = 48 * 3600  # after delivery
    cap_minor: int = 5_000  # approved per consumer per cap window; above it, a human decides
    cap_window_s: int = 30 * 86_400
    late_grace_s: int = 600  # after the promised window's end before it counts as late
    late_credit_bp: int = 1_000  # of the subtotal, as store credit
    credit_reasons: frozenset[Reason] = frozenset({Reason.LATE})

    def __post_init__(self) -> None:
        for name in ("window_s", "cap_window_s"):
            if getattr(self, name) <= 0:
                raise InvalidInput("invalid_policy", f"{name} must be > 0 (got "
                                   f"{getattr(self, name)})", field=name)
        for name in ("cap_minor", "late_grace_s"):
            if getattr(self, name) < 0:
                raise InvalidInput("invalid_policy", f"{name} must be >= 0 (got "
                                   f"{getattr(self, name)})", field=name)
        if not 0 <= self.late_credit_bp <= 10_000:
            raise InvalidInput("invalid_policy", f"late_credit_bp must be in [0, 10000] (got "
                               f"{self.late_credit_bp})", field="late_credit_bp")


DEFAULT_POLICY = RefundPolicy()


@dataclass(frozen=True, slots=True, kw_only=True)
class RefundHistory:
    """What the decision needs beyond the request, as of ``now`` (epoch seconds)."""

    now: float
    refundable: Money  # captured less what was refunded or credited on the order
    consumer_given_minor: int = 0  # approved for this consumer within the cap window


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    outcome: Outcome
    amount: Money  # zero for reject and human
    code: str  # stable, e.g. "items_refunded", "window_closed"
    reason: str  # one sentence for the consumer and ops
    as_credit: bool = False

    @property
    def status(self) -> Status:
        if self.outcome is Outcome.REJECT:
            return Status.REJECTED
        if self.outcome is Outcome.HUMAN:
            return Status.PENDING_REVIEW
        return Status.APPROVED

    @property
    def gives_money(self) -> bool:
        return self.status is Status.APPROVED and self.amount.amount_minor > 0


# A fraud check (later issue): None lets the request through; a Decision (HUMAN or REJECT)
# stops it before any money moves.
Check = Callable[[RefundRequest, Order, RefundHistory], "Decision | None"]


def _reject(order: Order, code: str, reason: str) -> Decision:
    return Decision(outcome=Outcome.REJECT, amount=Money.zero(order.currency), code=code,
                    reason=reason)


def _human(order: Order, code: str, reason: str) -> Decision:
    return Decision(outcome=Outcome.HUMAN, amount=Money.zero(order.currency), code=code,
                    reason=reason)


def items_value(request: RefundRequest, order: Order) -> Money:
    """The named items' prices plus their share of the order's tax (tax x items / subtotal,
    rounded half-to-even once). An item not on the order, or more of it than was ordered
    (summed over its lines), is ``InvalidInput`` naming ``items``. Lines of one item at
    different prices are taken in order."""
    value = 0
    for line in request.items:
        on_order = [ln for ln in order.lines if ln.item_id == line.item_id]
        if not on_order:
            raise InvalidInput("item_not_on_order", f"item {line.item_id} is not on order "
                               f"{order.id}", field="items")
        ordered = sum(ln.quantity for ln in on_order)
        if line.quantity > ordered:
            raise InvalidInput("quantity_above_ordered", f"quantity must be at most {ordered} "
                               f"(got {line.quantity}) for item {line.item_id}", field="items")
        left = line.quantity
        for ln in on_order:
            take = min(left, ln.quantity)
            value += take * ln.unit_price.amount_minor
            left -= take
    subtotal = order.prices.subtotal.amount_minor
    tax = order.prices.tax.amount_minor
    share = round(Fraction(tax * value, subtotal)) if subtotal > 0 else 0
    return Money(amount_minor=value + share, currency=order.currency)


def decide(request: RefundRequest, order: Order, history: RefundHistory,
           policy: RefundPolicy = DEFAULT_POLICY, *, checks: Sequence[Check] = ()) -> Decision:
    """Decide a refund request by rules, in this order:

    1. the order must be delivered, and the request made within ``window_s`` of delivery;
    2. named items must be on the order, at most the ordered quantity (``InvalidInput``);
    3. ``never_arrived`` with a delivery photo, and ``other``, go to a human;
    4. ``late``: a credit of ``late_credit_bp`` of the subtotal when delivered more than
       ``late_grace_s`` after the promised window, else rejected;
    5. item reasons: the items' prices plus their tax share; ``never_arrived``: everything
       still refundable;
    6. nothing left to give back: rejected; more asked than left: partial (what is left);
    7. the consumer's approved amount within ``cap_window_s`` would pass ``cap_minor``: human;
    8. each of ``checks`` (fraud, none today) may still send it to a human or reject it.

    Never gives more than ``history.refundable``; credit for ``policy.credit_reasons``,
    else back to the card.
    """
    if request.order_id != order.id:
        raise InvalidInput("order_mismatch", f"request is for order {request.order_id}, not "
                           f"{order.id}", field="order_id")
    if order.status is not OrderStatus.DELIVERED or order.delivered_at is None:
        return _reject(order, "order_not_delivered", f"Only delivered orders can be refunded "
                       f"(this one is {order.status.value}).")
    if history.now - order.delivered_at > policy.window_s:
        return _reject(order, "window_closed", f"Refunds must be asked within "
                       f"{policy.window_s // 3600} h of delivery.")
    asked = items_value(request, order)
    if request.reason is Reason.NEVER_ARRIVED and order.proof and order.proof.photo_ref:
        return _human(order, "proof_photo_on_file", "The courier left a delivery photo; a "
                      "person will review it.")
    if request.reason is Reason.OTHER:
        return _human(order, "needs_review", "A person will review this request.")
    if request.reason is Reason.LATE:
        if not late.is_late(order.delivered_at, late.promised_end(order.eta.high_at),
                            grace_s=policy.late_grace_s):
            return _reject(order, "not_late", "The order arrived within its promised window.")
        asked = order.prices.subtotal.basis_points(policy.late_credit_bp)
    elif request.reason is Reason.NEVER_ARRIVED:
        asked = history.refundable
    return _approve(request, order, history, policy, asked, checks)


def _approve(request: RefundRequest, order: Order, history: RefundHistory,
             policy: RefundPolicy, asked: Money, checks: Sequence[Check]) -> Decision:
    left = history.refundable
    if left.amount_minor <= 0:
        return _reject(order, "nothing_left", "Everything paid on this order was already "
                       "given back.")
    if asked.amount_minor <= 0:
        return _reject(order, "nothing_to_give", "The request names nothing with a price.")
    amount = asked.min(left)
    if history.consumer_given_minor + amount.amount_minor > policy.cap_minor:
        return _human(order, "over_cap", "Refunds above the automatic limit are reviewed by "
                      "a person.")
    for check in checks:
        verdict = check(request, order, history)
        if verdict is not None and verdict.outcome in (Outcome.HUMAN, Outcome.REJECT):
            return verdict
    as_credit = request.reason in policy.credit_reasons
    how = "as store credit" if as_credit else "to your card"
    if amount < asked:
        return Decision(outcome=Outcome.PARTIAL, amount=amount, as_credit=as_credit,
                        code="partial", reason=f"{amount} {how}: what is left on the order.")
    return Decision(outcome=Outcome.CREDIT if as_credit else Outcome.REFUND, amount=amount,
                    as_credit=as_credit, code=f"{request.reason.value}_approved",
                    reason=f"{amount} {how}.")


def by_ops(order: Order, *, outcome: Outcome, amount_minor: int, refundable: Money,
           reason: str) -> Decision:
    """A person's decision on a request sent to a human: refund, credit or reject, never more
    than ``refundable``. ``reason`` (1..200 characters) is shown as given."""
    if not 1 <= len(reason.strip()) <= 200:
        raise InvalidInput("invalid_reason", f"reason must be 1..200 characters (got "
                           f"{len(reason.strip())})", field="reason")
    if outcome is Outcome.REJECT:
        return _reject(order, "rejected_by_ops", reason.strip())
    if outcome not in (Outcome.REFUND, Outcome.CREDIT):
        raise InvalidInput("invalid_outcome", f"outcome must be refund, credit or reject (got "
                           f"{outcome.value})", field="outcome")
    if not 0 < amount_minor <= refundable.amount_minor:
        raise InvalidInput("invalid_amount", f"amount_minor must be > 0 and at most what is "
                           f"refundable, {refundable.amount_minor} (got {amount_minor})",
                           field="amount_minor")
    return Decision(outcome=outcome, amount=Money(amount_minor=amount_minor,
                                                  currency=order.currency),
                    as_credit=outcome is Outcome.CREDIT, code="approved_by_ops",
                    reason=reason.strip())


@dataclass(frozen=True, slots=True, kw_only=True)
class RefundCase:
    """A stored request and its decision (a pending one holds the rules' HUMAN verdict)."""

    id: str
    consumer_id: str
    request: RefundRequest
    status: Status
    decision: Decision
    created_at: float
    idempotency_key: str  # unique per tenant: "<consumer>:<Idempotency-Key>"
    decided_at: float | None = None  # None while it waits for a human

    @property
    def ledger_key(self) -> str:
        """The ledger transaction's idempotency key: one posting per request."""
        return f"refund_request:{self.id}"
