"""HTTP schemas (pydantic at the edge only) and named value -> schema mappings."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field
from pydantic import Strict as StrictMode
from pydantic_core import PydanticCustomError

from lastmile.app.events import Event
from lastmile.app.ports import DeadLetter, SubscriberState
from lastmile.core.model import MenuItem, Merchant, Region
from lastmile.core.offers import Offer
from lastmile.core.orders import Order
from lastmile.core.pricing import Quote
from lastmile.core.text import describe, first_forbidden


def _plain_text(multiline: bool) -> AfterValidator:
    def check(value: str) -> str:
        index = first_forbidden(value, multiline=multiline)
        if index is not None:
            raise PydanticCustomError(
                "control_character",
                "must not contain control or bidirectional-override characters "
                "(found {found})", {"found": describe(value, index)})
        return value

    return AfterValidator(check)


# Every free-text field of every request is one of these two (rules in core.text).
Line = Annotated[str, _plain_text(multiline=False)]  # names, reasons, ids, references
Paragraph = Annotated[str, _plain_text(multiline=True)]  # notes and instructions
# JSON has no date or enum type: they arrive as strings, so these fields parse strings even
# though the models are strict (strict validation of a dict wants datetime/enum objects).
JsonDatetime = Annotated[AwareDatetime, StrictMode(False)]

Lat = Annotated[float, Field(ge=-90, le=90, description="WGS84 latitude, degrees")]
Lng = Annotated[float, Field(ge=-180, le=180, description="WGS84 longitude, degrees")]
Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")]


class CourierLiveStatus(StrEnum):
    """The live statuses of ``app.live.COURIER_STATUSES`` as an enum for query validation."""

    IDLE = "idle"
    TO_PICKUP = "to_pickup"
    AT_PICKUP = "at_pickup"
    TO_DROPOFF = "to_dropoff"
    AT_DROPOFF = "at_dropoff"
    OFFLINE = "offline"



class Strict(BaseModel):
    """Every request body: unknown fields refused, and no coercion of numbers or booleans.

    ``"quantity": true``, ``"lat": "37.44"`` and ``"require_pin": 1`` are 422s; a JSON
    integer is still a valid number for a float field. Enum and datetime fields, which JSON
    can only send as strings, opt out per field (``JsonDatetime``, ``Field(strict=False)``).
    """

    model_config = ConfigDict(extra="forbid", strict=True)


def iso(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


class PointIn(Strict):
    lat: Lat
    lng: Lng


class LineIn(Strict):
    item_id: Id
    quantity: int = Field(ge=1, le=99)
    option_ids: list[Id] = Field(default_factory=list, max_length=20)


class OrderIn(Strict):
    merchant_id: Id
    items: list[LineIn] = Field(min_length=1, max_length=50)
    dropoff: PointIn
    tip_minor: int = Field(default=0, ge=0, le=1_000_000)
    require_pin: bool = False
    # The consumer's card at the payment processor (docs/payments.md); the built-in
    # processor declines Stripe's test tokens such as tok_chargeDeclined.
    card_token: str | None = Field(default=None, min_length=1, max_length=255)
    # From POST /v1/consumer/quotes: the order pays the quoted prices while the quote is
    # valid (409 quote_expired after). Without it the order is priced when placed.
    quote_token: str | None = Field(default=None, min_length=1, max_length=2_000,
                                    pattern=r"^[A-Za-z0-9_\-.]+$")


class CancelIn(Strict):
    reason: Line = Field(min_length=1, max_length=500)


class ConfirmIn(Strict):
    prep_estimate_s: int = Field(ge=60, le=14_400)


class OptionIn(Strict):
    id: Id
    name: Line = Field(min_length=1, max_length=200)
    price_delta_minor: int = Field(default=0, ge=0, le=1_000_000)


class ItemIn(Strict):
    name: Line = Field(min_length=1, max_length=200)
    price_minor: int = Field(ge=0, le=10_000_000)
    options: list[OptionIn] = Field(default_factory=list, max_length=50)
    available: bool = True


class ShiftIn(Strict):
    device_id: Line = Field(min_length=1, max_length=128)
    duration_s: int = Field(ge=600, le=16 * 3600)


class ProofIn(Strict):
    photo_ref: Line | None = Field(default=None, min_length=1, max_length=500)
    pin: str | None = Field(default=None, pattern=r"^[0-9]{4}$")
    note: Paragraph | None = Field(default=None, min_length=1, max_length=1000)


class PingIn(Strict):
    """Raw ping fields; ranges are checked by the tracking rules (one place, clear codes)."""

    device_id: Line = Field(min_length=1, max_length=128)
    lat: float
    lng: float
    accuracy_m: float
    client_ts: float = Field(description="device time, epoch seconds")
    speed_mps: float | None = None
    heading_deg: float | None = None


class PingBatchIn(Strict):
    pings: list[PingIn] = Field(min_length=1, max_length=500)


class DeclineIn(Strict):
    reason: Line = Field(default="declined", min_length=1, max_length=500)


class OfferIn(Strict):
    courier_id: Id
    order_ids: list[Id] = Field(min_length=1, max_length=20)
    ttl_s: int = Field(default=60, ge=5, le=3600)


class RegionIn(Strict):
    name: Line = Field(min_length=1, max_length=200)
    market: Line = Field(min_length=1, max_length=200)
    time_zone: Line = Field(min_length=1, max_length=64)
    # Default: the tenant's currency (config.currency); another one is refused.
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    polygon: list[PointIn] = Field(min_length=3, max_length=500)
    tax_rate_bp: int = Field(default=0, ge=0, le=5_000)


def money(amount_minor: int, currency: str) -> dict[str, Any]:
    return {"amount_minor": amount_minor, "currency": currency}


def order_out(o: Order, *, show_pin: bool = False) -> dict[str, Any]:
    cur = o.currency
    c = o.cancellation
    return {
        "id": o.id, "region_id": o.region_id, "merchant_id": o.merchant_id,
        "consumer_id": o.consumer_id, "courier_id": o.courier_id, "status": o.status.value,
        "version": o.version,
        "items": [{"item_id": li.item_id, "name": li.name, "quantity": li.quantity,
                   "unit_price": money(li.unit_price.amount_minor, cur),
                   "option_ids": list(li.option_ids)} for li in o.lines],
        "prices": {k: money(v, cur) for k, v in o.prices.as_minor().items()},
        "pickup": {"lat": o.pickup.lat, "lng": o.pickup.lng},
        "dropoff": {"lat": o.dropoff.lat, "lng": o.dropoff.lng},
        "placed_at": iso(o.placed_at),
        "eta": {"low": iso(o.eta.low_at), "expected": iso(o.eta.expected_at),
                "high": iso(o.eta.high_at),
                # The same window as the ETA engine's point and 80% interval, in seconds
                # from placement (low = p10, expected = point, high = p90).
                "point_s": round(o.eta.expected_at - o.placed_at),
                "p10_s": round(o.eta.low_at - o.placed_at),
                "p90_s": round(o.eta.high_at - o.placed_at)},
        "prep_estimate_s": o.prep_estimate_s, "confirmed_at": iso(o.confirmed_at),
        "ready_at": iso(o.ready_at), "picked_up_at": iso(o.picked_up_at),
        "delivered_at": iso(o.delivered_at),
        "cancellation": None if c is None else {
            "by": c.actor.kind.value, "reason": c.reason, "from_status": c.from_status.value,
            "consumer_charge": money(c.consumer_charge.amount_minor, cur)},
        "pin_required": o.dropoff_pin is not None,
        **({"dropoff_pin": o.dropoff_pin} if show_pin and o.dropoff_pin else {}),
    }


def event_out(e: Event) -> dict[str, Any]:
    return {"event_id": e.event_id, "type": e.type, "occurred_at": iso(e.occurred_at),
            "actor": {"kind": e.actor_kind, "id": e.actor_id}, "data": e.data,
            "schema_version": e.schema_version}


def item_out(i: MenuItem) -> dict[str, Any]:
    return {"id": i.id, "name": i.name, "price": money(i.price.amount_minor, i.price.currency),
            "available": i.available,
            "options": [{"id": o.id, "name": o.name, "price_delta_minor": o.price_delta_minor}
                        for o in i.options]}


def merchant_out(m: Merchant, distance_m: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": m.id, "region_id": m.region_id, "name": m.name,
                           "location": {"lat": m.location.lat, "lng": m.location.lng},
                           "prep_time_s": m.prep_time_s, "active": m.active}
    if distance_m is not None:
        out["distance_m"] = distance_m
    return out


def eta_out(q: Quote) -> dict[str, Any]:
    """The quoted window (low, expected, high as ISO times) and the ETA engine's estimate
    behind it: point and 80% interval (p10, p90) in seconds from now, and the model."""
    out: dict[str, Any] = {"low": iso(q.eta.low_at), "expected": iso(q.eta.expected_at),
                           "high": iso(q.eta.high_at)}
    if q.estimate is not None:
        out |= {"point_s": round(q.estimate.point_s), "p10_s": round(q.estimate.p10_s),
                "p90_s": round(q.estimate.p90_s), "model": q.estimate.model}
    return out


def quote_out(q: Quote, *, token: str | None = None,
              expires_at: float | None = None) -> dict[str, Any]:
    cur = q.prices.subtotal.currency
    out = {"prices": {k: money(v, cur) for k, v in q.prices.as_minor().items()},
           "eta": eta_out(q),
           "distance_m": q.distance_m, "surge_multiplier": str(q.surge_multiplier),
           # How the delivery fee was made (core.fees) and what a consumer reads of it.
           "fee_breakdown": [{"kind": line.kind, "amount": money(line.amount.amount_minor, cur),
                              "reason": line.reason} for line in q.fee_lines],
           "reasons": list(q.reasons)}
    if token is not None:
        out |= {"quote_token": token, "valid_until": iso(expires_at)}
    return out


def offer_out(o: Offer) -> dict[str, Any]:
    out: dict[str, Any] = {"id": o.id, "courier_id": o.courier_id,
                           "order_ids": list(o.order_ids),
                           "status": o.status.value, "created_at": iso(o.created_at),
                           "expires_at": iso(o.expires_at),
                           # A stacked offer: its stack and route (pickups, then drop-offs);
                           # else null / [].
                           "stack_id": o.stack_id, "stops": [s.to_json() for s in o.stops]}
    if o.is_move:  # orders another courier holds until this one accepts (app.reassignment)
        out.update(from_courier_id=o.from_courier_id, gain_s=o.gain_s)
    return out


def region_out(r: Region) -> dict[str, Any]:
    return {"id": r.id, "name": r.name, "market": r.market, "time_zone": r.time_zone,
            "currency": r.currency, "tax_rate_bp": r.tax_rate_bp,
            "polygon": [{"lat": v.lat, "lng": v.lng} for v in r.polygon.vertices]}


def dead_letter_out(d: DeadLetter) -> dict[str, Any]:
    e = d.event
    return {"id": d.id, "subscriber": d.subscriber, "seq": d.seq,
            "event": {"event_id": e.event_id, "type": e.type, "region_id": e.region_id,
                      "subject_id": e.subject_id, "occurred_at": iso(e.occurred_at)},
            "attempts": d.attempts, "last_error": d.last_error,
            "first_failed_at": iso(d.first_failed_at), "parked_at": iso(d.parked_at),
            "replayed_at": iso(d.replayed_at), "replays": d.replays}


def subscriber_out(s: SubscriberState) -> dict[str, Any]:
    return {"name": s.name, "event_type": s.event_type, "registered_at": iso(s.registered_at),
            "position": s.position, "pending": s.pending, "retrying": s.retrying,
            "parked": s.parked}


def statement_out(pay: Any) -> dict[str, Any]:
    """A shift's pay statement (``app.pay.ShiftPay``): amounts in minor units."""
    s = pay.statement
    return {
        "shift_id": s.shift_id, "courier_id": s.courier_id, "currency": s.currency,
        "started_at": pay.span.started_at, "ended_at": pay.span.ended_at,
        "open": pay.span.ended_at is None, "active_s": s.active_s, "orders": s.orders,
        "lines": [{"order_id": ln.order_id, "component": ln.component,
                   "amount_minor": ln.amount.amount_minor, "reason": ln.reason}
                  for ln in s.lines],
        "earnings_minor": s.earnings.amount_minor, "tips_minor": s.tips.amount_minor,
        "guarantee_minor": s.guarantee.amount_minor, "top_up_minor": s.top_up.amount_minor,
        "total_minor": s.total.amount_minor,
    }
