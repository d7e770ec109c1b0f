"""Reassignment in the live city: move a held bundle to a courier who picks it up sooner.

The decision is pure (``core.dispatch.reassign.plan_moves``, run by the dispatch round
after ``plan_round`` when the tenant's policy has ``allow_reassignment``). Here it becomes
an offer and, if the new courier takes it, a handover:

- **offer** (``offer_move_in``): an offer to courier B naming ``from_courier_id`` (A) and
  ``gain_s``, with the usual time-to-live; recorded as ``offer.made`` and, per order,
  ``order.reassignment_offered``. A keeps the orders meanwhile and is told through that
  event. The usual rules hold: one pending offer per courier and per order.
- **accept** (``handover.hand_over``, reached through ``offers.accept_offer``): in one unit of
  work every order goes from A to B (``order.reassigned``, the order's ``moves`` + 1), A's
  active orders lose them (``courier.assignment_withdrawn``, with to whom and the gain),
  B's gain them, and the offer closes as accepted. If A reached the merchant, picked up,
  dropped or lost an order meanwhile, the offer is withdrawn instead and A keeps what it
  has. Orders and couriers are saved with compare-and-set, so a move racing A's arrival
  at the merchant ends with exactly one of the two.
- **decline / expiry**: the ordinary ``offer.declined`` / ``offer.expired``; nothing
  changes hands.

``move_trail`` is the ops view of an order's moves: every move offer, its outcome and gain.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from lastmile.app.aggregates import load_order
from lastmile.app.context import Services, new_event, record
from lastmile.app.handover import OFFERED
from lastmile.app.offers import live_offers_of_order, offerable_courier
from lastmile.app.ports import UnitOfWork
from lastmile.app.retry import retrying
from lastmile.app.tenants import dispatch_policy
from lastmile.core.dispatch import DispatchPlan, DispatchPolicy, Snapshot
from lastmile.core.dispatch.reassign import Move, plan_moves
from lastmile.core.errors import Conflict, Forbidden, InvalidInput
from lastmile.core.offers import Offer, OfferStatus
from lastmile.core.orders import COURIER_BEFORE_PICKUP, Actor, ActorKind, OrderStatus


def round_moves(snapshot: Snapshot, policy: DispatchPolicy, plan: DispatchPlan | None, *,
                offered: frozenset[str]) -> tuple[Move, ...]:
    """The round's moves: ``plan_moves`` on the snapshot without the bundles that already
    have a pending offer (``offered``: order ids), so a move is never proposed twice."""
    if not policy.allow_reassignment:
        return ()
    free = tuple(c for c in snapshot.committed if offered.isdisjoint(c.order_ids))
    return plan_moves(replace(snapshot, committed=free), policy, plan)


@retrying
def make_move_offer(services: Services, move: Move, *, max_moves_per_order: int,
                    actor: Actor, ttl_s: int | None = None) -> Offer:
    """``offer_move_in`` in a unit of work of its own."""
    with services.uow() as uow:
        offer = offer_move_in(uow, services, move, max_moves_per_order=max_moves_per_order,
                              actor=actor, ttl_s=ttl_s)
        uow.commit()
        return offer


def offer_move_in(uow: UnitOfWork, services: Services, move: Move, *,
                  max_moves_per_order: int, actor: Actor, ttl_s: int | None = None) -> Offer:
    """Offer ``move``'s orders, held by ``move.from_courier_id``, to ``move.to_courier_id``;
    the caller commits. Checked again here, against what is stored now: every order still
    assigned to the giver and not at the merchant, moved fewer than ``max_moves_per_order``
    times, without a pending offer; the taker on shift, without an offer, holding nothing
    it has not picked up."""
    if actor.kind not in (ActorKind.OPS, ActorKind.SYSTEM):
        raise Forbidden("actor_not_allowed", f"a {actor.kind.value} may not make offers")
    now = services.clock.now()
    taker = offerable_courier(uow, services, move.to_courier_id, now)
    held = uow.orders.get_many(set(taker.active_order_ids))
    if any(o.status in COURIER_BEFORE_PICKUP for o in held.values()):
        raise Conflict("courier_holds_bundle", f"courier {taker.id} holds orders it has not "
                       "picked up yet", current_state="assigned")
    for order_id in move.order_ids:
        order = load_order(uow, order_id)
        if order.region_id != taker.region_id:
            raise InvalidInput("region_mismatch", f"order {order_id} is not in courier "
                               f"{taker.id}'s region {taker.region_id}", field="order_ids")
        if order.status is not OrderStatus.ASSIGNED or order.courier_id != move.from_courier_id:
            raise Conflict("order_not_movable", f"order {order_id} is {order.status.value} "
                           f"with courier {order.courier_id}, not assigned to "
                           f"{move.from_courier_id} on the way to the merchant",
                           current_state=order.status.value)
        if order.moves >= max_moves_per_order:
            raise Conflict("move_limit_reached", f"order {order_id} moved {order.moves} times "
                           f"(max_moves_per_order {max_moves_per_order})",
                           current_state="assigned")
        live = live_offers_of_order(uow, services, order_id, now)
        if live:
            raise Conflict("order_already_offered",
                           f"order {order_id} has a pending offer {live[0].id}",
                           current_state="offered")
    offer = Offer(
        id=services.ids.new("off"), region_id=taker.region_id, courier_id=taker.id,
        order_ids=move.order_ids, created_at=now,
        expires_at=now + (ttl_s if ttl_s is not None else services.offer_ttl_s),
        from_courier_id=move.from_courier_id, gain_s=round(move.gain_s, 1),
    )
    uow.offers.add(offer)
    data: dict[str, object] = {
        "from_courier_id": move.from_courier_id, "to_courier_id": taker.id,
        "offer_id": offer.id, "gain_s": offer.gain_s, "expires_at": offer.expires_at}
    record(uow, services, new_event(
        services, type="offer.made", region_id=offer.region_id, subject_id=offer.id,
        actor_kind=actor.kind.value, actor_id=actor.id,
        data={"courier_id": taker.id, "order_ids": list(offer.order_ids), **data}))
    for order_id in move.order_ids:
        record(uow, services, new_event(
            services, type=OFFERED, region_id=offer.region_id, subject_id=order_id,
            actor_kind=actor.kind.value, actor_id=actor.id, data=data))
    return offer


@dataclass(frozen=True, slots=True, kw_only=True)
class MoveStep:
    """One move offer of an order and how it ended (``status`` of the offer)."""

    offer_id: str
    offered_at: float
    expires_at: float
    from_courier_id: str
    to_courier_id: str
    gain_s: float
    status: OfferStatus
    decided_at: float | None
    reason: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class MoveTrail:
    order_id: str
    courier_id: str | None
    moves: int
    allow_reassignment: bool  # the tenant's policy now
    max_moves_per_order: int
    steps: tuple[MoveStep, ...]


def move_trail(services: Services, order_id: str,
               base: DispatchPolicy | None = None) -> MoveTrail:
    """Every move offered for the order, oldest first, with its outcome; its move count and
    the current tenant's reassignment knobs (``base`` with the tenant's overrides)."""
    policy = dispatch_policy(services, base or DispatchPolicy())
    with services.uow(read_only=True) as uow:
        order = load_order(uow, order_id)
        steps = []
        for event in uow.events.for_subject(order_id):
            if event.type != OFFERED:
                continue
            offer = uow.offers.get(str(event.data["offer_id"]))
            if offer is None:  # pragma: no cover - written in the event's own transaction
                continue
            now_status = (OfferStatus.EXPIRED if offer.expired(services.clock.now())
                          else offer.status)
            steps.append(MoveStep(
                offer_id=offer.id, offered_at=offer.created_at, expires_at=offer.expires_at,
                from_courier_id=str(event.data["from_courier_id"]),
                to_courier_id=offer.courier_id, gain_s=offer.gain_s or 0.0, status=now_status,
                decided_at=offer.decided_at, reason=offer.decline_reason))
    return MoveTrail(order_id=order.id, courier_id=order.courier_id, moves=order.moves,
                     allow_reassignment=policy.allow_reassignment,
                     max_moves_per_order=policy.max_moves_per_order, steps=tuple(steps))
