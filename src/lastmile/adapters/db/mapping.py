"""Named mappings between rows (dicts) and domain values, both ways."""

from __future__ import annotations

from datetime import time
from functools import lru_cache
from typing import Any

from lastmile.app.events import Event
from lastmile.core.geo import Point, Polygon
from lastmile.core.ids import ConsumerId, CourierId, ItemId, MerchantId, OrderId, RegionId
from lastmile.core.model import (
    Address,
    Consumer,
    Courier,
    CourierStatus,
    ItemOption,
    MenuItem,
    Merchant,
    OpeningWindow,
    Region,
    Vehicle,
)
from lastmile.core.money import Money
from lastmile.core.offers import Offer, OfferStatus, OfferStop
from lastmile.core.orders import (
    Actor,
    ActorKind,
    Cancellation,
    DeliveryProof,
    EtaWindow,
    Order,
    OrderLine,
    OrderStatus,
    PriceBreakdown,
)
from lastmile.core.tenancy import DEFAULT_TENANT

Row = dict[str, Any]


def _pt(p: Point) -> list[float]:
    return [p.lat, p.lng]


def _point(raw: list[float]) -> Point:
    return Point(lat=raw[0], lng=raw[1])


point_from = _point  # a point column read alone (SqlOrders.dropoffs)


def region_row(r: Region) -> Row:
    return {"id": r.id, "name": r.name, "market": r.market, "time_zone": r.time_zone,
            "currency": r.currency, "tax_rate_bp": r.tax_rate_bp,
            "polygon": [_pt(v) for v in r.polygon.vertices]}


def region_from(row: Row) -> Region:
    return Region(id=RegionId(row["id"]), name=row["name"], market=row["market"],
                  time_zone=row["time_zone"], currency=row["currency"],
                  tax_rate_bp=row["tax_rate_bp"],
                  polygon=Polygon(vertices=tuple(_point(v) for v in row["polygon"])))


def _item_doc(i: MenuItem) -> Row:
    return {"id": i.id, "name": i.name, "price_minor": i.price.amount_minor,
            "currency": i.price.currency, "available": i.available,
            "options": [{"id": o.id, "name": o.name, "price_delta_minor": o.price_delta_minor}
                        for o in i.options]}


def _item_from(d: Row) -> MenuItem:
    return MenuItem(id=ItemId(d["id"]), name=d["name"],
                    price=Money(amount_minor=d["price_minor"], currency=d["currency"]),
                    available=d["available"],
                    options=tuple(ItemOption(**o) for o in d["options"]))


def merchant_row(m: Merchant) -> Row:
    return {"id": m.id, "region_id": m.region_id, "name": m.name, "lat": m.location.lat,
            "lng": m.location.lng, "prep_time_s": m.prep_time_s, "active": m.active,
            "menu": [_item_doc(i) for i in m.menu],
            "hours": [[w.weekday, w.opens.isoformat(), w.closes.isoformat()] for w in m.hours],
            "version": m.version}


def merchant_from(row: Row) -> Merchant:
    return Merchant(
        id=MerchantId(row["id"]), region_id=RegionId(row["region_id"]), name=row["name"],
        location=Point(lat=row["lat"], lng=row["lng"]), prep_time_s=row["prep_time_s"],
        active=row["active"], menu=tuple(_item_from(d) for d in row["menu"]),
        hours=tuple(OpeningWindow(weekday=w, opens=time.fromisoformat(o),
                                  closes=time.fromisoformat(c)) for w, o, c in row["hours"]),
        version=row["version"], tenant=row.get("tenant_id", DEFAULT_TENANT),
    )


def consumer_row(c: Consumer) -> Row:
    return {"id": c.id, "region_id": c.region_id, "name": c.name, "phone": c.phone,
            "addresses": [{"label": a.label, "location": _pt(a.location), "line1": a.line1,
                           "instructions": a.instructions} for a in c.addresses]}


