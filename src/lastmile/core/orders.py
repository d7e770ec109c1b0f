"""The order value, its line items and its price breakdown.

Times are epoch seconds (UTC) on the injected clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from lastmile.core.errors import InvalidInput
from lastmile.core.geo import Point
from lastmile.core.ids import ConsumerId, CourierId, MerchantId, OrderId, RegionId
from lastmile.core.money import Money


class OrderStatus(StrEnum):
    PLACED = "placed"
    CONFIRMED = "confirmed"
    READY = "ready"
    ASSIGNED = "assigned"
    AT_PICKUP = "at_pickup"
    PICKED_UP = "picked_up"
    AT_DROPOFF = "at_dropoff"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    UNASSIGNED = "unassigned"


TERMINAL = frozenset({OrderStatus.DELIVERED, OrderStatus.CANCELLED})
# Statuses in which an order waits for a courier (the dispatcher's input).
AWAITING_COURIER = frozenset({OrderStatus.CONFIRMED, OrderStatus.READY, OrderStatus.UNASSIGNED})
# Statuses in which a courier holds the order but has not picked it up.
COURIER_BEFORE_PICKUP = frozenset({OrderStatus.ASSIGNED, OrderStatus.AT_PICKUP})


class ActorKind(StrEnum):
    CONSUMER = "consumer"
    MERCHANT = "merchant"
    COURIER = "courier"
    OPS = "ops"
    SYSTEM = "system"


@dataclass(frozen=True, slots=True, kw_only=True)
class Actor:
    kind: ActorKind
    id: str


SYSTEM = Actor(kind=ActorKind.SYSTEM, id="system")


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderLine:
    item_id: str
    name: str
    quantity: int
    unit_price: Money
    option_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 1 <= self.quantity <= 99:
            raise InvalidInput(
                "invalid_quantity",
                f"quantity must be in [1, 99] (got {self.quantity}) for item {self.item_id}",
                field="quantity",
            )

    @property
    def total(self) -> Money:
        return self.unit_price.times(self.quantity)


@dataclass(frozen=True, slots=True, kw_only=True)
class PriceBreakdown:
    subtotal: Money
    delivery_fee: Money
    service_fee: Money
    small_order_fee: Money
    tax: Money
    tip: Money

    @property
    def total(self) -> Money:
        return (
            self.subtotal
            + self.delivery_fee
            + self.service_fee
            + self.small_order_fee
            + self.tax
            + self.tip
        )

    def as_minor(self) -> dict[str, int]:
        return {
            "subtotal": self.subtotal.amount_minor,
            "delivery_fee": self.delivery_fee.amount_minor,
            "service_fee": self.service_fee.amount_minor,
            "small_order_fee": self.small_order_fee.amount_minor,
            "tax": self.tax.amount_minor,
            "tip": self.tip.amount_minor,
            "total": self.total.amount_minor,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class EtaWindow:
    """Quoted delivery window as epoch seconds: most orders land between low and high."""

    low_at: float
    expected_at: float
    high_at: float

    def __post_init__(self) -> None:
        if not self.low_at <= self.expected_at <= self.high_at:
            raise InvalidInput(
                "invalid_eta_window",
                f"eta window must satisfy low <= expected <= high "
                f"(got {self.low_at}, {self.expected_at}, {self.high_at})",
                field="eta",
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryProof:
    photo_ref: str | None = None
    pin: str | None = None
    note: str | None = None

    def __post_init__(self) -> None:
        if not (self.photo_ref or self.pin or self.note):
            raise InvalidInput(
                "proof_required",
                "delivery proof needs a photo_ref, a pin or a note",
                field="proof",
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class Cancellation:
    actor: Actor
    reason: str
    from_status: OrderStatus
    consumer_charge: Money
    courier_paid: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Order:
    id: OrderId
    region_id: RegionId
    merchant_id: MerchantId
    consumer_id: ConsumerId
    lines: tuple[OrderLine, ...]
    prices: PriceBreakdown
    pickup: Point
    dropoff: Point
    placed_at: float
    eta: EtaWindow
    status: OrderStatus = OrderStatus.PLACED
    version: int = 1
    courier_id: CourierId | None = None
    prep_estimate_s: int | None = None
    confirmed_at: float | None = None
    ready_at: float | None = None
    # When the courier now holding the order accepted it, and reached the merchant (the ETA
    # history's stages, core.eta.history); cleared when the order goes back to dispatch.
    assigned_at: float | None = None
    at_pickup_at: float | None = None
    picked_up_at: float | None = None
    delivered_at: float | None = None
    proof: DeliveryProof | None = None
    cancellation: Cancellation | None = None
    dropoff_pin: str | None = field(default=None, repr=False)  # the consumer's secret
    moves: int = 0  # times reassigned from one courier to another (app.reassignment)

    def __post_init__(self) -> None:
        if not self.lines:
            raise InvalidInput("empty_order", "an order needs at least one item", field="items")

    @property
    def currency(self) -> str:
        return self.prices.subtotal.currency

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL
