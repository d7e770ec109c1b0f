"""Settlement reports from the ledger (issue 10 item 6; docs/reports.md).

A day's settlement per merchant and per courier and the platform's take rate per currency
(``core.ledger.settlement``), read from the acting tenant's ledger postings; the CSV rows
and the JSON the ops API answers. The day runs midnight to midnight in the region's time
zone.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from lastmile.app.context import Services
from lastmile.app.ports import UnitOfWork
from lastmile.core.errors import InvalidInput
from lastmile.core.ledger.entries import StatementLine
from lastmile.core.ledger.settlement import (
    CourierSettlement,
    MerchantSettlement,
    OrderFacts,
    PlatformDay,
    Settlement,
    day_bounds,
    settle,
)

Kind = Literal["merchant", "courier"]
KINDS: tuple[Kind, ...] = ("merchant", "courier")
MERCHANT_COLUMNS = ("merchant_id", "currency", "orders", "gross_sales_minor",
                    "commission_minor", "fees_minor", "refunds_minor", "net_payable_minor",
                    "payouts_minor")
COURIER_COLUMNS = ("courier_id", "currency", "trips", "pay_minor", "tips_minor",
                   "top_ups_minor", "earnings_minor", "payouts_minor")


@dataclass(frozen=True, slots=True, kw_only=True)
class DailySettlement:
    day: date
    time_zone: str
    start: float  # epoch s, inclusive
    end: float  # epoch s, exclusive
    settlement: Settlement


def parse_day(raw: str, *, field: str = "date") -> date:
    try:
        return date.fromisoformat(raw)
    except (TypeError, ValueError):
        raise InvalidInput("invalid_date", f"{field} must be a day as YYYY-MM-DD (got "
                           f"{raw!r})", field=field) from None


def parse_kind(raw: str, *, field: str = "kind") -> Kind:
    for kind in KINDS:
        if raw == kind:
            return kind
    raise InvalidInput("invalid_kind", f"{field} must be one of {', '.join(KINDS)} (got "
                       f"{raw!r})", field=field)


def _time_zone(uow: UnitOfWork, region_id: str | None) -> str:
    """The region's time zone; without a region, the tenant's regions' one zone (UTC when
    it has none); several zones need a region."""
    if region_id is not None:
        region = uow.regions.get(region_id)
        if region is None:
            raise InvalidInput("invalid_region", f"region {region_id} does not exist",
                               field="region")
        return region.time_zone
    zones = sorted({r.time_zone for r in uow.regions.list()})
    if len(zones) > 1:
        raise InvalidInput("region_required", f"the tenant's regions are in {len(zones)} time "
                           f"zones ({', '.join(zones)}): name the region", field="region")
    return zones[0] if zones else "UTC"


def _facts(uow: UnitOfWork, lines: list[StatementLine]) -> dict[str, OrderFacts]:
    found = {}
    for order_id in sorted({q.order_id for q in lines if q.order_id is not None}):
        order = uow.orders.get(order_id)
        if order is not None:
            found[order_id] = OrderFacts(merchant_id=order.merchant_id, prices=order.prices)
    return found


def daily_settlement(services: Services, day: date, *,
                     region_id: str | None = None) -> DailySettlement:
    """The settlement of ``day`` (midnight to midnight in the region's time zone) from the
    acting tenant's ledger postings of that day."""
    with services.uow(read_only=True) as uow:
        zone = _time_zone(uow, region_id)
        start, end = day_bounds(day, zone)
        lines = uow.ledger.postings_between(start, end)
        facts = _facts(uow, lines)
    return DailySettlement(day=day, time_zone=zone, start=start, end=end,
                           settlement=settle(lines, facts, time_zone=zone))


def ledger_totals(services: Services) -> Settlement:
    """The settlement of every posting of the acting tenant's ledger (the simulator's
    money KPIs)."""
    with services.uow(read_only=True) as uow:
        lines = uow.ledger.postings_between()
        facts = _facts(uow, lines)
    return settle(lines, facts)


def merchant_row(m: MerchantSettlement) -> dict[str, Any]:
    return {c: getattr(m, c) for c in MERCHANT_COLUMNS}


def courier_row(c: CourierSettlement) -> dict[str, Any]:
    return {col: getattr(c, col) for col in COURIER_COLUMNS}


def platform_row(p: PlatformDay) -> dict[str, Any]:
    return {"currency": p.currency, "gmv_minor": p.gmv_minor,
            "commission_minor": p.commission_minor, "fees_minor": p.fees_minor,
            "courier_pay_minor": p.courier_pay_minor, "net_revenue_minor": p.net_revenue_minor,
            "refunds_minor": p.refunds_minor, "take_rate": p.take_rate}


def rows(report: DailySettlement, kind: Kind) -> list[dict[str, Any]]:
    """One row per merchant or per courier (and currency), sorted by id."""
    s = report.settlement
    if kind == "merchant":
        return [merchant_row(m) for m in s.merchants]
    return [courier_row(c) for c in s.couriers]


def to_csv(report: DailySettlement, kind: Kind) -> str:
    """The CSV of ``rows``: a header, then one line per party (amounts in minor units)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=MERCHANT_COLUMNS if kind == "merchant"
                            else COURIER_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows(report, kind))
    return out.getvalue()


def as_json(report: DailySettlement, kind: Kind) -> dict[str, Any]:
    """The ops API's answer: the day, its bounds, the parties' rows and the platform's take
    rate per currency."""
    body: dict[str, Any] = {
        "date": report.day.isoformat(), "time_zone": report.time_zone, "kind": kind,
        "start": report.start, "end": report.end, "rows": rows(report, kind),
        "platform": [platform_row(p) for p in report.settlement.platform]}
    if kind == "courier":
        body["earnings_by_hour"] = {
            c.courier_id: {str(h): v for h, v in enumerate(c.earnings_by_hour) if v}
            for c in report.settlement.couriers}
    return body