def consumer_from(row: Row) -> Consumer:
    return Consumer(
        id=ConsumerId(row["id"]), region_id=RegionId(row["region_id"]), name=row["name"],
        addresses=tuple(Address(label=a["label"], location=_point(a["location"]),
                                line1=a["line1"], instructions=a["instructions"])
                        for a in row["addresses"]),
        tenant=row.get("tenant_id", DEFAULT_TENANT),
        phone=row.get("phone"),
    )


def courier_row(c: Courier) -> Row:
    return {"id": c.id, "region_id": c.region_id, "name": c.name, "vehicle": c.vehicle.value,
            "status": c.status.value,
            "lat": c.location.lat if c.location else None,
            "lng": c.location.lng if c.location else None,
            "shift_id": c.shift_id, "shift_started_at": c.shift_started_at,
            "shift_ends_at": c.shift_ends_at, "device_id": c.device_id,
            "active_order_ids": list(c.active_order_ids), "banned": c.banned,
            "version": c.version}


def courier_from(row: Row) -> Courier:
    loc = Point(lat=row["lat"], lng=row["lng"]) if row["lat"] is not None else None
    return Courier(
        id=CourierId(row["id"]), region_id=RegionId(row["region_id"]), name=row["name"],
        vehicle=Vehicle(row["vehicle"]), status=CourierStatus(row["status"]), location=loc,
        shift_id=row["shift_id"], shift_started_at=row["shift_started_at"],
        shift_ends_at=row["shift_ends_at"], device_id=row["device_id"],
        active_order_ids=tuple(row["active_order_ids"]), banned=row["banned"],
        version=row["version"],
    )


def _money(m: Money) -> int:
    return m.amount_minor


def order_row(o: Order) -> Row:
    p = o.prices
    doc = {
        "lines": [{"item_id": li.item_id, "name": li.name, "quantity": li.quantity,
                   "unit_price_minor": li.unit_price.amount_minor,
                   "option_ids": list(li.option_ids)} for li in o.lines],
        "currency": o.currency,
        "prices": {k: v for k, v in p.as_minor().items() if k != "total"},
        "pickup": _pt(o.pickup), "dropoff": _pt(o.dropoff),
        "eta": [o.eta.low_at, o.eta.expected_at, o.eta.high_at],
        "prep_estimate_s": o.prep_estimate_s, "confirmed_at": o.confirmed_at,
        "ready_at": o.ready_at, "picked_up_at": o.picked_up_at, "delivered_at": o.delivered_at,
        "assigned_at": o.assigned_at, "at_pickup_at": o.at_pickup_at,
        "proof": None if o.proof is None else
        {"photo_ref": o.proof.photo_ref, "pin": o.proof.pin, "note": o.proof.note},
        "cancellation": None if o.cancellation is None else _cancellation_doc(o.cancellation),
        "dropoff_pin": o.dropoff_pin, "moves": o.moves,
    }
    return {"id": o.id, "region_id": o.region_id, "merchant_id": o.merchant_id,
            "consumer_id": o.consumer_id, "courier_id": o.courier_id, "status": o.status.value,
            "version": o.version, "placed_at": o.placed_at, "doc": doc}


def _cancellation_doc(c: Cancellation) -> Row:
    return {"actor_kind": c.actor.kind.value, "actor_id": c.actor.id, "reason": c.reason,
            "from_status": c.from_status.value,
            "consumer_charge_minor": c.consumer_charge.amount_minor,
            "courier_paid": c.courier_paid}


@lru_cache(maxsize=1 << 16, typed=True)
def _shared_money(amount_minor: int, currency: str) -> Money:
    """One shared instance per amount: Money is an immutable value, and an order's decode
    builds about ten of them (its prices and lines), most of them seen before (an order is
    read many times over its life): a frozen dataclass costs ~4 us to build, a hit ~0.1 us.
    An invalid currency still raises (exceptions are not cached)."""
    return Money(amount_minor=amount_minor, currency=currency)


