"""Merchant, courier and ops use cases that move an order through its lifecycle."""

from __future__ import annotations

from dataclasses import replace

from lastmile.app.context import Services, new_event, record, record_transition
from lastmile.app.pins import check_dropoff_pin
from lastmile.app.ports import UnitOfWork
from lastmile.core.errors import Conflict, Forbidden, NotFound
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
    decide,
)
from lastmile.core.model import Courier, CourierStatus
from lastmile.core.offers import OfferStatus
from lastmile.core.orders import SYSTEM, Actor, ActorKind, DeliveryProof, Order, OrderStatus


def load_order(uow: UnitOfWork, order_id: str) -> Order:
    order = uow.orders.get(order_id)
    if order is None:
        raise NotFound("order_not_found", f"no order {order_id}", field="order_id")
    return order


def apply_command(uow: UnitOfWork, services: Services, order: Order, command: Command,
                  actor: Actor) -> Order:
    """Decide, save with optimistic locking, record the event; the caller commits."""
    nxt, transition = decide(order, command, actor=actor, now=services.clock.now())
    uow.orders.save(nxt, expected_version=order.version)
    record_transition(uow, services, order.region_id, transition)
    return nxt


def release_courier(uow: UnitOfWork, services: Services, courier_id: str | None,
                     order_id: str) -> None:
    """Drop ``order_id`` from the courier's active list; idle again when the list empties."""
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


def load_courier(uow: UnitOfWork, courier_id: str) -> Courier:
    courier = uow.couriers.get(courier_id)
    if courier is None:
        raise NotFound("courier_not_found", f"no courier {courier_id}", field="courier_id")
    return courier


def start_shift(services: Services, courier_id: str, *, device_id: str, ends_at: float,
                actor: Actor) -> Courier:
    """Go on shift from ``device_id`` (that device becomes the shift's main device)."""
    _check_self(actor, courier_id)
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
        nxt = replace(
            courier, status=CourierStatus.IDLE, shift_id=services.ids.new("shf"),
            shift_started_at=now, shift_ends_at=ends_at, device_id=device_id,
        )
        uow.couriers.save(nxt)
        record(uow, services, new_event(
            services, type="courier.shift_started", region_id=courier.region_id,
            subject_id=courier_id, actor_kind=actor.kind.value, actor_id=actor.id,
            data={"shift_id": nxt.shift_id, "ends_at": ends_at, "device_id": device_id},
        ))
        uow.commit()
        return nxt


def end_shift(services: Services, courier_id: str, *, actor: Actor) -> Courier:
    """Go off shift; refused while the courier still holds orders."""
    _check_self(actor, courier_id)
    with services.uow() as uow:
        courier = load_courier(uow, courier_id)
        if not courier.on_shift:
            raise Conflict("not_on_shift", f"courier {courier_id} is not on shift",
                           current_state=courier.status.value)
        if courier.active_order_ids:
            raise Conflict(
                "orders_in_hand",
                f"courier {courier_id} still holds orders {', '.join(courier.active_order_ids)}",
                current_state=courier.status.value,
            )
        for offer in uow.offers.pending_for_courier(courier_id):
            uow.offers.save(replace(offer, status=OfferStatus.WITHDRAWN,
                                    decided_at=services.clock.now()))
        nxt = replace(courier, status=CourierStatus.OFFLINE, shift_id=None,
                      shift_started_at=None, shift_ends_at=None, device_id=None)
        uow.couriers.save(nxt)
        record(uow, services, new_event(
            services, type="courier.shift_ended", region_id=courier.region_id,
            subject_id=courier_id, actor_kind=actor.kind.value, actor_id=actor.id,
            data={"shift_id": courier.shift_id},
        ))
        uow.commit()
        return nxt


def _check_self(actor: Actor, courier_id: str) -> None:
    if actor.kind is ActorKind.COURIER and actor.id != courier_id:
        raise Forbidden("not_yourself", f"courier {actor.id} may not act for {courier_id}")
    if actor.kind not in (ActorKind.COURIER, ActorKind.OPS, ActorKind.SYSTEM):
        raise Forbidden("actor_not_allowed", f"a {actor.kind.value} may not manage shifts")



def end_expired_shifts(services: Services) -> int:
    """End the shifts that are over for couriers holding no orders; returns how many.

    A courier past the end of the shift stops counting as supply (quotes and surge read
    idle couriers) and stops receiving offers. One still carrying orders keeps the shift
    until the last drop-off; the next run ends it.
    """
    now = services.clock.now()
    with services.uow(read_only=True) as uow:
        due = [c.id for region in uow.regions.list()
               for c in uow.couriers.list_region(region.id, on_shift_only=True)
               if c.shift_ends_at is not None and c.shift_ends_at <= now
               and not c.active_order_ids]
    ended = 0
    for courier_id in due:
        try:
            end_shift(services, courier_id, actor=SYSTEM)
            ended += 1
        except Conflict:
            continue  # took an order or went off shift meanwhile: the next run decides
    return ended
