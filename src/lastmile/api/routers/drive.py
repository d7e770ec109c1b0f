"""Drive: the delivery API for businesses (merchant key), plus the courier's Drive steps.

Quote -> accept, or create directly with an idempotent ``external_delivery_id``;
get, list, update before pickup, cancel; webhook endpoints and their messages.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import Field

from lastmile.api.deps import Courier, Merchant, ServicesDep
from lastmile.api.links import feeds
from lastmile.api.schemas import (
    Id,
    JsonDatetime,
    Line,
    Paragraph,
    PointIn,
    Strict,
    iso,
    money,
    order_out,
)
from lastmile.app import drive, queries, webhooks
from lastmile.app.drive import DeliveryChanges, DeliveryView
from lastmile.core.delivery.model import Contact, ProofRequirement, TimeWindow, Undeliverable
from lastmile.core.delivery.proof import GivenProof
from lastmile.core.delivery.request import DeliveryRequest
from lastmile.core.errors import InvalidInput
from lastmile.core.geo import Point
from lastmile.core.page_tokens import decode_token, encode_token, invalid_token
from lastmile.core.webhooks import Endpoint, Message

router = APIRouter(prefix="/v1/drive", tags=["drive"])
_DELIVERY = "/v1/drive/deliveries/{external_delivery_id}"
_DELIVERY_LINKS = feeds("external_delivery_id", "external_delivery_id", ("get", _DELIVERY),
                        ("patch", _DELIVERY), ("post", _DELIVERY + "/cancel"), statuses=(201, 200))
ExternalId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")]


class WindowIn(Strict):
    start: JsonDatetime
    end: JsonDatetime


class ContactIn(Strict):
    first_name: Line = Field(min_length=1, max_length=100)
    last_name: Line = Field(default="", max_length=100)
    phone: str = Field(default="", max_length=32, pattern=r"^[0-9+()\- ]*$")
    email: Line = Field(default="", max_length=320, pattern=r"^$|^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ProofReqIn(Strict):
    photo: bool = False
    signature: bool = False
    pin: bool = False


class DeliveryIn(Strict):
    external_delivery_id: ExternalId
    dropoff: PointIn
    dropoff_contact: ContactIn
    order_value_minor: int = Field(ge=0, le=10_000_000)
    tip_minor: int = Field(default=0, ge=0, le=1_000_000)
    pickup: PointIn | None = None
    pickup_window: WindowIn | None = None
    dropoff_window: WindowIn | None = None
    dropoff_instructions: Paragraph = Field(default="", max_length=1000)
    contactless: bool = False
    undeliverable_action: Undeliverable = Field(default=Undeliverable.RETURN_TO_PICKUP,
                                                strict=False)  # a JSON string
    proof_required: ProofReqIn = Field(default_factory=ProofReqIn)


class AcceptIn(Strict):
    tip_minor: int | None = Field(default=None, ge=0, le=1_000_000)


class UpdateIn(Strict):
    dropoff_instructions: Paragraph | None = Field(default=None, max_length=1000)
    dropoff_contact: ContactIn | None = None
    contactless: bool | None = None
    tip_minor: int | None = Field(default=None, ge=0, le=1_000_000)
    pickup_window: WindowIn | None = None
    dropoff_window: WindowIn | None = None


class CancelIn(Strict):
    reason: Line = Field(min_length=1, max_length=500)


class EndpointIn(Strict):
    url: str = Field(min_length=8, max_length=2000)
    event_types: list[Line] = Field(default_factory=list, max_length=50)
    eta_under_s: int | None = Field(default=300, ge=1, le=86_400)
    nearby_m: int | None = Field(default=500, ge=1, le=86_400)


class DriveProofIn(Strict):
    photo_ref: Line | None = Field(default=None, min_length=1, max_length=500)
    signature_ref: Line | None = Field(default=None, min_length=1, max_length=500)
    pin: str | None = Field(default=None, pattern=r"^[0-9]{4}$")
    note: Paragraph | None = Field(default=None, min_length=1, max_length=1000)


class UndeliverableIn(Strict):
    reason: Line = Field(min_length=1, max_length=500)
    photo_ref: Line | None = Field(default=None, min_length=1, max_length=500)


def _window(w: WindowIn | None, name: str) -> TimeWindow | None:
    if w is None:
        return None
    start, end = w.start.timestamp(), w.end.timestamp()
    if not start < end:
        raise InvalidInput("invalid_window", f"{name}.start must be before {name}.end",
                           field=f"{name}.start")
    return TimeWindow(start_at=start, end_at=end)


def _contact(c: ContactIn) -> Contact:
    return Contact(first_name=c.first_name, last_name=c.last_name, phone=c.phone, email=c.email)


def _request(who: Merchant, body: DeliveryIn) -> DeliveryRequest:
    p = body.proof_required
    return DeliveryRequest(
        merchant_id=who.subject_id, external_delivery_id=body.external_delivery_id,
        dropoff=Point(lat=body.dropoff.lat, lng=body.dropoff.lng),
        contact=_contact(body.dropoff_contact), order_value_minor=body.order_value_minor,
        tip_minor=body.tip_minor,
        pickup=Point(lat=body.pickup.lat, lng=body.pickup.lng) if body.pickup else None,
        pickup_window=_window(body.pickup_window, "pickup_window"),
        dropoff_window=_window(body.dropoff_window, "dropoff_window"),
        instructions=body.dropoff_instructions, contactless=body.contactless,
        undeliverable_action=body.undeliverable_action,
        proof=ProofRequirement(photo=p.photo, signature=p.signature, pin=p.pin))


def _window_out(w: TimeWindow | None) -> dict[str, Any] | None:
    return None if w is None else {"start": iso(w.start_at), "end": iso(w.end_at)}


def delivery_out(v: DeliveryView) -> dict[str, Any]:
    d, o = v.delivery, v.order
    c = d.contact
    return {
        "external_delivery_id": d.external_delivery_id, "delivery_id": d.id, "order_id": o.id,
        "status": o.status.value, "created_at": iso(d.created_at),
        "fee": money(v.fee.amount_minor, o.currency),
        "order_value": money(d.order_value_minor, o.currency),
        "tip": money(o.prices.tip.amount_minor, o.currency),
        "pickup": {"lat": d.pickup.lat, "lng": d.pickup.lng, "window": _window_out(d.pickup_window)},
        "dropoff": {"lat": d.dropoff.lat, "lng": d.dropoff.lng,
                    "window": _window_out(d.dropoff_window), "instructions": d.instructions,
                    "contactless": d.contactless,
                    "contact": {"first_name": c.first_name, "last_name": c.last_name,
                                "phone": c.phone, "email": c.email}},
        "undeliverable_action": d.undeliverable_action.value,
        "proof_required": {"photo": d.proof.photo, "signature": d.proof.signature,
                           "pin": d.proof.pin},
        "dropoff_pin": o.dropoff_pin, "outcome": d.outcome,
        "tracking_url": f"/track/{d.tracking_token}",
        "order": order_out(o),
    }


def _respond(response: Response, view: DeliveryView) -> dict[str, Any]:
    response.status_code = 200 if view.replayed else 201
    return delivery_out(view)


@router.post("/quotes", status_code=201, responses=feeds(
    "external_delivery_id", "external_delivery_id",
    ("post", "/v1/drive/quotes/{external_delivery_id}/accept")))
def create_quote(svc: ServicesDep, who: Merchant, body: DeliveryIn) -> dict[str, Any]:
    """Price a delivery; the price is held for 5 minutes under its external id."""
    q = drive.quote_delivery(svc, _request(who, body))
    return {"external_delivery_id": q.external_delivery_id,
            "fee": money(q.fee_minor, q.currency),
            "prices": {k: money(v, q.currency) for k, v in q.prices_minor.items()},
            "distance_m": q.distance_m, "expires_at": iso(q.expires_at),
            # low/expected/high: the ETA engine's p10, point and p90 (also as seconds).
            "eta": {"low": iso(q.eta[0]), "expected": iso(q.eta[1]), "high": iso(q.eta[2]),
                    "point_s": round(q.eta[1] - q.created_at),
                    "p10_s": round(q.eta[0] - q.created_at),
                    "p90_s": round(q.eta[2] - q.created_at)}}


@router.post("/quotes/{external_delivery_id}/accept", status_code=201, responses=_DELIVERY_LINKS)
def accept_quote(svc: ServicesDep, who: Merchant, external_delivery_id: ExternalId,
                 response: Response, body: AcceptIn | None = None) -> dict[str, Any]:
    tip = body.tip_minor if body is not None else None
    return _respond(response, drive.accept_quote(svc, who.subject_id, external_delivery_id,
                                                 tip_minor=tip))


@router.post("/deliveries", status_code=201, responses=_DELIVERY_LINKS)
def create_delivery(svc: ServicesDep, who: Merchant, body: DeliveryIn,
                    response: Response) -> dict[str, Any]:
    """Create; repeating the same body with the same external id returns the same delivery."""
    return _respond(response, drive.create_delivery(svc, _request(who, body)))


def _decode_token(token: str, key: bytes) -> tuple[float, str]:
    raw = decode_token(token, key=key)
    try:
        created_at, last_id = float(raw["c"]), raw["id"]
    # OverflowError: a forged 300-digit number does not fit a float
    except (ValueError, KeyError, TypeError, OverflowError) as exc:
        raise invalid_token() from exc
    if not math.isfinite(created_at) or not isinstance(last_id, str):
        raise invalid_token()
    return created_at, last_id


@router.get("/deliveries")
def list_deliveries(svc: ServicesDep, who: Merchant,
                    limit: Annotated[int, Query(ge=1, le=100)] = 20,
                    page_token: Annotated[str | None, Query(max_length=500)] = None,
                    ) -> dict[str, Any]:
    after = _decode_token(page_token, svc.signing_key) if page_token else None
    views = drive.list_deliveries(svc, who.subject_id, limit=limit + 1, after=after)
    page = views[:limit]
    token = None
    if len(views) > limit:
        last = page[-1].delivery
        token = encode_token({"c": last.created_at, "id": last.id}, key=svc.signing_key)
    return {"deliveries": [delivery_out(v) for v in page], "next_page_token": token}


@router.get("/deliveries/{external_delivery_id}")
def get_delivery(svc: ServicesDep, who: Merchant, external_delivery_id: ExternalId
                 ) -> dict[str, Any]:
    return delivery_out(drive.get_delivery(svc, who.subject_id, external_delivery_id))


@router.patch("/deliveries/{external_delivery_id}")
def update_delivery(svc: ServicesDep, who: Merchant, external_delivery_id: ExternalId,
                    body: UpdateIn) -> dict[str, Any]:
    """Change instructions, contact, tip or windows; 409 once picked up."""
    changes = DeliveryChanges(
        instructions=body.dropoff_instructions,
        contact=_contact(body.dropoff_contact) if body.dropoff_contact else None,
        contactless=body.contactless, tip_minor=body.tip_minor,
        pickup_window=_window(body.pickup_window, "pickup_window"),
        dropoff_window=_window(body.dropoff_window, "dropoff_window"))
    return delivery_out(drive.update_delivery(svc, who.subject_id, external_delivery_id, changes))


@router.post("/deliveries/{external_delivery_id}/cancel")
def cancel_delivery(svc: ServicesDep, who: Merchant, external_delivery_id: ExternalId,
                    body: CancelIn) -> dict[str, Any]:
    return delivery_out(drive.cancel_delivery(svc, who.subject_id, external_delivery_id,
                                              reason=body.reason))


def endpoint_out(e: Endpoint, *, with_secret: bool = False) -> dict[str, Any]:
    out = {"id": e.id, "url": e.url, "event_types": list(e.event_types), "active": e.active,
           "eta_under_s": e.eta_under_s, "nearby_m": e.nearby_m, "created_at": iso(e.created_at)}
    return {**out, "secret": e.secret} if with_secret else out


def message_out(m: Message) -> dict[str, Any]:
    return {"id": m.id, "endpoint_id": m.endpoint_id, "event_id": m.event_id,
            "type": m.event_type, "status": m.status.value, "attempts": m.attempts,
            "next_attempt_at": iso(m.next_attempt_at), "last_error": m.last_error,
            "last_status_code": m.last_status_code, "created_at": iso(m.created_at),
            "delivered_at": iso(m.delivered_at), "payload": m.payload}


@router.post("/webhooks", status_code=201, responses=feeds(
    "endpoint_id", "id", ("delete", "/v1/drive/webhooks/{endpoint_id}")))
def add_endpoint(svc: ServicesDep, who: Merchant, body: EndpointIn) -> dict[str, Any]:
    """Register an endpoint; the signing ``secret`` is in this response only."""
    e = webhooks.register_endpoint(svc, who.subject_id, url=body.url,
                                   event_types=tuple(body.event_types),
                                   eta_under_s=body.eta_under_s, nearby_m=body.nearby_m)
    return endpoint_out(e, with_secret=True)


@router.get("/webhooks")
def list_endpoints(svc: ServicesDep, who: Merchant) -> dict[str, Any]:
    return {"endpoints": [endpoint_out(e) for e in webhooks.list_endpoints(svc, who.subject_id)]}


@router.delete("/webhooks/{endpoint_id}", status_code=204)
def remove_endpoint(svc: ServicesDep, who: Merchant, endpoint_id: Id) -> Response:
    webhooks.remove_endpoint(svc, who.subject_id, endpoint_id)
    return Response(status_code=204)


@router.get("/webhook-messages")
def list_messages(svc: ServicesDep, who: Merchant,
                  status: Annotated[str | None, Query(max_length=16)] = None,
                  endpoint_id: Annotated[str | None, Query(max_length=64)] = None,
                  limit: Annotated[int, Query(ge=1, le=200)] = 50) -> dict[str, Any]:
    """Messages newest first; ``status=dead`` lists the dead letters."""
    return {"messages": [message_out(m) for m in webhooks.list_messages(
        svc, who.subject_id, endpoint_id=endpoint_id, status=status, limit=limit)]}


@router.get("/webhook-messages/{message_id}/attempts")
def attempts(svc: ServicesDep, who: Merchant, message_id: Id) -> dict[str, Any]:
    rows = webhooks.message_attempts(svc, who.subject_id, message_id)
    return {"attempts": [{**r, "at": iso(r["at"])} for r in rows]}


@router.post("/webhook-messages/{message_id}/retry")
def retry(svc: ServicesDep, who: Merchant, message_id: Id) -> dict[str, Any]:
    return message_out(webhooks.requeue(svc, who.subject_id, message_id))


@router.get("/courier/deliveries/{order_id}")
def courier_view(svc: ServicesDep, who: Courier, order_id: Id) -> dict[str, Any]:
    """What the courier needs at the door: instructions, contact, proofs, fallback."""
    order = queries.get_order(svc, order_id, who=who)
    with svc.uow(read_only=True) as uow:
        d = drive.drive_of(uow, order_id)
    return {"order_id": order.id, "status": order.status.value,
            "instructions": d.instructions, "contactless": d.contactless,
            "contact": {"first_name": d.contact.first_name, "phone": d.contact.phone},
            "proof_required": list(d.proof.names()),
            "undeliverable_action": d.undeliverable_action.value}


@router.post("/courier/deliveries/{order_id}/deliver")
def courier_deliver(svc: ServicesDep, who: Courier, order_id: Id,
                    body: DriveProofIn) -> dict[str, Any]:
    """Deliver with the proofs the business required (422 ``proof_missing`` otherwise)."""
    queries.get_order(svc, order_id, who=who)
    given = GivenProof(photo_ref=body.photo_ref, signature_ref=body.signature_ref, pin=body.pin,
                       note=body.note)
    view = drive.courier_deliver(svc, order_id, given=given, actor=who.actor)
    return {"order_id": view.order.id, "status": view.order.status.value,
            "outcome": view.delivery.outcome}


@router.post("/courier/deliveries/{order_id}/undeliverable")
def courier_undeliverable(svc: ServicesDep, who: Courier, order_id: Id,
                          body: UndeliverableIn) -> dict[str, Any]:
    """Nobody to hand it to: leave at door (photo), return to pickup or dispose, as set."""
    queries.get_order(svc, order_id, who=who)
    view = drive.courier_undeliverable(svc, order_id, reason=body.reason,
                                       photo_ref=body.photo_ref, actor=who.actor)
    return {"order_id": view.order.id, "status": view.order.status.value,
            "outcome": view.delivery.outcome}
