"""Banning devices and couriers: a banned device never starts a shift or moves a courier."""

from __future__ import annotations

from dataclasses import replace

from lastmile.app.context import Services, new_event, record
from lastmile.app.fulfilment import load_courier
from lastmile.app.retry import retrying
from lastmile.core.errors import Forbidden, InvalidInput
from lastmile.core.orders import Actor, ActorKind


def _ops_only(actor: Actor) -> None:
    if actor.kind not in (ActorKind.OPS, ActorKind.SYSTEM):
        raise Forbidden("actor_not_allowed", f"a {actor.kind.value} may not ban")


def _reason(reason: str) -> str:
    if not reason.strip():
        raise InvalidInput("reason_required", "a ban needs a reason", field="reason")
    return reason


@retrying
def ban_device(services: Services, device_id: str, *, reason: str, actor: Actor) -> bool:
    """Ban one device; returns False when it was already banned."""
    _ops_only(actor)
    with services.uow() as uow:
        added = uow.banned_devices.ban(device_id, reason=_reason(reason),
                                       at=services.clock.now(), by=actor.id)
        uow.commit()
    return added


@retrying
def ban_courier(services: Services, courier_id: str, *, reason: str,
                actor: Actor) -> tuple[str, ...]:
    """Ban a courier and every device they ever started a shift from; returns those devices.

    An ex-courier's phone must not keep tracking anyone: the devices come from the
    courier's ``courier.shift_started`` history.
    """
    _ops_only(actor)
    now = services.clock.now()
    with services.uow() as uow:
        courier = load_courier(uow, courier_id)
        devices = sorted({str(e.data["device_id"]) for e in uow.events.for_subject(courier_id)
                          if e.type == "courier.shift_started" and e.data.get("device_id")})
        for device_id in devices:
            uow.banned_devices.ban(device_id, reason=_reason(reason), at=now, by=actor.id)
        uow.couriers.save(replace(courier, banned=True))
        record(uow, services, new_event(
            services, type="courier.banned", region_id=courier.region_id, subject_id=courier_id,
            actor_kind=actor.kind.value, actor_id=actor.id,
            data={"reason": reason, "device_ids": devices}))
        uow.commit()
    return tuple(devices)
