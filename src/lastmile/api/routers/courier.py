"""Couriers: shifts, offers, and the pickup-and-deliver steps of their orders."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from lastmile.api.deps import Courier, ServicesDep
from lastmile.api.schemas import (
    CancelIn,
    DeclineIn,
    Id,
    PingBatchIn,
    PingIn,
    ProofIn,
    ShiftIn,
    offer_out,
    order_out,
    statement_out,
)
from lastmile.app import fulfilment, offers, pay, queries, routes, shifts
from lastmile.app.tracking import IngestResult, ingest_pings
from lastmile.core.orders import DeliveryProof

router = APIRouter(prefix="/v1/courier", tags=["courier"])


def _courier_out(c: Any) -> dict[str, Any]:
    return {"id": c.id, "region_id": c.region_id, "name": c.name, "vehicle": c.vehicle.value,
            "status": c.status.value, "shift_id": c.shift_id,
            "active_order_ids": list(c.active_order_ids)}


@router.get("/me")
def me(svc: ServicesDep, who: Courier) -> dict[str, Any]:
    return _courier_out(queries.get_courier(svc, who.subject_id))


@router.post("/shift/start")
def start_shift(svc: ServicesDep, who: Courier, body: ShiftIn) -> dict[str, Any]:
    """Go on shift; the device sending this becomes the shift's main device."""
    ends_at = svc.clock.now() + body.duration_s
    courier = fulfilment.start_shift(svc, who.subject_id, device_id=body.device_id,
                                     ends_at=ends_at, actor=who.actor)
    return _courier_out(courier)


@router.post("/shift/end")
def end_shift(svc: ServicesDep, who: Courier, request: Request) -> dict[str, Any]:
    courier = shifts.end_shift(svc, who.subject_id, actor=who.actor,
                               live=request.app.state.container.live)
    return _courier_out(courier)


@router.get("/shifts/{shift_id}/statement")
def shift_statement(svc: ServicesDep, who: Courier, shift_id: Id) -> dict[str, Any]:
    """The pay statement of one of your shifts (the running one: so far): every line with
    its order, component, amount and reason, the guarantee and its top-up (docs/pay.md)."""
    return statement_out(pay.shift_statement(svc, shift_id, actor=who.actor))


def _ingest_out(result: IngestResult) -> dict[str, Any]:
    pos = result.position
    return {
        "accepted": result.accepted,
        "pings": [{"device_id": v.ping.device_id, "client_ts": v.ping.client_ts,
                   "accepted": v.accepted, "is_from_main_device": v.is_from_main_device,
                   "reason": v.reason.value, "flags": sorted(f.value for f in v.flags)}
                  for v in result.verdicts],
        "position": None if pos is None else {"lat": pos.lat, "lng": pos.lng,
                                               "status": pos.status},
    }


@router.post("/location")
def ping(who: Courier, request: Request, body: PingIn) -> dict[str, Any]:
    """One location ping. Only the shift's main device moves the courier."""
    tracking = request.app.state.container.tracking
    return _ingest_out(ingest_pings(tracking, courier_id=who.subject_id,
                                    raw=[body.model_dump()]))


@router.post("/locations")
def pings(who: Courier, request: Request, body: PingBatchIn) -> dict[str, Any]:
    """A batch of pings (1..500), e.g. buffered while offline; classified in time order."""
    tracking = request.app.state.container.tracking
    return _ingest_out(ingest_pings(tracking, courier_id=who.subject_id,
                                    raw=[p.model_dump() for p in body.pings]))


@router.get("/offer")
def current_offer(svc: ServicesDep, who: Courier) -> dict[str, Any]:
    """The courier's live offer, or ``{"offer": null}``."""
    offer = offers.current_offer(svc, who.subject_id)
    return {"offer": offer_out(offer) if offer else None}


@router.post("/offers/{offer_id}/accept")
def accept(svc: ServicesDep, who: Courier, offer_id: Id) -> dict[str, Any]:
    return offer_out(offers.accept_offer(svc, offer_id, actor=who.actor))


@router.post("/offers/{offer_id}/decline")
def decline(svc: ServicesDep, who: Courier, offer_id: Id, body: DeclineIn) -> dict[str, Any]:
    return offer_out(offers.decline_offer(svc, offer_id, reason=body.reason, actor=who.actor))


@router.get("/orders")
def assignments(svc: ServicesDep, who: Courier) -> dict[str, Any]:
    """The orders this courier holds now, or held before (newest first)."""
    return {"orders": [order_out(o) for o in queries.list_orders(svc, who=who, statuses=None)]}


@router.get("/route")
def route(svc: ServicesDep, who: Courier) -> dict[str, Any]:
    """The stops of the orders this courier holds, in the order to visit them: a stacked
    offer's pickup at merchant 1, pickup at merchant 2, then its drop-offs (``app.routes``)."""
    stops = routes.courier_route(svc, who.subject_id, actor=who.actor)
    return {"stops": [{"kind": s.kind, "merchant_id": s.merchant_id,
                       "order_ids": list(s.order_ids), "lat": s.at.lat, "lng": s.at.lng,
                       "done": s.done, "stack_id": s.stack_id} for s in stops]}


@router.get("/orders/{order_id}")
def get_order(svc: ServicesDep, who: Courier, order_id: Id) -> dict[str, Any]:
    return order_out(queries.get_order(svc, order_id, who=who))


@router.post("/orders/{order_id}/arrive")
def arrive(svc: ServicesDep, who: Courier, order_id: Id) -> dict[str, Any]:
    """At the merchant when assigned; at the door once picked up."""
    queries.get_order(svc, order_id, who=who)
    return order_out(fulfilment.courier_arrive(svc, order_id, actor=who.actor))


@router.post("/orders/{order_id}/pickup")
def pickup(svc: ServicesDep, who: Courier, order_id: Id) -> dict[str, Any]:
    queries.get_order(svc, order_id, who=who)
    return order_out(fulfilment.pick_up(svc, order_id, actor=who.actor))


@router.post("/orders/{order_id}/deliver")
def deliver(svc: ServicesDep, who: Courier, order_id: Id, body: ProofIn) -> dict[str, Any]:
    """Deliver with proof: a photo reference, the consumer's PIN or a note."""
    queries.get_order(svc, order_id, who=who)
    proof = DeliveryProof(photo_ref=body.photo_ref, pin=body.pin, note=body.note)
    return order_out(fulfilment.deliver(svc, order_id, proof=proof, actor=who.actor))


@router.post("/orders/{order_id}/unassign")
def drop(svc: ServicesDep, who: Courier, order_id: Id, body: CancelIn) -> dict[str, Any]:
    """Give the order back to dispatch before pickup."""
    queries.get_order(svc, order_id, who=who)
    return order_out(fulfilment.unassign(svc, order_id, reason=body.reason, actor=who.actor))
