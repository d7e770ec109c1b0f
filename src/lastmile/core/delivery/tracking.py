"""The public tracking view: what anyone holding the link may see.

No personal data beyond first names: no address, phone, e-mail, surname or
proof; the courier's position only while they carry or fetch the parcel.
"""

from __future__ import annotations

from dataclasses import dataclass

from lastmile.core.delivery.model import Delivery
from lastmile.core.delivery.thresholds import CourierFix, InFlight, arrival_estimate
from lastmile.core.orders import Order

_SHOW_COURIER = frozenset({"assigned", "at_pickup", "picked_up", "at_dropoff"})
_LABELS = {
    "placed": "Order received", "confirmed": "Looking for a courier",
    "ready": "Looking for a courier", "unassigned": "Looking for a courier",
    "assigned": "Courier on the way to pickup", "at_pickup": "Courier at pickup",
    "picked_up": "On the way", "at_dropoff": "Courier has arrived",
    "delivered": "Delivered", "cancelled": "Cancelled",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class PublicTracking:
    status: str
    label: str
    recipient_first_name: str
    courier_first_name: str | None
    courier_lat: float | None
    courier_lng: float | None
    eta_at: float | None
    window_start_at: float | None
    window_end_at: float | None
    delivered_at: float | None


def first_name(full_name: str) -> str:
    parts = full_name.strip().split()
    return parts[0] if parts else ""


def public_tracking(d: Delivery, order: Order, *, courier_name: str | None,
                    fix: CourierFix | None, now: float, speed_mps: float) -> PublicTracking:
    """The tracking page's data; ETA from the courier's position once en route."""
    status = order.status.value
    show = status in _SHOW_COURIER
    flight = InFlight(status=status, dropoff=d.dropoff, eta_expected_at=order.eta.expected_at,
                      eta_high_at=order.eta.high_at, dropoff_window=d.dropoff_window)
    window = d.dropoff_window
    return PublicTracking(
        status=status, label=_LABELS.get(status, status),
        recipient_first_name=first_name(d.contact.first_name),  # a full name sent as first
        courier_first_name=first_name(courier_name) if show and courier_name else None,
        courier_lat=fix.point.lat if show and fix else None,
        courier_lng=fix.point.lng if show and fix else None,
        eta_at=None if order.terminal else arrival_estimate(
            flight, fix if show else None, now, speed_mps),
        window_start_at=window.start_at if window else order.eta.low_at,
        window_end_at=window.end_at if window else order.eta.high_at,
        delivered_at=order.delivered_at,
    )
