"""The ledger's audit: every transaction balances, every stored balance is the sum of its
postings, and the ledger agrees with the orders.

It reads postings as stored rows (``PostingRow``), not as ``Transaction`` values (which
refuse to exist unbalanced), so a damaged row is reported, not raised.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lastmile.core.ledger.entries import AccountKind, TxnKind, kind_of
from lastmile.core.money import Money
from lastmile.core.orders import TERMINAL, Order, OrderStatus


@dataclass(frozen=True, slots=True, kw_only=True)
class PostingRow:
    transaction_id: str
    kind: str
    order_id: str | None
    currency: str
    account: str
    amount_minor: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerReport:
    transactions: int
    postings: int
    orders_checked: int
    unposted_orders: tuple[str, ...]  # orders with no transaction yet (events not relayed)
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


_CHARGES = frozenset({TxnKind.CAPTURE.value, TxnKind.CANCELLATION_CHARGE.value})
_GIVEN_BACK = frozenset({TxnKind.REFUND.value, TxnKind.CREDIT.value})


def audit(rows: Iterable[PostingRow], stored: Mapping[tuple[str, str], int],
          orders: Mapping[str, Order]) -> LedgerReport:
    """Check ``rows`` (every posting), ``stored`` (the database's balance per (account,
    currency)) and ``orders`` (every order of the tenant, by id)."""
    rows = list(rows)
    problems: list[str] = []
    by_txn: dict[str, list[PostingRow]] = defaultdict(list)
    for r in rows:
        by_txn[r.transaction_id].append(r)
    for txn_id, postings in sorted(by_txn.items()):
        problems.extend(_transaction_problems(txn_id, postings))
    problems.extend(_balance_problems(rows, stored))
    by_order: dict[str, list[PostingRow]] = defaultdict(list)
    for r in rows:
        if r.order_id is not None:
            by_order[r.order_id].append(r)
    for order_id in sorted(set(by_order) - set(orders)):
        problems.append(f"order {order_id}: has ledger postings but no such order")
    unposted = []
    for order in sorted(orders.values(), key=lambda o: o.id):
        if order.id not in by_order:
            if order.prices.total.amount_minor:
                unposted.append(order.id)
            continue
        problems.extend(order_problems(order, by_order[order.id]))
    return LedgerReport(transactions=len(by_txn), postings=len(rows),
                        orders_checked=len(orders) - len(unposted),
                        unposted_orders=tuple(unposted), problems=tuple(problems))


def _transaction_problems(txn_id: str, postings: list[PostingRow]) -> list[str]:
    found = []
    currencies = {p.currency for p in postings}
    if len(currencies) != 1:
        found.append(f"transaction {txn_id}: mixes currencies {sorted(currencies)}")
    for cur in sorted(currencies):
        net = sum(p.amount_minor for p in postings if p.currency == cur)
        if net:
            found.append(f"transaction {txn_id}: postings sum to {net} {cur} (expected 0)")
    if len(postings) < 2:
        found.append(f"transaction {txn_id}: has {len(postings)} posting(s), needs 2")
    return found


def balances(rows: Iterable[PostingRow]) -> dict[tuple[str, str], int]:
    """The balance of every (account, currency): the sum of its postings."""
    out: dict[tuple[str, str], int] = defaultdict(int)
    for r in rows:
        out[(r.account, r.currency)] += r.amount_minor
    return dict(out)


def _balance_problems(rows: list[PostingRow], stored: Mapping[tuple[str, str], int]
                      ) -> list[str]:
    found = []
    summed = balances(rows)
    for key in sorted(set(summed) | set(stored)):
        if summed.get(key, 0) != stored.get(key, 0):
            found.append(f"account {key[0]} ({key[1]}): stored balance {stored.get(key, 0)} "
                         f"!= sum of its postings {summed.get(key, 0)}")
    per_currency: dict[str, int] = defaultdict(int)
    for (_, cur), amount in summed.items():
        per_currency[cur] += amount
    for cur, net in sorted(per_currency.items()):
        if net:
            found.append(f"ledger in {cur}: accounts sum to {net} (expected 0)")
    return found


def order_problems(order: Order, postings: Iterable[PostingRow]) -> list[str]:
    """Where the order's postings disagree with the order: its hold (held while it is
    open, released once it ends), what was captured (the total when delivered, the
    cancellation charge when cancelled, nothing before), and refunds within the capture."""
    postings = list(postings)
    cur, total = order.currency, order.prices.total.amount_minor
    found = [f"order {order.id}: posting in {p.currency}, order in {cur}"
             for p in postings if p.currency != cur]
    held = -sum(p.amount_minor for p in postings if kind_of(p.account) is AccountKind.HOLDS)
    expected_hold = 0 if order.status in TERMINAL else total
    if held != expected_hold:
        found.append(f"order {order.id} ({order.status.value}): hold is {_m(held, cur)}, "
                     f"expected {_m(expected_hold, cur)}")
    captured = _net(postings, _CHARGES, AccountKind.PROCESSOR_CLEARING)
    expected = expected_capture(order)
    if captured != expected:
        found.append(f"order {order.id} ({order.status.value}): captured {_m(captured, cur)}, "
                     f"expected {_m(expected, cur)}")
    given_back = _net(postings, _GIVEN_BACK, AccountKind.REFUNDS)
    if not 0 <= given_back <= captured:
        found.append(f"order {order.id}: refunded and credited {_m(given_back, cur)}, more "
                     f"than captured {_m(captured, cur)}")
    return found


def expected_capture(order: Order) -> int:
    """What the consumer must have been charged for ``order`` by now, in minor units."""
    if order.status is OrderStatus.DELIVERED:
        return order.prices.total.amount_minor
    if order.status is OrderStatus.CANCELLED and order.cancellation is not None:
        return order.cancellation.consumer_charge.amount_minor
    return 0


def _net(postings: list[PostingRow], kinds: frozenset[str], account: AccountKind) -> int:
    return sum(p.amount_minor for p in postings
               if p.kind in kinds and kind_of(p.account) is account)


def _m(minor: int, currency: str) -> str:
    return str(Money(amount_minor=minor, currency=currency))
