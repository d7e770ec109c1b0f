"""Daily settlement from ledger postings (pure): per merchant, per courier, per currency.

The input is the day's postings (``StatementLine``: one account's line of a transaction)
and, for the orders they name, the order's price breakdown. Everything is read off the
postings; the order is only needed to split a charge's platform revenue into the
merchant's commission and the fees, which the capture posts as one line:

- a charge (``capture`` or ``cancellation_charge``) splits the amount charged line by line
  (``core.ledger.orders.charge_parts``); its subtotal part is the merchant's gross sale, the
  commission is gross less what the merchant was credited, the fees are the platform's
  revenue line less the commission;
- merchant net payable = minus the sum of its ``merchant_payable`` postings other than
  payouts (a reversal counts); payouts = the payouts' debits;
- courier pay = minus its ``courier_payable`` postings in ``courier_pay`` transactions of an
  order (a trip each); guarantee top-ups = the same without an order; tips = its credit in
  charges; earnings = pay + tips + top-ups;
- per currency: GMV = what consumers were charged (captures and cancellation charges, the
  ``processor_clearing`` debit); platform net revenue = minus the ``platform_revenue``
  postings (commission and fees less courier pay and top-ups); take rate = net revenue /
  GMV (None when nothing was charged). Refunds and credits are the platform's expense on
  the ``refunds`` account and are reported beside it, not netted into the take rate.

Amounts are integer minor units; every total of a kind equals the sum of the matching
postings, so a settlement reconciles with the ledger's balances to the unit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from lastmile.core.ledger.entries import AccountKind, StatementLine, TxnKind, kind_of
from lastmile.core.ledger.orders import charge_parts
from lastmile.core.money import Money
from lastmile.core.orders import PriceBreakdown

A = AccountKind
CHARGES = frozenset({TxnKind.CAPTURE, TxnKind.CANCELLATION_CHARGE})


def day_bounds(day: date, time_zone: str) -> tuple[float, float]:
    """[start, end) of ``day`` in ``time_zone`` as epoch seconds (23 or 25 hours long on a
    daylight-saving change)."""
    tz = ZoneInfo(time_zone)
    start = datetime(day.year, day.month, day.day, tzinfo=tz)
    nxt = day + timedelta(days=1)
    end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz)
    return start.timestamp(), end.timestamp()


def local_hour(at: float, time_zone: str) -> int:
    """The hour of the day (0-23) of epoch ``at`` in ``time_zone``."""
    return datetime.fromtimestamp(at, UTC).astimezone(ZoneInfo(time_zone)).hour


@dataclass(frozen=True, slots=True, kw_only=True)
class MerchantSettlement:
    merchant_id: str
    currency: str
    orders: int = 0  # orders charged (captured or cancelled with a charge)
    gross_sales_minor: int = 0
    commission_minor: int = 0
    fees_minor: int = 0  # delivery, service and small-order fees its orders charged
    refunds_minor: int = 0  # refunds and credits on its orders (the platform's expense)
    net_payable_minor: int = 0
    payouts_minor: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class CourierSettlement:
    courier_id: str
    currency: str
    trips: int = 0
    pay_minor: int = 0
    tips_minor: int = 0
    top_ups_minor: int = 0
    payouts_minor: int = 0
    earnings_by_hour: tuple[int, ...] = (0,) * 24  # minor units posted in each local hour

    @property
    def earnings_minor(self) -> int:
        return self.pay_minor + self.tips_minor + self.top_ups_minor


@dataclass(frozen=True, slots=True, kw_only=True)
class PlatformDay:
    currency: str
    gmv_minor: int = 0
    commission_minor: int = 0
    fees_minor: int = 0
    courier_pay_minor: int = 0  # trip pay and top-ups (tips are not the platform's)
    net_revenue_minor: int = 0
    refunds_minor: int = 0

    @property
    def take_rate(self) -> float | None:
        return round(self.net_revenue_minor / self.gmv_minor, 4) if self.gmv_minor else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Settlement:
    merchants: tuple[MerchantSettlement, ...]
    couriers: tuple[CourierSettlement, ...]
    platform: tuple[PlatformDay, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderFacts:
    """What settlement needs of an order: its merchant and its price breakdown."""

    merchant_id: str
    prices: PriceBreakdown


def settle(lines: Iterable[StatementLine], orders: Mapping[str, OrderFacts], *,
           time_zone: str = "UTC") -> Settlement:
    """The settlement of ``lines`` (a day's postings, every line of each transaction).
    ``orders`` holds the orders the charges and refunds name; a charge of an order missing
    from it counts its merchant's net but no gross/commission split (0 gross)."""
    by_txn: dict[str, list[StatementLine]] = {}
    for line in lines:
        by_txn.setdefault(line.transaction_id, []).append(line)
    merchants: dict[tuple[str, str], MerchantSettlement] = {}
    couriers: dict[tuple[str, str], CourierSettlement] = {}
    platform: dict[str, PlatformDay] = {}
    for txn in by_txn.values():
        first = txn[0]
        cur = first.currency
        facts = orders.get(first.order_id) if first.order_id else None
        day = _platform_lines(platform.get(cur) or PlatformDay(currency=cur), txn)
        for line in txn:
            kind = kind_of(line.account)
            party = line.account.partition(":")[2]
            if kind is A.MERCHANT_PAYABLE:
                m = merchants.get((party, cur)) or MerchantSettlement(merchant_id=party,
                                                                     currency=cur)
                merchants[(party, cur)], day = _merchant_line(m, line, txn, facts, day)
            elif kind is A.COURIER_PAYABLE:
                c = couriers.get((party, cur)) or CourierSettlement(courier_id=party,
                                                                   currency=cur)
                couriers[(party, cur)] = _courier_line(c, line, time_zone)
        platform[cur] = day
        if first.kind in (TxnKind.REFUND, TxnKind.CREDIT) and facts is not None:
            given = sum(q.amount_minor for q in txn if kind_of(q.account) is A.REFUNDS)
            key = (facts.merchant_id, cur)
            m = merchants.get(key) or MerchantSettlement(merchant_id=facts.merchant_id,
                                                         currency=cur)
            merchants[key] = replace(m, refunds_minor=m.refunds_minor + given)
    return Settlement(merchants=tuple(v for _, v in sorted(merchants.items())),
                      couriers=tuple(v for _, v in sorted(couriers.items())),
                      platform=tuple(v for _, v in sorted(platform.items())))


def _platform_lines(day: PlatformDay, txn: list[StatementLine]) -> PlatformDay:
    net, pay, gmv, refunds = (day.net_revenue_minor, day.courier_pay_minor, day.gmv_minor,
                              day.refunds_minor)
    for q in txn:
        kind = kind_of(q.account)
        if kind is A.PLATFORM_REVENUE:
            net -= q.amount_minor
            if q.kind is TxnKind.COURIER_PAY:
                pay += q.amount_minor
        elif kind is A.PROCESSOR_CLEARING and q.kind in CHARGES:
            gmv += q.amount_minor
        elif kind is A.REFUNDS:
            refunds += q.amount_minor
    return replace(day, net_revenue_minor=net, courier_pay_minor=pay, gmv_minor=gmv,
                   refunds_minor=refunds)


def _merchant_line(m: MerchantSettlement, line: StatementLine, txn: list[StatementLine],
                   facts: OrderFacts | None, day: PlatformDay
                   ) -> tuple[MerchantSettlement, PlatformDay]:
    if line.kind is TxnKind.PAYOUT:
        return replace(m, payouts_minor=m.payouts_minor + line.amount_minor), day
    m = replace(m, net_payable_minor=m.net_payable_minor - line.amount_minor)
    if line.kind not in CHARGES:
        return m, day
    m = replace(m, orders=m.orders + 1)
    if facts is None:
        return m, day
    charged = sum(q.amount_minor for q in txn if kind_of(q.account) is A.PROCESSOR_CLEARING)
    revenue = -sum(q.amount_minor for q in txn if kind_of(q.account) is A.PLATFORM_REVENUE)
    gross = charge_parts(facts.prices, Money(amount_minor=charged,
                                              currency=line.currency))["subtotal"].amount_minor
    commission = gross + line.amount_minor  # the merchant was credited gross - commission
    fees = revenue - commission
    return (replace(m, gross_sales_minor=m.gross_sales_minor + gross,
                    commission_minor=m.commission_minor + commission,
                    fees_minor=m.fees_minor + fees),
            replace(day, commission_minor=day.commission_minor + commission,
                    fees_minor=day.fees_minor + fees))


def _courier_line(c: CourierSettlement, line: StatementLine, time_zone: str
                  ) -> CourierSettlement:
    amount = -line.amount_minor
    if line.kind is TxnKind.PAYOUT:
        return replace(c, payouts_minor=c.payouts_minor + line.amount_minor)
    if line.kind is TxnKind.COURIER_PAY and line.order_id is not None:
        c = replace(c, trips=c.trips + 1, pay_minor=c.pay_minor + amount)
    elif line.kind is TxnKind.COURIER_PAY:
        c = replace(c, top_ups_minor=c.top_ups_minor + amount)
    else:  # a charge's tip, or a reversal of either
        c = replace(c, tips_minor=c.tips_minor + amount)
    hour = local_hour(line.created_at, time_zone)
    hours = list(c.earnings_by_hour)
    hours[hour] += amount
    return replace(c, earnings_by_hour=tuple(hours))
