"""Operations: regions, live counts, any order, manual offers and cancellations."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from lastmile.api.deps import Ops, ServicesDep
from lastmile.api.links import feeds
from lastmile.api.schemas import (
    CancelIn,
    CourierLiveStatus,
    Id,
    Lat,
    Line,
    Lng,
    OfferIn,
    RegionIn,
    event_out,
    iso,
    offer_out,
    order_out,
    region_out,
    statement_out,
)
from lastmile.app import bans, catalog, fulfilment, offers, pay, pins, queries, reassignment
from lastmile.core.geo import Point
from lastmile.core.orders import OrderStatus

router = APIRouter(prefix="/v1/ops", tags=["ops"])


@router.get("/regions")
def regions(svc: ServicesDep, who: Ops) -> dict[str, Any]:
    return {"regions": [region_out(r) for r in queries.list_regions(svc)]}


@router.post("/regions", status_code=201, responses=feeds(
    "region_id", "id", *(("get", f"/v1/ops/regions/{{region_id}}/{tail}")
                         for tail in ("live", "couriers", "map", "merchants", "kpis"))))
def create_region(svc: ServicesDep, who: Ops, body: RegionIn) -> dict[str, Any]:
    region = catalog.create_region(
        svc, name=body.name, market=body.market, time_zone=body.time_zone,
        currency=body.currency, tax_rate_bp=body.tax_rate_bp,
        polygon=tuple(Point(lat=p.lat, lng=p.lng) for p in body.polygon),
    )
    return region_out(region)


@router.get("/regions/{region_id}/live")
def live(svc: ServicesDep, who: Ops, region_id: Id) -> dict[str, Any]:
    """Orders by status and couriers by status in the region, now."""
    return {"region_id": region_id, **queries.live_counts(svc, region_id)}


@router.get("/regions/{region_id}/couriers")
def live_couriers(svc: ServicesDep, who: Ops, region_id: Id, request: Request) -> dict[str, Any]:
    """Live courier positions (fresh ones only) in the region."""
    queries.get_region(svc, region_id)  # the live store is not per tenant: 404 for another's
    live = request.app.state.container.live
    return {"couriers": [
        {"courier_id": c.courier_id, "lat": c.lat, "lng": c.lng, "status": c.status,
         "updated_at": c.updated_at}
        for c in live.all_in_region(region_id, now=svc.clock.now())]}


@router.get("/regions/{region_id}/couriers/nearest")
def nearest_couriers(
    svc: ServicesDep, who: Ops, region_id: Id, request: Request, lat: Lat, lng: Lng,
    radius_m: Annotated[int, Query(ge=1, le=50_000)] = 3_000,
    limit: Annotated[int, Query(ge=1, le=200)] = 10,
    status: Annotated[list[CourierLiveStatus] | None, Query()] = None,
) -> dict[str, Any]:
    """Fresh courier positions within ``radius_m`` of a point, nearest first (ties by id)."""
    queries.get_region(svc, region_id)  # the live store is not per tenant: 404 for another's
    live = request.app.state.container.live
    hits = live.nearest(region_id, lat, lng, radius_m, now=svc.clock.now(), limit=limit,
                        statuses=None if status is None else [s.value for s in status])
    return {"couriers": [
        {"courier_id": c.courier_id, "lat": c.lat, "lng": c.lng, "status": c.status,
         "distance_m": round(d, 1), "updated_at": c.updated_at} for c, d in hits]}


@router.post("/devices/{device_id}/ban")
def ban_device(svc: ServicesDep, who: Ops, body: CancelIn,
               device_id: Annotated[Line, Path(min_length=1, max_length=128)]) -> dict[str, Any]:
    """Ban a device: it can no longer start a shift or move any courier."""
    added = bans.ban_device(svc, device_id, reason=body.reason, actor=who.actor)
    return {"device_id": device_id, "banned": True, "already_banned": not added}


@router.get("/couriers/{courier_id}/statements")
def courier_statements(svc: ServicesDep, who: Ops, courier_id: Id,
                       limit: Annotated[int, Query(ge=1, le=pay.MAX_STATEMENTS)] = 10
                       ) -> dict[str, Any]:
    """Pay statements of the courier's last ``limit`` shifts, newest first (docs/pay.md)."""
    return {"courier_id": courier_id,
            "statements": [statement_out(p) for p in
                           pay.courier_statements(svc, courier_id, limit=limit)]}


