"""Offers: the dispatcher (or ops) proposes orders to a courier; the courier decides.

An offer is closed in exactly one way, ``close_offer``, which always records
``offer.<status>`` (accepted, declined, withdrawn, expired). At most one offer per courier
and one per order is pending (checked here, and by unique indexes when two requests race);
a pending offer past its expiry is closed as expired before a new one is made, and
``expire_due_offers`` closes the rest from housekeeping even when no dispatcher runs.

Merchants per offer: one, except a *planned stack* (``core.dispatch.stacking``): an offer
with a route (``stops``, which only the dispatcher's plan supplies; the ops API cannot)
may hold orders of at most ``MAX_STACK_MERCHANTS`` (2) merchants whose pickups lie at most
``stack_radius_m`` apart (the dispatch policy's radius, 2 % slack for the projection).
Every stacked offer's events carry its ``stack_id`` and route. Anything else mixing
merchants is refused (``mixed_merchants``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from lastmile.app.aggregates import apply_command, load_courier, load_order
from lastmile.app.context import Services, new_event, record
from lastmile.app.handover import hand_over
from lastmile.app.ports import UnitOfWork
from lastmile.app.retry import retrying
from lastmile.core.dispatch.model import DispatchPolicy
from lastmile.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from lastmile.core.geo import haversine_m
from lastmile.core.ids import CourierId
from lastmile.core.lifecycle import Assign
from lastmile.core.model import Courier, CourierStatus
from lastmile.core.offers import MAX_STACK_MERCHANTS, Offer, OfferStatus, OfferStop
from lastmile.core.orders import AWAITING_COURIER, SYSTEM, Actor, ActorKind, Order

EXPIRY_BATCH = 200  # offers closed per unit of work by expire_due_offers
STACK_RADIUS_SLACK = 1.02  # the plan measures on a local plane, the check on the sphere


def close_offer(uow: UnitOfWork, services: Services, offer: Offer, status: OfferStatus, *,
                actor: Actor, now: float, reason: str | None = None) -> Offer:
    """Close a pending offer as ``status`` and record ``offer.<status>``; the caller commits.

    The save is a compare-and-set: an offer closed meanwhile (accepted here, expired there)
    raises ``Conflict("concurrent_update")`` instead of being closed twice.
    """
    if status is OfferStatus.PENDING:
        raise ValueError("closing an offer needs a closed status (got pending)")
    closed = uow.offers.save(replace(offer, status=status, decided_at=now,
                                     decline_reason=reason))
    data: dict[str, object] = {"courier_id": offer.courier_id,
                               "order_ids": list(offer.order_ids), **_stack_data(offer)}
    if reason is not None:
        data["reason"] = reason
    if offer.is_move:  # who keeps the orders when a move is declined or expires
        data.update(from_courier_id=offer.from_courier_id, gain_s=offer.gain_s)
    if status is OfferStatus.EXPIRED:
        data["expires_at"] = offer.expires_at
    record(uow, services, new_event(
        services, type=f"offer.{status.value}", region_id=offer.region_id, subject_id=offer.id,
        actor_kind=actor.kind.value, actor_id=actor.id, data=data,
    ))
    return closed


def _stack_data(offer: Offer) -> dict[str, object]:
    """What an event of a stacked offer adds: the stack and its route (nothing otherwise)."""
    if offer.stack_id is None:
        return {}
    return {"stack_id": offer.stack_id, "stops": [s.to_json() for s in offer.stops]}


def _live_after_expiring(uow: UnitOfWork, services: Services, pending: Iterable[Offer],
                         now: float) -> list[Offer]:
    """Close the expired ones of ``pending`` (recording ``offer.expired``); the rest."""
    live = []
    for offer in pending:
        if offer.expired(now):
            close_offer(uow, services, offer, OfferStatus.EXPIRED, actor=SYSTEM, now=now)
        else:
            live.append(offer)
    return live


def live_offers_of_order(uow: UnitOfWork, services: Services, order_id: str,
                         now: float) -> list[Offer]:
    """The order's pending offers still live (expired ones are closed on the way)."""
    return _live_after_expiring(uow, services, uow.offers.pending_for_order(order_id), now)


