"""Merchant, courier and ops use cases that move an order through its lifecycle."""

from __future__ import annotations

from dataclasses import replace

from lastmile.app.aggregates import apply_command, load_courier, load_order
from lastmile.app.context import Services, new_event, record
from lastmile.app.pins import check_dropoff_pin
from lastmile.app.ports import UnitOfWork
from lastmile.app.retry import retrying
from lastmile.core.errors import Conflict, Forbidden
from lastmile.core.lifecycle import (
    ArriveAtDropoff,
    ArriveAtPickup,
    Cancel,
    Command,
    Confirm,
    Deliver,
    MarkReady,
    PickUp,
    Unassign,
)
from lastmile.core.model import Courier, CourierStatus
from lastmile.core.orders import Actor, ActorKind, DeliveryProof, Order, OrderStatus


def release_courier(uow: UnitOfWork, services: Services, courier_id: str | None,
                     order_id: str) -> None:
    """Drop ``order_id`` from the courier's active list; idle again when the list empties.

    A compare-and-set save: racing an accept that adds orders, one of the two re-runs."""
    if courier_id is None:
        return
    courier = uow.couriers.get(courier_id)
    if courier is None:
        return
    active = tuple(o for o in courier.active_order_ids if o != order_id)
    status = courier.status
    if status is CourierStatus.BUSY and not active:
        status = CourierStatus.IDLE
    uow.couriers.save(replace(courier, active_order_ids=active, status=status))


@retrying
def _move(services: Services, order_id: str, command: Command, actor: Actor) -> Order:
    with services.uow() as uow:
        order = load_order(uow, order_id)
        nxt = apply_command(uow, services, order, command, actor)
        if nxt.status in (OrderStatus.DELIVERED, OrderStatus.CANCELLED, OrderStatus.UNASSIGNED):
            release_courier(uow, services, order.courier_id, order.id)
        uow.commit()
        return nxt


def confirm_order(services: Services, order_id: str, *, prep_estimate_s: int, actor: Actor) -> Order:
    return _move(services, order_id, Confirm(prep_estimate_s=prep_estimate_s), actor)


def mark_ready(services: Services, order_id: str, *, actor: Actor) -> Order:
    return _move(services, order_id, MarkReady(), actor)


def cancel_order(services: Services, order_id: str, *, reason: str, actor: Actor) -> Order:
    return _move(services, order_id, Cancel(reason=reason), actor)


@retrying
def courier_arrive(services: Services, order_id: str, *, actor: Actor) -> Order:
    """Arrival at the merchant when assigned, at the door once picked up."""
    with services.uow() as uow:
        order = load_order(uow, order_id)
        command: Command = (
            ArriveAtDropoff() if order.status is OrderStatus.PICKED_UP else ArriveAtPickup()
        )
        nxt = apply_command(uow, services, order, command, actor)
        uow.commit()
        return nxt


def pick_up(services: Services, order_id: str, *, actor: Actor) -> Order:
    return _move(services, order_id, PickUp(), actor)


def deliver(services: Services, order_id: str, *, proof: DeliveryProof, actor: Actor) -> Order:
    """Deliver a marketplace order. Drive deliveries carry their own proof rules
    (photo, signature, PIN) and are delivered through ``app.drive.courier_deliver``."""
    with services.uow(read_only=True) as uow:
        if uow.deliveries.by_order(order_id) is not None:
            raise Conflict("drive_delivery",
                           f"order {order_id} is a Drive delivery; deliver it with "
                           f"POST /v1/drive/courier/deliveries/{order_id}/deliver and its "
                           "required proof")
    check_dropoff_pin(services, order_id, pin=proof.pin, actor=actor)
    return _move(services, order_id, Deliver(proof=proof), actor)


def unassign(services: Services, order_id: str, *, reason: str, actor: Actor) -> Order:
    """The courier drops the order before pickup; it goes back to dispatch."""
    return _move(services, order_id, Unassign(reason=reason), actor)


@retrying
def start_shift(services: Services, courier_id: str, *, device_id: str, ends_at: float,
                actor: Actor) -> Courier:
    """Go on shift from ``device_id`` (that device becomes the shift's main device)."""
    check_self(actor, courier_id)
    now = services.clock.now()
    with services.uow() as uow:
        courier = load_courier(uow, courier_id)
        if courier.banned:
            raise Forbidden("courier_banned", f"courier {courier_id} may not work")
        if uow.banned_devices.among({device_id}):
            raise Forbidden("device_banned", f"device {device_id} is banned and cannot start "
                            "a shift", field="device_id")
        if courier.on_shift:
            raise Conflict(
                "already_on_shift", f"courier {courier_id} is already on shift {courier.shift_id}",
                current_state=courier.status.value,
            )
        if ends_at <= now:
            raise Conflict("shift_in_past", f"shift must end after now (got ends_at={ends_at})")
        nxt = uow.couriers.save(replace(
            courier, status=CourierStatus.IDLE, shift_id=services.ids.new("shf"),
            shift_started_at=now, shift_ends_at=ends_at, device_id=device_id,
        ))
        record(uow, services, new_event(
            services, type="courier.shift_started", region_id=courier.region_id,
            subject_id=courier_id, actor_kind=actor.kind.value, actor_id=actor.id,
            data={"shift_id": nxt.shift_id, "ends_at": ends_at, "device_id": device_id},
        ))
        uow.commit()
        return nxt


def check_self(actor: Actor, courier_id: str) -> None:
    """A courier manages only their own shift; ops and the system any courier's."""
    if actor.kind is ActorKind.COURIER and actor.id != courier_id:
        raise Forbidden("not_yourself", f"courier {actor.id} may not act for {courier_id}")
    if actor.kind not in (ActorKind.COURIER, ActorKind.OPS, ActorKind.SYSTEM):
        raise Forbidden("actor_not_allowed", f"a {actor.kind.value} may not manage shifts")

