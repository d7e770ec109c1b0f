"""Ledger use cases: post an order's transactions from its events, refunds, credits,
payouts, balances, statements and the audit (``core.ledger``; docs/ledger.md).

The durable bus subscriber ``ledger`` (wired in ``bootstrap.install_ledger`` behind
``IdempotentHandler``) posts in the unit of work that marks the event seen, so an event's
transactions and its inbox mark commit together; each transaction's idempotency key makes
a second posting of the same fact a no-op even without the inbox (a replayed dead letter,
a payment adapter reporting twice).

Payments (issue 10 item 4) call ``post`` with the transactions of ``core.ledger.orders``
for the authorisation and capture results it gets from the processor.
"""

from __future__ import annotations

from dataclasses import dataclass

from lastmile.app import pay
from lastmile.app.context import Services
from lastmile.app.events import Event
from lastmile.app.ports import UnitOfWork
from lastmile.core.errors import InvalidInput, NotFound
from lastmile.core.ledger import orders as lo
from lastmile.core.ledger.audit import LedgerReport, audit
from lastmile.core.ledger.entries import (
    AccountKind,
    Posted,
    StatementLine,
    Transaction,
    TxnKind,
    parse_account,
)
from lastmile.core.ledger.orders import DEFAULT_POLICY, LedgerPolicy
from lastmile.core.money import Money
from lastmile.core.orders import Order, OrderStatus

SUBSCRIBER = "ledger"
POSTING_EVENTS = frozenset({"order.placed", "order.delivered", "order.cancelled",
                            "courier.shift_ended"})
MAX_STATEMENT = 1_000
_ALL_ORDERS = 10_000_000  # the audit reads every order of the tenant


def post(uow: UnitOfWork, services: Services, txn: Transaction | None) -> Posted | None:
    """Store ``txn`` (stamped with an id and the clock's time) unless its key is posted
    already; the posted transaction, or None when nothing was stored. The caller commits."""
    if txn is None:
        return None
    posted = Posted(id=services.ids.new("ltx"), transaction=txn, created_at=services.clock.now())
    return posted if uow.ledger.add(posted) else None


def post_all(uow: UnitOfWork, services: Services, txns: list[Transaction]) -> list[Posted]:
    """``post`` each of ``txns`` (in one write of the ledger); the ones stored now (a key
    posted before is skipped)."""
    now = services.clock.now()
    return uow.ledger.add_many([Posted(id=services.ids.new("ltx"), transaction=txn,
                                       created_at=now) for txn in txns])


def post_authorisation(uow: UnitOfWork, services: Services, order: Order) -> list[Posted]:
    """The order's authorisation hold (payments call it with the processor's approval)."""
    return post_all(uow, services, transactions_for("order.placed", order))


def post_delivery(uow: UnitOfWork, services: Services, order: Order,
                  policy: LedgerPolicy = DEFAULT_POLICY) -> list[Posted]:
    """A delivered order's hold release, capture and courier pay."""
    return post_all(uow, services, transactions_for("order.delivered", order, policy))


def post_cancellation(uow: UnitOfWork, services: Services, order: Order,
                      policy: LedgerPolicy = DEFAULT_POLICY) -> list[Posted]:
    """A cancelled order's hold release, cancellation charge and courier pay."""
    return post_all(uow, services, transactions_for("order.cancelled", order, policy))


def transactions_for(event_type: str, order: Order, policy: LedgerPolicy = DEFAULT_POLICY,
                     *, trip: Money | None = None) -> list[Transaction]:
    """The transactions an order event posts (placed: the hold; delivered: release, capture,
    courier pay; cancelled: release, what it charges, courier pay when owed)."""
    if event_type == "order.placed":
        hold = lo.authorisation(order)
        return [] if hold is None else [hold]
    if event_type == "order.delivered" and order.status is OrderStatus.DELIVERED:
        return lo.order_delivered(order, policy, trip=trip)
    if event_type == "order.cancelled" and order.status is OrderStatus.CANCELLED:
        return lo.order_cancelled(order, policy)
    return []


def on_event(event: Event, uow: UnitOfWork, services: Services,
             policy: LedgerPolicy = DEFAULT_POLICY) -> int:
    """Bus subscriber ``ledger`` (inside ``IdempotentHandler``'s unit of work): post what
    ``event`` means for its order; returns how many transactions were stored."""
    if event.type not in POSTING_EVENTS:
        return 0
    if event.type == "courier.shift_ended":
        return _post_top_up(event, uow, services)
    order = uow.orders.get(event.subject_id)
    if order is None:
        return 0
    # Placed always holds first: a cancellation relayed before its placement still finds
    # the hold to release (the key keeps the later placement event from holding again).
    txns = transactions_for(event.type, order, policy, trip=pay.trip_pay(uow, services, order))
    if event.type != "order.placed":
        txns = transactions_for("order.placed", order, policy) + txns
    return len(post_all(uow, services, txns))


def _post_top_up(event: Event, uow: UnitOfWork, services: Services) -> int:
    """An ended shift's guarantee top-up (its pay statement's last line), when owed."""
    shift_id = event.data.get("shift_id")
    if not isinstance(shift_id, str):
        return 0
    done = pay.shift_top_up(uow, services, event.subject_id, shift_id)
    if done is None or not done.top_up.amount_minor:
        return 0
    posted = post(uow, services, lo.guarantee_top_up(event.subject_id, shift_id, done.top_up))
    return 0 if posted is None else 1