def offerable_courier(uow: UnitOfWork, services: Services, courier_id: str,
                      now: float) -> Courier:
    """The courier, on shift and not deciding on a live offer (else ``Conflict``)."""
    courier = load_courier(uow, courier_id)
    if not courier.on_shift:
        raise Conflict("courier_offline", f"courier {courier_id} is not on shift",
                       current_state=courier.status.value)
    live = _live_after_expiring(uow, services, uow.offers.pending_for_courier(courier_id), now)
    if live:
        raise Conflict("courier_has_offer",
                       f"courier {courier_id} is deciding on another offer {live[0].id}",
                       current_state="deciding")
    return courier


def _check_stack(orders: list[Order], stops: tuple[OfferStop, ...],
                 stack_radius_m: float) -> None:
    """Orders of several merchants: allowed only as a planned stack (the module rule)."""
    merchants = {o.merchant_id for o in orders}
    if not stops:
        raise InvalidInput("mixed_merchants", "an offer bundles orders of one merchant only, "
                           "unless it is a stack the dispatcher planned", field="order_ids")
    if len(merchants) > MAX_STACK_MERCHANTS:
        raise InvalidInput("mixed_merchants", f"a stacked offer holds orders of at most "
                           f"{MAX_STACK_MERCHANTS} merchants (got {len(merchants)})",
                           field="order_ids")
    by_id: dict[str, Order] = {o.id: o for o in orders}
    for stop in stops:
        if stop.kind == "pickup" and any(by_id[i].merchant_id != stop.merchant_id
                                         for i in stop.order_ids if i in by_id):
            raise InvalidInput("invalid_stack", f"a pickup at merchant {stop.merchant_id} "
                               "takes that merchant's orders only", field="stops")
    points = {o.merchant_id: o.pickup for o in orders}
    a, b = sorted(points)
    apart = haversine_m(points[a], points[b])
    if apart > stack_radius_m * STACK_RADIUS_SLACK:
        raise InvalidInput("stack_too_wide", f"merchants {a} and {b} are {apart:.0f} m apart; "
                           f"a stack joins merchants at most {stack_radius_m:g} m apart",
                           field="order_ids")


def _offerable_orders(uow: UnitOfWork, services: Services, courier: Courier,
                      order_ids: tuple[str, ...], now: float,
                      stops: tuple[OfferStop, ...] = (),
                      stack_radius_m: float = DispatchPolicy().stack_radius_m) -> list[Order]:
    orders = [load_order(uow, oid) for oid in order_ids]
    foreign = [o.id for o in orders if o.region_id != courier.region_id]
    if foreign:
        raise InvalidInput("region_mismatch",
                           f"orders {', '.join(foreign)} are not in courier {courier.id}'s "
                           f"region {courier.region_id}", field="order_ids")
    if len({o.merchant_id for o in orders}) > 1:
        _check_stack(orders, stops, stack_radius_m)
    for order in orders:
        if order.status not in AWAITING_COURIER:
            raise Conflict("order_not_dispatchable",
                           f"order {order.id} is {order.status.value}, not awaiting a courier",
                           current_state=order.status.value)
        live = _live_after_expiring(uow, services, uow.offers.pending_for_order(order.id), now)
        if live:
            raise Conflict("order_already_offered",
                           f"order {order.id} has a pending offer {live[0].id}",
                           current_state="offered")
    return orders


@retrying
def make_offer(services: Services, *, courier_id: str, order_ids: tuple[str, ...],
               actor: Actor, ttl_s: int | None = None, stops: tuple[OfferStop, ...] = (),
               stack_radius_m: float = DispatchPolicy().stack_radius_m,
               features: Mapping[str, float] | None = None) -> Offer:
    """Offer orders of one merchant (or a planned stack of two, with its ``stops``; see the
    module rule) to an on-shift courier; each order in one pending offer.

    Pending offers of the courier or of the orders that are past their expiry are closed
    first (``offer.expired``), so the unique indexes behind the rule fire only on a race.
    """
    with services.uow() as uow:
        offer = offer_in(uow, services, courier_id=courier_id, order_ids=order_ids,
                         actor=actor, ttl_s=ttl_s, stops=stops, stack_radius_m=stack_radius_m,
                         features=features)
        uow.commit()
        return offer