def order_from(row: Row) -> Order:
    d = row["doc"]
    cur = d["currency"]

    def money(v: int) -> Money:
        return _shared_money(v, cur)

    c = d["cancellation"]
    return Order(
        id=OrderId(row["id"]), region_id=RegionId(row["region_id"]),
        merchant_id=MerchantId(row["merchant_id"]), consumer_id=ConsumerId(row["consumer_id"]),
        courier_id=CourierId(row["courier_id"]) if row["courier_id"] else None,
        status=OrderStatus(row["status"]), version=row["version"], placed_at=row["placed_at"],
        lines=tuple(OrderLine(item_id=li["item_id"], name=li["name"], quantity=li["quantity"],
                              unit_price=money(li["unit_price_minor"]),
                              option_ids=tuple(li["option_ids"])) for li in d["lines"]),
        prices=PriceBreakdown(**{k: money(v) for k, v in d["prices"].items()}),
        pickup=_point(d["pickup"]), dropoff=_point(d["dropoff"]),
        eta=EtaWindow(low_at=d["eta"][0], expected_at=d["eta"][1], high_at=d["eta"][2]),
        prep_estimate_s=d["prep_estimate_s"], confirmed_at=d["confirmed_at"],
        ready_at=d["ready_at"], picked_up_at=d["picked_up_at"], delivered_at=d["delivered_at"],
        proof=DeliveryProof(**d["proof"]) if d["proof"] else None,
        cancellation=None if c is None else Cancellation(
            actor=Actor(kind=ActorKind(c["actor_kind"]), id=c["actor_id"]), reason=c["reason"],
            from_status=OrderStatus(c["from_status"]),
            consumer_charge=money(c["consumer_charge_minor"]), courier_paid=c["courier_paid"]),
        dropoff_pin=d["dropoff_pin"], moves=d.get("moves", 0),  # absent before reassignment
        # absent before the ETA history (0019)
        assigned_at=d.get("assigned_at"), at_pickup_at=d.get("at_pickup_at"),
    )


def offer_row(o: Offer) -> Row:
    return {"id": o.id, "region_id": o.region_id, "courier_id": o.courier_id,
            "status": o.status.value, "order_ids": list(o.order_ids), "created_at": o.created_at,
            "expires_at": o.expires_at, "decided_at": o.decided_at,
            "decline_reason": o.decline_reason, "version": o.version,
            "from_courier_id": o.from_courier_id, "gain_s": o.gain_s,
            "stack_id": o.stack_id,
            "stops": [s.to_json() for s in o.stops] if o.stops else None}


def offer_from(row: Row) -> Offer:
    return Offer(id=row["id"], region_id=row["region_id"], courier_id=row["courier_id"],
                 status=OfferStatus(row["status"]), order_ids=tuple(row["order_ids"]),
                 created_at=row["created_at"], expires_at=row["expires_at"],
                 decided_at=row["decided_at"], decline_reason=row["decline_reason"],
                 version=row["version"], from_courier_id=row.get("from_courier_id"),
                 gain_s=row.get("gain_s"), stack_id=row.get("stack_id"),
                 stops=tuple(OfferStop.from_json(s) for s in row.get("stops") or ()))


def event_row(e: Event) -> Row:
    return {"event_id": e.event_id, "type": e.type, "region_id": e.region_id,
            "subject_id": e.subject_id, "occurred_at": e.occurred_at,
            "actor_kind": e.actor_kind, "actor_id": e.actor_id,
            "schema_version": e.schema_version, "data": e.data, "tenant_id": e.tenant}


def event_from(row: Row) -> Event:
    return Event(event_id=row["event_id"], type=row["type"], region_id=row["region_id"],
                 subject_id=row["subject_id"], occurred_at=row["occurred_at"],
                 actor_kind=row["actor_kind"], actor_id=row["actor_id"],
                 schema_version=row["schema_version"], data=dict(row["data"]),
                 headers={"tenant": row["tenant_id"]})
