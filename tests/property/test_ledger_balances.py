"""Random order histories (every lifecycle path, cancellation at every state by every kind of
actor, refunds, credits, payouts and corrections, in USD, JPY and KWD) keep every
transaction and the whole ledger balanced, and the ledger agrees with the orders."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from fakes import an_order
from lastmile.core.errors import DomainError
from lastmile.core.ledger import orders as lo
from lastmile.core.ledger.audit import PostingRow, audit, balances, expected_capture
from lastmile.core.ledger.entries import PAYABLE_KINDS, Posted, Transaction, kind_of, reversal
from lastmile.core.lifecycle import (
    ArriveAtDropoff,
    ArriveAtPickup,
    Assign,
    Cancel,
    Confirm,
    Deliver,
    MarkReady,
    PickUp,
    Unassign,
    decide,
)
from lastmile.core.money import Money
from lastmile.core.orders import Actor, ActorKind, DeliveryProof, OrderStatus, PriceBreakdown

# The happy path, one command per step; a history stops after any prefix of it.
PATH = (Confirm(prep_estimate_s=600), Assign(courier_id="cou_1"), MarkReady(), ArriveAtPickup(),
        PickUp(), ArriveAtDropoff(), Deliver(proof=DeliveryProof(note="door")))
CANCELLERS = (ActorKind.CONSUMER, ActorKind.MERCHANT, ActorKind.OPS, ActorKind.SYSTEM)


class Book:
    """An in-memory ledger that posts each key once, as the repository does."""

    def __init__(self) -> None:
        self.posted: list[Posted] = []
        self.keys: set[str] = set()

    def post(self, txn: Transaction | None) -> None:
        if txn is None or txn.key in self.keys:
            return
        self.keys.add(txn.key)
        self.posted.append(Posted(id=f"ltx_{len(self.posted)}", transaction=txn,
                                  created_at=float(len(self.posted))))

    def rows(self) -> list[PostingRow]:
        return [PostingRow(transaction_id=p.id, kind=p.transaction.kind.value,
                           order_id=p.transaction.order_id, currency=p.transaction.currency,
                           account=q.account, amount_minor=q.amount_minor)
                for p in self.posted for q in p.transaction.postings]

    def of_order(self, order_id: str) -> list[PostingRow]:
        return [r for r in self.rows() if r.order_id == order_id]


def _money(currency: str, max_major: int) -> st.SearchStrategy[Money]:
    scale = {"JPY": 1, "USD": 100, "KWD": 1000}[currency]
    return st.integers(0, max_major * scale).map(
        lambda m: Money(amount_minor=m, currency=currency))


@st.composite
def orders(draw: st.DrawFn, n: int) -> object:
    cur = draw(st.sampled_from(["USD", "JPY", "KWD"]))
    amounts = {name: draw(_money(cur, top)) for name, top in (
        ("subtotal", 300), ("delivery_fee", 20), ("service_fee", 20),
        ("small_order_fee", 5), ("tax", 40), ("tip", 30))}
    prices = PriceBreakdown(**amounts)
    order = an_order(id=f"ord_{n}", consumer_id=f"con_{n % 3}", merchant_id=f"mer_{n % 2}",
                     prices=prices)
    line = replace(order.lines[0], unit_price=Money(amount_minor=100, currency=cur))
    return replace(order, lines=(line,))


@st.composite
def histories(draw: st.DrawFn) -> object:
    count = draw(st.integers(1, 5))
    return [(draw(orders(i)), draw(st.integers(0, len(PATH))), draw(st.booleans()),
             draw(st.sampled_from(CANCELLERS)), draw(st.booleans()),
             draw(st.lists(st.tuples(st.booleans(), st.floats(0, 1)), max_size=3)))
            for i in range(count)]


def _actor(kind: ActorKind, order: object) -> Actor:
    ids = {ActorKind.CONSUMER: order.consumer_id, ActorKind.MERCHANT: order.merchant_id,  # type: ignore[attr-defined]
           ActorKind.COURIER: "cou_1"}
    return Actor(kind=kind, id=ids.get(kind, kind.value))


def _run(order, steps, unassign, canceller, cancel):  # type: ignore[no-untyped-def]
    """The order after ``steps`` of the path (an unassign and reassign on the way when asked),
    then a cancellation by ``canceller`` when asked and allowed."""
    now = 1000.0
    for i, command in enumerate(PATH[:steps]):
        kind = ActorKind.MERCHANT if i in (0, 2) else ActorKind.COURIER
        now += 60
        order, _ = decide(order, command, actor=_actor(kind, order), now=now)
        if unassign and order.status is OrderStatus.ASSIGNED:
            order, _ = decide(order, Unassign(reason="flat tyre"),
                              actor=_actor(ActorKind.COURIER, order), now=now)
            order, _ = decide(order, Assign(courier_id="cou_1"),
                              actor=_actor(ActorKind.COURIER, order), now=now)
    if cancel and not order.terminal:
        try:
            order, _ = decide(order, Cancel(reason="changed my mind"),
                              actor=_actor(canceller, order), now=now + 1)
        except DomainError:
            order, _ = decide(order, Cancel(reason="support"),
                              actor=_actor(ActorKind.OPS, order), now=now + 1)
    return order


def _post_lifecycle(book: Book, order) -> None:  # type: ignore[no-untyped-def]
    book.post(lo.authorisation(order))
    if order.status is OrderStatus.DELIVERED:
        for txn in lo.order_delivered(order) + lo.order_delivered(order):  # redelivered
            book.post(txn)
    elif order.status is OrderStatus.CANCELLED:
        for txn in lo.order_cancelled(order):
            book.post(txn)


def _give_back(book: Book, order, plan) -> None:  # type: ignore[no-untyped-def]
    for n, (as_credit, share) in enumerate(plan):
        captured = expected_capture(order)
        given = sum(r.amount_minor for r in book.of_order(order.id)
                    if r.kind in ("refund", "credit") and r.account == "refunds")
        left = Money(amount_minor=captured - given, currency=order.currency)
        amount = Money(amount_minor=int(left.amount_minor * share), currency=order.currency)
        make = lo.credit if as_credit else lo.refund
        if amount.amount_minor <= 0:
            continue
        book.post(make(order, amount, key=f"{order.id}:give:{n}", refundable=left))


def _pay_out(book: Book) -> None:
    for (name, cur), balance in sorted(balances(book.rows()).items()):
        if kind_of(name) in PAYABLE_KINDS and balance < 0:
            owed = Money(amount_minor=-balance, currency=cur)
            amount = Money(amount_minor=max(1, owed.amount_minor // 2), currency=cur)
            book.post(lo.payout(name, amount, key=f"payout:{name}:{cur}", owed=owed))


@settings(max_examples=300, deadline=None)
@given(history=histories())
def test_random_order_histories_keep_the_ledger_balanced(history):  # type: ignore[no-untyped-def]
    book, final = Book(), {}
    for order, steps, unassign, canceller, cancel, plan in history:
        done = _run(order, steps, unassign, canceller, cancel)
        final[done.id] = done
        _post_lifecycle(book, done)
        _give_back(book, done, plan)
    _pay_out(book)
    for posted in book.posted:  # a Transaction cannot exist unbalanced; say it anyway
        assert sum(p.amount_minor for p in posted.transaction.postings) == 0
        assert {p.currency for p in posted.transaction.postings} == {posted.transaction.currency}
    rows = book.rows()
    report = audit(rows, balances(rows), final)
    assert report.ok, report.problems
    per_currency: dict[str, int] = {}
    for (_, cur), amount in balances(rows).items():
        per_currency[cur] = per_currency.get(cur, 0) + amount
    assert set(per_currency.values()) <= {0}
    for order in final.values():  # the hold is released exactly when the order ends
        held = -sum(r.amount_minor for r in book.of_order(order.id)
                    if r.account.startswith("holds:"))
        assert held == (0 if order.terminal else order.prices.total.amount_minor)


@settings(max_examples=100, deadline=None)
@given(history=histories())
def test_a_correction_is_a_new_transaction_that_keeps_the_ledger_balanced(history):  # type: ignore[no-untyped-def]
    book = Book()
    for order, steps, unassign, canceller, cancel, _ in history:
        _post_lifecycle(book, _run(order, steps, unassign, canceller, cancel))
    before = list(book.posted)
    for posted in before:
        book.post(reversal(posted, key=f"{posted.transaction.key}:reversed"))
    assert book.posted[:len(before)] == before  # nothing rewritten
    assert set(balances(book.rows()).values()) <= {0}  # every account back to zero
