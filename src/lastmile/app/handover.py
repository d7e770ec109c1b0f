"""The handover of an accepted move (``app.reassignment``): the orders leave the courier
who held them for the one who accepted, in the accepting unit of work."""

from __future__ import annotations

from dataclasses import replace

from lastmile.app.aggregates import apply_command, load_courier, load_order
from lastmile.app.context import Services, new_event, record
from lastmile.app.ports import UnitOfWork
from lastmile.core.ids import CourierId
from lastmile.core.lifecycle import Reassign
from lastmile.core.model import Courier, CourierStatus
from lastmile.core.offers import Offer
from lastmile.core.orders import Actor, OrderStatus

OFFERED = "order.reassignment_offered"  # per order, when its move is offered
WITHDRAWN = "courier.assignment_withdrawn"  # the courier who held the orders lost them


def hand_over(uow: UnitOfWork, services: Services, offer: Offer, *, actor: Actor) -> str | None:
    """Move every order of the pending move ``offer`` from ``offer.from_courier_id`` to
    ``offer.courier_id``; the caller closes the offer and commits. Returns ``None`` when
    done, or (nothing written) why an order is no longer movable: it is at the merchant,
    picked up, dropped, cancelled or with someone else.

    Records ``order.reassigned`` per order (the order's ``moves`` + 1) and
    ``courier.assignment_withdrawn`` for the courier who held them, with the new courier
    and the gain. Orders and both couriers are saved with compare-and-set: racing the old
    courier's arrival at the merchant, exactly one of the two commits.
    """
    giver_id = offer.from_courier_id
    if giver_id is None:
        raise ValueError(f"offer {offer.id} is not a move")
    orders = [load_order(uow, order_id) for order_id in offer.order_ids]
    for order in orders:
        if order.status is not OrderStatus.ASSIGNED or order.courier_id != giver_id:
            return (f"order {order.id} is {order.status.value} with courier "
                    f"{order.courier_id}, no longer movable from {giver_id}")
    gain_s = offer.gain_s or 0.0
    for order in orders:
        apply_command(uow, services, order,
                      Reassign(courier_id=CourierId(offer.courier_id), gain_s=gain_s), actor)
    _take_from(uow, load_courier(uow, giver_id), offer.order_ids)
    taker = load_courier(uow, offer.courier_id)
    uow.couriers.save(replace(taker, status=CourierStatus.BUSY,
                              active_order_ids=taker.active_order_ids + offer.order_ids))
    record(uow, services, new_event(
        services, type=WITHDRAWN, region_id=offer.region_id, subject_id=giver_id,
        actor_kind=actor.kind.value, actor_id=actor.id,
        data={"courier_id": giver_id, "order_ids": list(offer.order_ids),
              "to_courier_id": offer.courier_id, "offer_id": offer.id, "gain_s": gain_s,
              "reason": f"reassigned: picked up {gain_s:.0f} s sooner by another courier"}))
    return None


def _take_from(uow: UnitOfWork, courier: Courier, order_ids: tuple[str, ...]) -> None:
    """The courier without ``order_ids`` (compare-and-set); idle once it holds nothing."""
    active = tuple(o for o in courier.active_order_ids if o not in order_ids)
    status = courier.status
    if status is CourierStatus.BUSY and not active:
        status = CourierStatus.IDLE
    uow.couriers.save(replace(courier, active_order_ids=active, status=status))
