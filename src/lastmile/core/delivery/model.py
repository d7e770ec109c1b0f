"""Values of a business delivery (Drive). Times are epoch seconds (UTC)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from lastmile.core.errors import InvalidInput
from lastmile.core.geo import Point


class Undeliverable(StrEnum):
    """What the courier does when nobody can take the delivery at the door."""

    RETURN_TO_PICKUP = "return_to_pickup"
    DISPOSE = "dispose"
    LEAVE_AT_DOOR = "leave_at_door"


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeWindow:
    """A half-open interval [start_at, end_at) in epoch seconds."""

    start_at: float
    end_at: float

    def __post_init__(self) -> None:
        if not self.start_at < self.end_at:
            raise InvalidInput(
                "invalid_window",
                f"a window needs start < end (got start={self.start_at}, end={self.end_at})",
                field="window",
            )

    def contains(self, at: float) -> bool:
        return self.start_at <= at < self.end_at


@dataclass(frozen=True, slots=True, kw_only=True)
class ProofRequirement:
    """Which proofs the courier must give at the door."""

    photo: bool = False
    signature: bool = False
    pin: bool = False

    def names(self) -> tuple[str, ...]:
        return tuple(n for n in ("photo", "signature", "pin") if getattr(self, n))


@dataclass(frozen=True, slots=True, kw_only=True)
class Contact:
    """The drop-off contact. Only ``first_name`` is ever shown publicly."""

    first_name: str
    last_name: str = ""
    phone: str = ""
    email: str = ""

    def __post_init__(self) -> None:
        if not self.first_name.strip():
            raise InvalidInput("contact_name_required", "dropoff contact needs a first_name",
                               field="dropoff.contact.first_name")


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """The Drive-specific part of a delivery; the order holds status, prices and ETA."""

    id: str
    merchant_id: str
    external_delivery_id: str
    order_id: str
    request_hash: str
    pickup: Point
    dropoff: Point
    contact: Contact
    order_value_minor: int
    tip_minor: int
    tracking_token: str = field(repr=False)  # a capability: whoever holds it sees the delivery
    created_at: float
    pickup_window: TimeWindow | None = None
    dropoff_window: TimeWindow | None = None
    instructions: str = ""
    contactless: bool = False
    undeliverable_action: Undeliverable = Undeliverable.RETURN_TO_PICKUP
    proof: ProofRequirement = ProofRequirement()
    outcome: str | None = None  # delivered | left_at_door | returned_to_pickup | disposed
    signature_ref: str | None = None
    updated_at: float | None = None
    delayed_at: float | None = None  # when the delay alert fired (it fires once)
    version: int = 0  # compare-and-set on save: a delay alert never undoes a courier's proof

    def __post_init__(self) -> None:
        if self.order_value_minor < 0:
            raise InvalidInput("invalid_order_value",
                               f"order_value_minor must be >= 0 (got {self.order_value_minor})",
                               field="order_value_minor")
        if self.tip_minor < 0:
            raise InvalidInput("invalid_tip", f"tip_minor must be >= 0 (got {self.tip_minor})",
                               field="tip_minor")


@dataclass(frozen=True, slots=True, kw_only=True)
class DriveQuote:
    """A price and window held for ``external_delivery_id`` until ``expires_at``."""

    merchant_id: str
    external_delivery_id: str
    request_hash: str
    request: dict[str, object]
    currency: str
    prices_minor: dict[str, int]
    eta: tuple[float, float, float]
    distance_m: int
    created_at: float
    expires_at: float
    accepted: bool = False

    @property
    def fee_minor(self) -> int:
        """What the business pays for the delivery, besides its tip (``core.pricing.delivery_quote``)."""
        return self.prices_minor["delivery_fee"]