@dataclass(frozen=True, slots=True, kw_only=True)
class GivenBack:
    posted: Posted | None  # None: the key was used already (a retried request)
    refundable: Money  # what is left to give back after this


def give_back(services: Services, order_id: str, amount_minor: int, *, key: str,
              as_credit: bool = False, memo: str = "") -> GivenBack:
    """Refund ``amount_minor`` to the consumer's card (or as store credit) on an order, at
    most what was captured and not given back yet; ``key`` makes a retry post once."""
    with services.uow() as uow:
        order = uow.orders.get(order_id)
        if order is None:
            raise NotFound("order_not_found", f"order {order_id} does not exist")
        given = give_back_in(uow, services, order, amount_minor, key=key,
                             as_credit=as_credit, memo=memo)
        uow.commit()
        return given


def give_back_in(uow: UnitOfWork, services: Services, order: Order, amount_minor: int, *,
                 key: str, as_credit: bool = False, memo: str = "") -> GivenBack:
    """``give_back`` in the caller's unit of work (``app.refunds`` posts with the request's
    decision); the caller commits."""
    if uow.ledger.by_key(key) is not None:
        return GivenBack(posted=None, refundable=_refundable(uow, order))
    left = _refundable(uow, order)
    amount = Money(amount_minor=amount_minor, currency=order.currency)
    make = lo.credit if as_credit else lo.refund
    posted = post(uow, services, make(order, amount, key=key, refundable=left, memo=memo))
    return GivenBack(posted=posted, refundable=left - amount)


def refundable(uow: UnitOfWork, order: Order) -> Money:
    """What the order captured, less what was refunded or credited on it."""
    return _refundable(uow, order)


def left_to_give_back(services: Services, order_id: str, *, key: str | None = None
                      ) -> Money | None:
    """What can still be given back on the order (captured, less refunds and credits);
    None when ``key`` is posted already (a retry: nothing is checked or moved again)."""
    with services.uow(read_only=True) as uow:
        order = uow.orders.get(order_id)
        if order is None:
            raise NotFound("order_not_found", f"order {order_id} does not exist")
        if key is not None and uow.ledger.by_key(key) is not None:
            return None
        return _refundable(uow, order)


def _refundable(uow: UnitOfWork, order: Order) -> Money:
    captured = given = 0
    for posted in uow.ledger.of_order(order.id):
        txn = posted.transaction
        if txn.kind in (TxnKind.CAPTURE, TxnKind.CANCELLATION_CHARGE):
            captured += txn.net_of_kind(AccountKind.PROCESSOR_CLEARING)
        elif txn.kind in (TxnKind.REFUND, TxnKind.CREDIT):
            given += txn.net_of_kind(AccountKind.REFUNDS)
    return Money(amount_minor=captured - given, currency=order.currency)


def pay_out(services: Services, account: str, currency: str, *, key: str,
            amount_minor: int | None = None) -> Posted | None:
    """Pay a merchant's or courier's payable out (all it is owed when ``amount_minor`` is
    None); None when ``key`` was used already."""
    parse_account(account)
    with services.uow() as uow:
        if uow.ledger.by_key(key) is not None:
            return None
        owed = Money(amount_minor=-uow.ledger.balances(account).get((account, currency), 0),
                     currency=currency)
        amount = owed if amount_minor is None else Money(amount_minor=amount_minor,
                                                         currency=currency)
        posted = post(uow, services, lo.payout(account, amount, key=key, owed=owed))
        uow.commit()
        return posted


def balance(services: Services, account: str, *, currency: str | None = None) -> dict[str, int]:
    """The account's balance in minor units per currency (debit > 0, credit < 0)."""
    parse_account(account)
    with services.uow(read_only=True) as uow:
        found = uow.ledger.balances(account)
    return {cur: amount for (_, cur), amount in sorted(found.items())
            if currency is None or cur == currency}


@dataclass(frozen=True, slots=True, kw_only=True)
class StatementEntry:
    line: StatementLine
    running_minor: int  # the account's balance in the line's currency after it


def statement(services: Services, account: str, *, currency: str | None = None,
              limit: int = 100) -> list[StatementEntry]:
    """The account's postings, oldest first, each with the running balance."""
    parse_account(account)
    if not 1 <= limit <= MAX_STATEMENT:
        raise InvalidInput("invalid_limit", f"limit must be in [1, {MAX_STATEMENT}] (got "
                           f"{limit})", field="limit")
    with services.uow(read_only=True) as uow:
        lines = uow.ledger.statement(account, currency=currency, limit=limit)
    running: dict[str, int] = {}
    out = []
    for line in lines:
        running[line.currency] = running.get(line.currency, 0) + line.amount_minor
        out.append(StatementEntry(line=line, running_minor=running[line.currency]))
    return out


def check(services: Services) -> LedgerReport:
    """The audit of the current tenant's ledger (``core.ledger.audit``)."""
    with services.uow(read_only=True) as uow:
        rows = uow.ledger.rows()
        stored = uow.ledger.balances()
        orders: dict[str, Order] = {o.id: o for o in uow.orders.list(limit=_ALL_ORDERS)}
    return audit(rows, stored, orders)

