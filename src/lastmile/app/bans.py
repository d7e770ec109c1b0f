"""Banning devices and couriers: a banned device never starts a shift or moves a courier,
and a banned courier stops working at once.

A courier ban, in one transaction:

- every device the courier ever started a shift from is banned;
- orders not picked up yet (assigned, at the merchant) go back to dispatch with
  ``order.unassigned``: nothing has left the merchant, another courier can take them;
- orders already picked up stay with the courier (the parcel is in their hands; no
  platform can reassign it) and each gets ``order.needs_ops`` for a person to sort out
  the handover, a refund or a cancellation; ops cancelling one releases it as usual;
- pending offers are withdrawn, each with ``offer.withdrawn``;
- the shift ends (``courier.shift_ended``, reason ``banned``); dispatch, surge and the
  dashboard read who is on shift from the database and never see the courier again;
- every API key of the courier is revoked: their next request is a 401.

After the commit the live position is removed (memory or Redis). The store is not part of
the transaction, so it comes last and a failure there does not undo the ban: it is logged
and reported (``position_removed=False``), the position lapses after the store's max age,
and the courier's later pings are refused (revoked key; ``courier_banned`` in tracking).
Ops' free-text reason stays in ops' records: what businesses and consumers see of a ban
(order events reach Drive webhooks) is the code ``courier_banned``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from lastmile.app.aggregates import apply_command, load_courier
from lastmile.app.context import Services, new_event, record
from lastmile.app.live import LiveStore, forget_position
from lastmile.app.offers import withdraw_courier_offers
from lastmile.app.ports import UnitOfWork
from lastmile.app.retry import retrying
from lastmile.app.shifts import close_shift
from lastmile.core.errors import Forbidden, InvalidInput
from lastmile.core.lifecycle import Unassign
from lastmile.core.model import Courier
from lastmile.core.orders import COURIER_BEFORE_PICKUP, Actor, ActorKind

BANNED = "courier_banned"  # the public reason: ops' own words are not shown to customers


@dataclass(frozen=True, slots=True, kw_only=True)
class CourierBan:
    """What a courier ban did."""

    courier_id: str
    device_ids: tuple[str, ...]
    returned_order_ids: tuple[str, ...]  # not picked up: back to dispatch
    flagged_order_ids: tuple[str, ...]  # picked up: still with the courier, flagged for ops
    withdrawn_offer_ids: tuple[str, ...]
    revoked_keys: int
    shift_ended: bool
    position_removed: bool


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


def _hand_back(uow: UnitOfWork, services: Services, courier: Courier,
               actor: Actor) -> tuple[list[str], list[str]]:
    """(returned, flagged): unassign the orders not picked up, flag the picked-up ones."""
    held = uow.orders.get_many(courier.active_order_ids)
    returned: list[str] = []
    flagged: list[str] = []
    for order_id in courier.active_order_ids:
        order = held.get(order_id)
        if order is None or order.terminal:
            continue
        if order.status in COURIER_BEFORE_PICKUP:
            apply_command(uow, services, order, Unassign(reason=BANNED), actor)
            returned.append(order_id)
            continue
        record(uow, services, new_event(
            services, type="order.needs_ops", region_id=order.region_id, subject_id=order.id,
            actor_kind=actor.kind.value, actor_id=actor.id,
            data={"reason": BANNED, "courier_id": courier.id, "status": order.status.value}))
        flagged.append(order_id)
    return returned, flagged


@retrying
def ban_courier(services: Services, courier_id: str, *, reason: str, actor: Actor,
                live: LiveStore) -> CourierBan:
    """Ban a courier, the devices they worked from, and stop their work now (module doc).

    The devices come from the courier's ``courier.shift_started`` history: an ex-courier's
    phone must not keep tracking anyone.
    """
    _ops_only(actor)
    reason = _reason(reason)
    now = services.clock.now()
    with services.uow() as uow:
        courier = load_courier(uow, courier_id)
        devices = sorted({str(e.data["device_id"]) for e in uow.events.for_subject(courier_id)
                          if e.type == "courier.shift_started" and e.data.get("device_id")})
        for device_id in devices:
            uow.banned_devices.ban(device_id, reason=reason, at=now, by=actor.id)
        returned, flagged = _hand_back(uow, services, courier, actor)
        withdrawn = withdraw_courier_offers(uow, services, courier_id, actor=actor, now=now,
                                            reason=BANNED)
        banned = replace(courier, banned=True, active_order_ids=tuple(flagged))
        if courier.on_shift:
            close_shift(uow, services, banned, actor=actor, now=now, reason="banned")
        else:
            uow.couriers.save(banned)
        revoked = uow.api_keys.revoke_subject("courier", courier_id)
        record(uow, services, new_event(
            services, type="courier.banned", region_id=courier.region_id, subject_id=courier_id,
            actor_kind=actor.kind.value, actor_id=actor.id,
            data={"reason": reason, "device_ids": devices, "returned_order_ids": returned,
                  "flagged_order_ids": flagged, "withdrawn_offer_ids": [o.id for o in withdrawn],
                  "revoked_keys": revoked}))
        uow.commit()
    services.key_cache.forget_subject("courier", courier_id)  # revoked here at once
    return CourierBan(
        courier_id=courier_id, device_ids=tuple(devices), returned_order_ids=tuple(returned),
        flagged_order_ids=tuple(flagged), withdrawn_offer_ids=tuple(o.id for o in withdrawn),
        revoked_keys=revoked, shift_ended=courier.on_shift,
        position_removed=forget_position(live, courier_id, at=services.clock.now()))
