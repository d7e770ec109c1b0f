"""Settlement reports for ops: a day's settlement per merchant or courier from the acting
tenant's ledger, and the platform's take rate per currency (docs/reports.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from lastmile.api.deps import Ops, ServicesDep
from lastmile.app import reports

router = APIRouter(prefix="/v1/ops/reports", tags=["ops"])


@router.get("/settlement")
def settlement(
    svc: ServicesDep, who: Ops,
    date: Annotated[str, Query(max_length=10, description="the day, YYYY-MM-DD, in the "
                                                          "region's time zone")],
    kind: Annotated[str, Query(max_length=16, description="merchant or courier")] = "merchant",
    region: Annotated[str | None, Query(max_length=64, description=(
        "the region whose time zone bounds the day (needed when the tenant's regions are in "
        "several zones)"))] = None,
) -> dict[str, Any]:
    """The day's settlement rows (amounts in minor units), the platform's GMV, revenue and
    take rate per currency, and for couriers their earnings per local hour. 422 names a bad
    ``date``, ``kind`` or ``region``."""
    day = reports.parse_day(date)
    which = reports.parse_kind(kind)
    return reports.as_json(reports.daily_settlement(svc, day, region_id=region), which)
