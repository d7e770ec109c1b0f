"""Offers: the dispatcher proposes a bundle of orders to one courier."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from lastmile.core.errors import InvalidInput


class OfferStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"


# A stacked offer (``core.dispatch.stacking``) visits at most this many merchants.
MAX_STACK_MERCHANTS = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferStop:
    """A stop of a stacked offer's route: pick up ``order_ids`` at ``merchant_id``, or drop
    off ``order_ids`` (one order) at its door."""

    kind: str  # "pickup" | "dropoff"
    merchant_id: str
    order_ids: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "merchant_id": self.merchant_id,
                "order_ids": list(self.order_ids)}

    @staticmethod
    def from_json(raw: dict[str, object]) -> OfferStop:
        ids = raw["order_ids"]
        assert isinstance(ids, list)
        return OfferStop(kind=str(raw["kind"]), merchant_id=str(raw["merchant_id"]),
                         order_ids=tuple(str(i) for i in ids))


def check_stops(stops: tuple[OfferStop, ...], order_ids: tuple[str, ...]) -> None:
    """A stacked route is valid: every order of the offer is picked up exactly once and
    dropped off exactly once, after its pickup; pickups visit at most
    ``MAX_STACK_MERCHANTS`` merchants, each once; nothing else is on it."""
    def bad(rule: str) -> InvalidInput:
        return InvalidInput("invalid_stack", f"a stacked route {rule}", field="stops")

    picked: set[str] = set()
    dropped: set[str] = set()
    merchants: list[str] = []
    for stop in stops:
        if stop.kind == "pickup":
            if stop.merchant_id in merchants:
                raise bad(f"visits merchant {stop.merchant_id} once")
            merchants.append(stop.merchant_id)
            if picked & set(stop.order_ids):
                raise bad("picks each order up once")
            picked.update(stop.order_ids)
        elif stop.kind == "dropoff":
            if len(stop.order_ids) != 1:
                raise bad("drops one order per stop")
            oid = stop.order_ids[0]
            if oid not in picked:
                raise bad(f"picks order {oid} up before dropping it off")
            if oid in dropped:
                raise bad(f"drops order {oid} off once")
            dropped.add(oid)
        else:
            raise bad(f"has pickup and dropoff stops only (got {stop.kind!r})")
    if len(merchants) > MAX_STACK_MERCHANTS:
        raise bad(f"visits at most {MAX_STACK_MERCHANTS} merchants (got {len(merchants)})")
    if picked != set(order_ids) or dropped != set(order_ids):
        raise bad("covers exactly the offer's orders")


@dataclass(frozen=True, slots=True, kw_only=True)
class Offer:
    """Orders of one merchant, in drop-off sequence, offered to one courier until expiry.

    A stacked offer (``stack_id`` set) holds orders of up to two merchants and its route
    in ``stops`` (pickups, then drop-offs), as the dispatcher planned it.
    """

    id: str
    region_id: str
    courier_id: str
    order_ids: tuple[str, ...]
    created_at: float
    expires_at: float
    status: OfferStatus = OfferStatus.PENDING
    decided_at: float | None = None
    decline_reason: str | None = None
    version: int = 0  # compare-and-set on save: an offer is closed once
    # A move (app.reassignment): the orders are held by ``from_courier_id`` until this
    # courier accepts; ``gain_s`` is the click-to-door each order saves.
    from_courier_id: str | None = None
    gain_s: float | None = None
    stack_id: str | None = None
    stops: tuple[OfferStop, ...] = ()

    def __post_init__(self) -> None:
        if not self.order_ids:
            raise InvalidInput("empty_offer", "an offer needs at least one order", field="order_ids")
        if len(set(self.order_ids)) != len(self.order_ids):
            raise InvalidInput(
                "duplicate_order", "an offer lists each order once", field="order_ids"
            )
        if self.expires_at <= self.created_at:
            raise InvalidInput(
                "invalid_expiry",
                f"offer must expire after it is made (got {self.expires_at} <= {self.created_at})",
                field="expires_at",
            )
        if (self.stack_id is None) != (not self.stops):
            raise InvalidInput("invalid_stack", "a stacked offer has both a stack id and stops",
                               field="stops")
        if self.stops:
            check_stops(self.stops, self.order_ids)

        if self.from_courier_id is not None and self.from_courier_id == self.courier_id:
            raise InvalidInput("same_courier", f"a move goes to another courier (got "
                               f"{self.courier_id} to itself)", field="courier_id")

    @property
    def is_move(self) -> bool:
        return self.from_courier_id is not None

    def expired(self, now: float) -> bool:
        return self.status is OfferStatus.PENDING and now >= self.expires_at
