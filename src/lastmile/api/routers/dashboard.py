"""The ops dashboard: its page and the JSON it reads (map, open orders, KPIs, timelines)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, Response

from lastmile.api.deps import Ops, ServicesDep
from lastmile.api.schemas import Id, event_out, region_out
from lastmile.app import dashboard, queries
from lastmile.app.dashboard import Kpis
from lastmile.core.eta import late

router = APIRouter(tags=["dashboard"])

STATIC = Path(__file__).resolve().parent.parent / "static"
_ASSETS = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
# The page carries an ops key in its URL: never leak it through Referer, never cache it,
# and run nothing but our own scripts. Images may come from any https origin: the tenant's
# logo (config.branding.logo_url, https only), which the static page cannot name ahead.
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; connect-src 'self' ws: wss:; "
                               "img-src 'self' data: https:; frame-ancestors 'none'",
}


@router.get("/ops/dashboard", include_in_schema=False)
def page(region: Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")] = None,
         ) -> Response:
    """The dashboard page; it reads ``region`` and ``key`` from its own query string."""
    return FileResponse(STATIC / "dashboard.html", media_type="text/html",
                        headers=_PAGE_HEADERS)


@router.get("/ops/dashboard/assets/{name}", include_in_schema=False)
def asset(name: str) -> Response:
    if name not in _ASSETS:
        return Response(status_code=404)
    return FileResponse(STATIC / name, media_type=_ASSETS[name],
                        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})


@router.get("/v1/ops/regions/{region_id}/map")
def region_map(svc: ServicesDep, who: Ops, region_id: Id) -> dict[str, Any]:
    """The region's outline, its bounding box and its merchants (for drawing)."""
    found = dashboard.region_map(svc, region_id)
    vertices = found.region.polygon.vertices
    return {
        "region": region_out(found.region),
        "bbox": {"min_lat": min(v.lat for v in vertices), "max_lat": max(v.lat for v in vertices),
                 "min_lng": min(v.lng for v in vertices), "max_lng": max(v.lng for v in vertices)},
        "merchants": [_merchant(m) for m in found.merchants],
    }


@router.get("/v1/ops/regions/{region_id}/merchants")
def merchants(svc: ServicesDep, who: Ops, region_id: Id) -> dict[str, Any]:
    return {"merchants": [_merchant(m) for m in dashboard.region_map(svc, region_id).merchants]}


def _merchant(m: Any) -> dict[str, Any]:
    return {"id": m.id, "name": m.name, "lat": m.location.lat, "lng": m.location.lng,
            "active": m.active, "prep_time_s": m.prep_time_s}


@router.get("/v1/ops/regions/{region_id}/open-orders")
def open_orders(svc: ServicesDep, who: Ops, region_id: Id,
                limit: Annotated[int, Query(ge=1, le=500)] = 500) -> dict[str, Any]:
    """Orders not yet delivered or cancelled, newest first, with positions and age."""
    now = svc.clock.now()
    return {"at": now, "orders": [
        {"id": o.id, "status": o.status.value, "merchant_id": o.merchant_id,
         "courier_id": o.courier_id, "placed_at": o.placed_at, "age_s": round(now - o.placed_at),
         "pickup": {"lat": o.pickup.lat, "lng": o.pickup.lng},
         "dropoff": {"lat": o.dropoff.lat, "lng": o.dropoff.lng},
         "eta_high_at": o.eta.high_at,
         "late": late.is_late(now, late.promised_end(o.eta.high_at))}
        for o in dashboard.open_orders(svc, region_id, limit=limit)]}


@router.get("/v1/ops/regions/{region_id}/kpis")
def kpis(svc: ServicesDep, who: Ops, region_id: Id,
         window_s: Annotated[int, Query(ge=60, le=604_800)] = 3600,
         step_s: Annotated[int, Query(ge=1, le=86_400)] = 60) -> dict[str, Any]:
    """KPI tiles now and series of open orders and couriers on shift over ``window_s``."""
    return _kpis_out(dashboard.kpis(svc, region_id, window_s=window_s, step_s=step_s))


def _kpis_out(k: Kpis) -> dict[str, Any]:
    return {
        "region_id": k.region_id, "at": k.at, "since": k.since,
        "open_orders": k.open_orders, "active_couriers": k.active_couriers,
        "delivered": k.delivered, "cancelled": k.cancelled,
        "click_to_door_s": {"mean": k.click_to_door_mean_s, "p50": k.click_to_door_p50_s,
                            "p90": k.click_to_door_p90_s},
        "late": k.late, "late_share": k.late_share, "open_past_eta": k.open_past_eta,
        "series": [{"at": p.at, "open_orders": p.open_orders,
                    "active_couriers": p.active_couriers} for p in k.series],
    }


@router.get("/v1/ops/orders/{order_id}/timeline")
def timeline(svc: ServicesDep, who: Ops, order_id: Id) -> dict[str, Any]:
    """The order's events with seconds since placed and since the previous step."""
    order = queries.get_order(svc, order_id, who=who)
    steps = dashboard.timeline(queries.order_history(svc, order_id, who=who))
    return {"order_id": order.id, "status": order.status.value,
            "quoted_eta": {"low_at": order.eta.low_at, "expected_at": order.eta.expected_at,
                           "high_at": order.eta.high_at},
            "steps": [{**event_out(s.event), "at": s.event.occurred_at,
                       "since_placed_s": round(s.since_placed_s, 1),
                       "since_previous_s": round(s.since_previous_s, 1)} for s in steps]}
