"""Offers: the dispatcher (or ops) proposes orders to a courier; the courier decides."""

from __future__ import annotations

from dataclasses import replace

from lastmile.app.context import Services, new_event, record
from lastmile.app.fulfilment import apply_command, load_courier, load_order
from lastmile.app.ports import UnitOfWork
from lastmile.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from lastmile.core.ids import CourierId
from lastmile.core.lifecycle import Assign
from lastmile.core.model import CourierStatus
from lastmile.core.offers import Offer, OfferStatus
from lastmile.core.orders import AWAITING_COURIER, Actor, ActorKind


def make_offer(services: Services, *, courier_id: str, order_ids: tuple[str, ...],
               actor: Actor, ttl_s: int | None = None) -> Offer:
    """Offer orders of one merchant to an on-shift courier; each order in one pending offer."""
    if actor.kind not in (ActorKind.OPS, ActorKind.SYSTEM):
        raise Forbidden("actor_not_allowed", f"a {actor.kind.value} may not make offers")
    now = services.clock.now()
    with services.uow() as uow:
        courier = load_courier(uow, courier_id)
        if not courier.on_shift:
            raise Conflict("courier_offline", f"courier {courier_id} is not on shift",
                           current_state=courier.status.value)
        if any(not o.expired(now) for o in uow.offers.pending_for_courier(courier_id)):
            raise Conflict("courier_has_offer",
                           f"courier {courier_id} is deciding on another offer")
        orders = [load_order(uow, oid) for oid in order_ids]
        foreign = [o.id for o in orders if o.region_id != courier.region_id]
        if foreign:
            raise InvalidInput("region_mismatch",
                               f"orders {', '.join(foreign)} are not in courier {courier_id}'s "
                               f"region {courier.region_id}", field="order_ids")
        if len({o.merchant_id for o in orders}) > 1:
            raise InvalidInput("mixed_merchants", "an offer bundles orders of one merchant only",
                               field="order_ids")
        for order in orders:
            if order.status not in AWAITING_COURIER:
                raise Conflict("order_not_dispatchable",
                               f"order {order.id} is {order.status.value}, not awaiting a courier",
                               current_state=order.status.value)
            for prior in uow.offers.pending_for_order(order.id):
                if not prior.expired(now):
                    raise Conflict("order_already_offered",
                                   f"order {order.id} has a pending offer {prior.id}")
                uow.offers.save(replace(prior, status=OfferStatus.EXPIRED, decided_at=now))
        offer = Offer(
            id=services.ids.new("off"), region_id=courier.region_id, courier_id=courier_id,
            order_ids=tuple(order_ids), created_at=now,
            expires_at=now + (ttl_s if ttl_s is not None else services.offer_ttl_s),
        )
        uow.offers.add(offer)
        record(uow, services, new_event(
            services, type="offer.made", region_id=offer.region_id, subject_id=offer.id,
            actor_kind=actor.kind.value, actor_id=actor.id,
            data={"courier_id": courier_id, "order_ids": list(order_ids),
                  "expires_at": offer.expires_at},
        ))
        uow.commit()
        return offer


def _load_pending(uow: UnitOfWork, offer_id: str, actor: Actor, now: float) -> Offer:
    offer = uow.offers.get(offer_id)
    if offer is None or (actor.kind is ActorKind.COURIER and offer.courier_id != actor.id):
        raise NotFound("offer_not_found", f"no offer {offer_id}", field="offer_id")
    if offer.expired(now):
        raise Conflict("offer_expired", f"offer {offer_id} expired at {offer.expires_at}",
                       current_state="expired")
    if offer.status is not OfferStatus.PENDING:
        raise Conflict("offer_closed", f"offer {offer_id} is {offer.status.value}",
                       current_state=offer.status.value)
    return offer