@router.post("/couriers/{courier_id}/ban")
def ban_courier(svc: ServicesDep, who: Ops, courier_id: Id, body: CancelIn,
                request: Request) -> dict[str, Any]:
    """Ban a courier and every device they have started a shift from, and stop their work:
    shift ended, offers withdrawn, orders not picked up back to dispatch, picked-up ones
    flagged for ops, API keys revoked, live position removed."""
    ban = bans.ban_courier(svc, courier_id, reason=body.reason, actor=who.actor,
                           live=request.app.state.container.live)
    return {"courier_id": courier_id, "banned": True, "device_ids": list(ban.device_ids),
            "returned_order_ids": list(ban.returned_order_ids),
            "flagged_order_ids": list(ban.flagged_order_ids),
            "withdrawn_offer_ids": list(ban.withdrawn_offer_ids),
            "revoked_keys": ban.revoked_keys, "shift_ended": ban.shift_ended,
            "position_removed": ban.position_removed}


@router.get("/tracking/stats")
def tracking_stats(who: Ops, request: Request) -> dict[str, Any]:
    """Pings by outcome since start: accepted, duplicate, not_main_device, rejected_invalid..."""
    return {"counts": dict(request.app.state.container.tracking.counts)}


@router.get("/orders")
def orders(
    svc: ServicesDep, who: Ops,
    region_id: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[list[OrderStatus] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    found = queries.list_orders(svc, who=who, statuses=status, region_id=region_id, limit=limit)
    return {"orders": [order_out(o) for o in found]}


@router.get("/orders/{order_id}")
def order(svc: ServicesDep, who: Ops, order_id: Id) -> dict[str, Any]:
    return order_out(queries.get_order(svc, order_id, who=who))


@router.get("/orders/{order_id}/events")
def order_events(svc: ServicesDep, who: Ops, order_id: Id) -> dict[str, Any]:
    return {"events": [event_out(e) for e in queries.order_history(svc, order_id, who=who)]}


@router.get("/orders/{order_id}/moves")
def order_moves(svc: ServicesDep, who: Ops, order_id: Id) -> dict[str, Any]:
    """The order's reassignments (docs/reassignment.md): every move offered, oldest first,
    from and to which courier, the click-to-door it would save and how it ended; how often
    the order moved and the tenant's limit."""
    trail = reassignment.move_trail(svc, order_id)
    return {"order_id": trail.order_id, "courier_id": trail.courier_id, "moves": trail.moves,
            "allow_reassignment": trail.allow_reassignment,
            "max_moves_per_order": trail.max_moves_per_order,
            "trail": [{"offer_id": m.offer_id, "from_courier_id": m.from_courier_id,
                       "to_courier_id": m.to_courier_id, "gain_s": m.gain_s,
                       "status": m.status.value, "offered_at": iso(m.offered_at),
                       "expires_at": iso(m.expires_at), "decided_at": iso(m.decided_at),
                       "reason": m.reason} for m in trail.steps]}


@router.post("/orders/{order_id}/cancel")
def cancel(svc: ServicesDep, who: Ops, order_id: Id, body: CancelIn) -> dict[str, Any]:
    return order_out(fulfilment.cancel_order(svc, order_id, reason=body.reason, actor=who.actor))


@router.post("/offers", status_code=201, responses=feeds(
    "offer_id", "id", ("post", "/v1/courier/offers/{offer_id}/accept"),
    ("post", "/v1/courier/offers/{offer_id}/decline")))
def make_offer(svc: ServicesDep, who: Ops, body: OfferIn) -> dict[str, Any]:
    """Offer orders of one merchant to a courier by hand (the dispatcher does this too)."""
    offer = offers.make_offer(svc, courier_id=body.courier_id, order_ids=tuple(body.order_ids),
                              actor=who.actor, ttl_s=body.ttl_s)
    return offer_out(offer)


@router.post("/orders/{order_id}/pin-unlock")
def unlock_pin(svc: ServicesDep, who: Ops, order_id: Id) -> dict[str, Any]:
    """Forget an order's wrong drop-off PINs, so its courier may try again (5 more)."""
    had = pins.unlock_pin(svc, order_id, actor=who.actor)
    return {"order_id": order_id, "failures_cleared": had}
