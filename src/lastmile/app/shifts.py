"""Going off shift: by choice, by housekeeping once the planned end has passed, or by a ban
(``app.bans``). Going on shift is ``fulfilment.start_shift``.

Going off shift is one rule wherever it happens (``close_shift``): the courier's pending
offers are withdrawn, each with its ``offer.withdrawn`` event (their orders return to
dispatch now, not at the offer's expiry), the courier goes offline and
``courier.shift_ended`` is recorded with the reason. After the commit the courier's live
position is removed (``live.forget_position``), so no live map, nearest-courier query or
dispatch round sees them again: the live store is not part of the unit of work, so it
comes last, and a failure there never undoes the committed change.
"""

from __future__ import annotations

from dataclasses import replace

from lastmile.app.aggregates import load_courier
from lastmile.app.context import Services, new_event, record
from lastmile.app.fulfilment import check_self
from lastmile.app.live import LiveStore, forget_position
from lastmile.app.offers import withdraw_courier_offers
from lastmile.app.ports import UnitOfWork
from lastmile.app.retry import retrying
from lastmile.core.errors import Conflict
from lastmile.core.model import Courier, CourierStatus
from lastmile.core.orders import SYSTEM, Actor


def close_shift(uow: UnitOfWork, services: Services, courier: Courier, *, actor: Actor,
                now: float, reason: str) -> Courier:
    """Take ``courier`` (as the caller changed it) off shift: withdraw its offers, go offline,
    record ``courier.shift_ended``. The caller commits, then calls ``forget_position``."""
    withdraw_courier_offers(uow, services, courier.id, actor=actor, now=now, reason=reason)
    nxt = replace(courier, status=CourierStatus.OFFLINE, shift_id=None,
                  shift_started_at=None, shift_ends_at=None, device_id=None)
    nxt = uow.couriers.save(nxt)
    record(uow, services, new_event(
        services, type="courier.shift_ended", region_id=courier.region_id,
        subject_id=courier.id, actor_kind=actor.kind.value, actor_id=actor.id,
        data={"shift_id": courier.shift_id, "reason": reason},
    ))
    return nxt


@retrying
def end_shift(services: Services, courier_id: str, *, actor: Actor, live: LiveStore,
              reason: str = "shift ended") -> Courier:
    """Go off shift and leave the live map; refused while the courier still holds orders."""
    check_self(actor, courier_id)
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
        nxt = close_shift(uow, services, courier, actor=actor, now=services.clock.now(),
                          reason=reason)
        uow.commit()
    forget_position(live, courier_id, at=services.clock.now())
    return nxt


def end_expired_shifts(services: Services, live: LiveStore) -> int:
    """End the shifts that are over for couriers holding no orders; returns how many.

    A courier past the end of the shift stops counting as supply (quotes and surge read
    idle couriers), stops receiving offers and leaves the live map, as with ``end_shift``.
    One still carrying orders keeps the shift until the last drop-off; the next run ends it.
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
            end_shift(services, courier_id, actor=SYSTEM, live=live, reason="shift is over")
            ended += 1
        except Conflict:
            continue  # took an order or went off shift meanwhile: the next run decides
    return ended
