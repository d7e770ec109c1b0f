"""What a business asks for when it quotes or creates a delivery, and its stable hash.

The hash of the request's canonical JSON is what makes ``external_delivery_id``
idempotent: the same body replays, a different one is a conflict.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any, cast

from lastmile.core.delivery.model import Contact, ProofRequirement, TimeWindow, Undeliverable
from lastmile.core.errors import InvalidInput
from lastmile.core.geo import Point


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryRequest:
    merchant_id: str
    external_delivery_id: str
    dropoff: Point
    contact: Contact
    order_value_minor: int
    tip_minor: int = 0
    pickup: Point | None = None  # None: the business's own location
    pickup_window: TimeWindow | None = None
    dropoff_window: TimeWindow | None = None
    instructions: str = ""
    contactless: bool = False
    undeliverable_action: Undeliverable = Undeliverable.RETURN_TO_PICKUP
    proof: ProofRequirement = ProofRequirement()

    def __post_init__(self) -> None:
        if not 1 <= len(self.external_delivery_id) <= 128:
            raise InvalidInput("invalid_external_delivery_id",
                               "external_delivery_id must be 1..128 characters",
                               field="external_delivery_id")



def request_doc(req: DeliveryRequest) -> dict[str, Any]:
    """A JSON-able form of the request: what is hashed and what a quote keeps."""
    return cast(dict[str, Any], json.loads(json.dumps(asdict(req), sort_keys=True, default=str)))


def request_from_doc(doc: dict[str, Any]) -> DeliveryRequest:
    def window(raw: dict[str, float] | None) -> TimeWindow | None:
        return None if raw is None else TimeWindow(**raw)

    return DeliveryRequest(
        merchant_id=doc["merchant_id"], external_delivery_id=doc["external_delivery_id"],
        dropoff=Point(**doc["dropoff"]), contact=Contact(**doc["contact"]),
        order_value_minor=doc["order_value_minor"], tip_minor=doc["tip_minor"],
        pickup=Point(**doc["pickup"]) if doc["pickup"] else None,
        pickup_window=window(doc["pickup_window"]), dropoff_window=window(doc["dropoff_window"]),
        instructions=doc["instructions"], contactless=doc["contactless"],
        undeliverable_action=Undeliverable(doc["undeliverable_action"]),
        proof=ProofRequirement(**doc["proof"]),
    )


def request_hash(req: DeliveryRequest) -> str:
    return hashlib.sha256(json.dumps(request_doc(req), sort_keys=True).encode()).hexdigest()