def accept_offer(services: Services, offer_id: str, *, actor: Actor) -> Offer:
    """Assign every order of the offer to its courier, all or nothing."""
    now = services.clock.now()
    with services.uow() as uow:
        offer = _load_pending(uow, offer_id, actor, now)
        courier = load_courier(uow, offer.courier_id)
        orders = [load_order(uow, order_id) for order_id in offer.order_ids]
        gone = [o for o in orders if o.status not in AWAITING_COURIER]
        if gone:
            # An order was cancelled or taken meanwhile: withdraw the whole offer so its other
            # orders return to dispatch now instead of waiting for the expiry.
            _close(uow, services, offer, OfferStatus.WITHDRAWN, actor, now,
                   reason=f"order {gone[0].id} is {gone[0].status.value}")
            uow.commit()
            raise Conflict("offer_withdrawn",
                           f"offer {offer_id} was withdrawn: order {gone[0].id} is "
                           f"{gone[0].status.value}", current_state="withdrawn")
        for order in orders:
            apply_command(uow, services, order, Assign(courier_id=CourierId(courier.id)), actor)
        uow.couriers.save(replace(
            courier, status=CourierStatus.BUSY,
            active_order_ids=courier.active_order_ids + offer.order_ids,
        ))
        accepted = replace(offer, status=OfferStatus.ACCEPTED, decided_at=now)
        uow.offers.save(accepted)
        record(uow, services, new_event(
            services, type="offer.accepted", region_id=offer.region_id, subject_id=offer.id,
            actor_kind=actor.kind.value, actor_id=actor.id,
            data={"courier_id": offer.courier_id, "order_ids": list(offer.order_ids)},
        ))
        uow.commit()
        return accepted


def decline_offer(services: Services, offer_id: str, *, reason: str, actor: Actor) -> Offer:
    now = services.clock.now()
    with services.uow() as uow:
        offer = _load_pending(uow, offer_id, actor, now)
        declined = _close(uow, services, offer, OfferStatus.DECLINED, actor, now, reason=reason)
        uow.commit()
        return declined


def _close(uow: UnitOfWork, services: Services, offer: Offer, status: OfferStatus,
           actor: Actor, now: float, *, reason: str) -> Offer:
    """Close a pending offer (declined or withdrawn) and record why; the caller commits."""
    closed = replace(offer, status=status, decided_at=now, decline_reason=reason)
    uow.offers.save(closed)
    record(uow, services, new_event(
        services, type=f"offer.{status.value}", region_id=offer.region_id, subject_id=offer.id,
        actor_kind=actor.kind.value, actor_id=actor.id,
        data={"courier_id": offer.courier_id, "order_ids": list(offer.order_ids),
              "reason": reason},
    ))
    return closed


def withdraw_courier_offers(uow: UnitOfWork, services: Services, courier_id: str, *,
                            actor: Actor, now: float, reason: str) -> list[Offer]:
    """Withdraw every pending offer of the courier (live or past its expiry), each with its
    ``offer.withdrawn`` event, so their orders return to dispatch now; the caller commits."""
    return [_close(uow, services, offer, OfferStatus.WITHDRAWN, actor, now, reason=reason)
            for offer in uow.offers.pending_for_courier(courier_id)]


def current_offer(services: Services, courier_id: str) -> Offer | None:
    """The courier's live offer, if any (expired ones are not shown)."""
    now = services.clock.now()
    with services.uow(read_only=True) as uow:
        live = [o for o in uow.offers.pending_for_courier(courier_id) if not o.expired(now)]
        return min(live, key=lambda o: (o.created_at, o.id)) if live else None


def expire_offers(services: Services, *, courier_id: str) -> int:
    """Close the courier's pending offers past their expiry; returns how many."""
    now = services.clock.now()
    with services.uow() as uow:
        stale = [o for o in uow.offers.pending_for_courier(courier_id) if o.expired(now)]
        for offer in stale:
            uow.offers.save(replace(offer, status=OfferStatus.EXPIRED, decided_at=now))
        uow.commit()
        return len(stale)