def offer_in(uow: UnitOfWork, services: Services, *, courier_id: str,
             order_ids: tuple[str, ...], actor: Actor, ttl_s: int | None = None,
             stops: tuple[OfferStop, ...] = (),
             stack_radius_m: float = DispatchPolicy().stack_radius_m,
             features: Mapping[str, float] | None = None) -> Offer:
    """``make_offer``'s checks and writes in the caller's unit of work; the caller commits
    (a dispatch round commits all its offers at once, behind its lease's fence).

    ``features``: what the offer shows its courier (``core.dispatch.acceptance``), kept in
    the ``offer.made`` event so the dispatcher can learn acceptance from its history."""
    if actor.kind not in (ActorKind.OPS, ActorKind.SYSTEM):
        raise Forbidden("actor_not_allowed", f"a {actor.kind.value} may not make offers")
    now = services.clock.now()
    courier = offerable_courier(uow, services, courier_id, now)
    orders = _offerable_orders(uow, services, courier, order_ids, now, stops, stack_radius_m)
    # A route is kept only for a real stack: one merchant's orders need none.
    stacked = len({o.merchant_id for o in orders}) > 1
    offer = Offer(
        id=services.ids.new("off"), region_id=courier.region_id, courier_id=courier_id,
        order_ids=tuple(order_ids), created_at=now,
        expires_at=now + (ttl_s if ttl_s is not None else services.offer_ttl_s),
        stack_id=services.ids.new("stk") if stacked else None,
        stops=tuple(stops) if stacked else (),
    )
    uow.offers.add(offer)
    record(uow, services, new_event(
        services, type="offer.made", region_id=offer.region_id, subject_id=offer.id,
        actor_kind=actor.kind.value, actor_id=actor.id,
        data={"courier_id": courier_id, "order_ids": list(order_ids),
              "expires_at": offer.expires_at, **_stack_data(offer),
              **({"features": dict(features)} if features is not None else {})},
    ))
    return offer


def _load_pending(uow: UnitOfWork, services: Services, offer_id: str, actor: Actor,
                  now: float) -> Offer:
    """The pending offer to decide on. One past its expiry is closed as expired (committed:
    the refusal must not undo it) and refused."""
    offer = uow.offers.get(offer_id)
    if offer is None or (actor.kind is ActorKind.COURIER and offer.courier_id != actor.id):
        raise NotFound("offer_not_found", f"no offer {offer_id}", field="offer_id")
    if offer.expired(now):
        close_offer(uow, services, offer, OfferStatus.EXPIRED, actor=SYSTEM, now=now)
        uow.commit()
        raise Conflict("offer_expired", f"offer {offer_id} expired at {offer.expires_at}",
                       current_state="expired")
    if offer.status is not OfferStatus.PENDING:
        raise Conflict("offer_closed", f"offer {offer_id} is {offer.status.value}",
                       current_state=offer.status.value)
    return offer


