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


@dataclass(frozen=True, slots=True, kw_only=True)
class Offer:
    """Orders of one merchant, in drop-off sequence, offered to one courier until expiry."""

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

        if self.from_courier_id is not None and self.from_courier_id == self.courier_id:
            raise InvalidInput("same_courier", f"a move goes to another courier (got "
                               f"{self.courier_id} to itself)", field="courier_id")

    @property
    def is_move(self) -> bool:
        return self.from_courier_id is not None

    def expired(self, now: float) -> bool:
        return self.status is OfferStatus.PENDING and now >= self.expires_at