@retrying
def accept_offer(services: Services, offer_id: str, *, actor: Actor) -> Offer:
    """Assign every order of the offer to its courier, all or nothing. A move
    (``offer.from_courier_id``) takes the orders from that courier in the same unit of work
    (``handover.hand_over``), or is withdrawn when they are no longer movable.

    The courier is saved with a compare-and-set: racing a release (an order of the courier
    delivered or cancelled meanwhile), one of the two re-runs on the other's result, so the
    courier's active orders are never lost.
    """
    now = services.clock.now()
    with services.uow() as uow:
        offer = _load_pending(uow, services, offer_id, actor, now)
        if offer.is_move:
            return _accept_move(uow, services, offer, actor=actor, now=now)
        courier = load_courier(uow, offer.courier_id)
        orders = [load_order(uow, order_id) for order_id in offer.order_ids]
        gone = [o for o in orders if o.status not in AWAITING_COURIER]
        if gone:
            # An order was cancelled or taken meanwhile: withdraw the whole offer so its other
            # orders return to dispatch now instead of waiting for the expiry.
            close_offer(uow, services, offer, OfferStatus.WITHDRAWN, actor=actor, now=now,
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
        accepted = close_offer(uow, services, offer, OfferStatus.ACCEPTED, actor=actor, now=now)
        uow.commit()
        return accepted


def _accept_move(uow: UnitOfWork, services: Services, offer: Offer, *, actor: Actor,
                 now: float) -> Offer:
    reason = hand_over(uow, services, offer, actor=actor)
    if reason is not None:  # the holder got there first: it keeps the orders
        close_offer(uow, services, offer, OfferStatus.WITHDRAWN, actor=actor, now=now,
                    reason=reason)
        uow.commit()
        raise Conflict("offer_withdrawn", f"offer {offer.id} was withdrawn: {reason}",
                       current_state="withdrawn")
    accepted = close_offer(uow, services, offer, OfferStatus.ACCEPTED, actor=actor, now=now)
    uow.commit()
    return accepted


@retrying
def decline_offer(services: Services, offer_id: str, *, reason: str, actor: Actor) -> Offer:
    now = services.clock.now()
    with services.uow() as uow:
        offer = _load_pending(uow, services, offer_id, actor, now)
        declined = close_offer(uow, services, offer, OfferStatus.DECLINED, actor=actor, now=now,
                               reason=reason)
        uow.commit()
        return declined


def withdraw_courier_offers(uow: UnitOfWork, services: Services, courier_id: str, *,
                            actor: Actor, now: float, reason: str) -> list[Offer]:
    """Close every pending offer of the courier (a ban, the end of a shift); the caller
    commits. Live ones are withdrawn (``offer.withdrawn`` with ``reason``), ones already
    past their expiry are closed as expired. Returns the closed offers."""
    closed = []
    for offer in uow.offers.pending_for_courier(courier_id):
        if offer.expired(now):
            closed.append(close_offer(uow, services, offer, OfferStatus.EXPIRED, actor=SYSTEM,
                                      now=now))
        else:
            closed.append(close_offer(uow, services, offer, OfferStatus.WITHDRAWN, actor=actor,
                                      now=now, reason=reason))
    return closed


def current_offer(services: Services, courier_id: str) -> Offer | None:
    """The courier's live offer, if any (expired ones are not shown)."""
    now = services.clock.now()
    with services.uow(read_only=True) as uow:
        live = [o for o in uow.offers.pending_for_courier(courier_id) if not o.expired(now)]
        return min(live, key=lambda o: (o.created_at, o.id)) if live else None


def current_offers_in(services: Services, region_id: str) -> dict[str, Offer]:
    """Each courier's live offer among ``region_id``'s offers, by courier id: what
    ``current_offer`` answers for each of them, in one read (a courier is only offered
    work in its own region's rounds)."""
    now = services.clock.now()
    with services.uow(read_only=True) as uow:
        live = [o for o in uow.offers.pending_in_region(region_id) if not o.expired(now)]
    out: dict[str, Offer] = {}
    for offer in sorted(live, key=lambda o: (o.created_at, o.id)):
        out.setdefault(offer.courier_id, offer)
    return out


@retrying
def _expire_page(services: Services, now: float,
                 after: tuple[float, str] | None) -> tuple[int, tuple[float, str] | None]:
    """Close one keyset page of offers past their expiry; (closed, cursor or None at the end)."""
    with services.uow() as uow:
        page = uow.offers.pending_expired(now, EXPIRY_BATCH, after=after)
        for offer in page:
            close_offer(uow, services, offer, OfferStatus.EXPIRED, actor=SYSTEM, now=now)
        uow.commit()
    cursor = (page[-1].expires_at, page[-1].id) if len(page) == EXPIRY_BATCH else None
    return len(page), cursor


def expire_due_offers(services: Services) -> int:
    """Close every pending offer past its expiry, in every region, with ``offer.expired``;
    returns how many. Runs from housekeeping, so an offer expires even when no dispatcher
    runs. Pages of ``EXPIRY_BATCH`` by (expires_at, id): each page is one unit of work, and
    one lost race re-runs that page only."""
    now = services.clock.now()
    total, after = 0, None
    while True:
        closed, after = _expire_page(services, now, after)
        total += closed
        if after is None:
            return total
