"""Live dispatch: one round for a region = snapshot -> pure engine -> offers.

The round reads what is true *now* from the unit of work and the live store,
projects lat/lng onto a local plane (equirectangular around the region centre,
exact to well under 1 % across a city), calls ``core.dispatch.plan_round`` and
turns its decisions into offers with ``offers.make_offer`` (actor SYSTEM).

- Open orders: confirmed, ready or unassigned, without a live offer. An offer
  not accepted by its expiry puts its orders back in the pool next round.
- Couriers: on shift, not banned, without a live offer. Position from the live store
  (fallback: the courier's stored location, then the region centre, but only
  in the first ``live.max_age_s`` of a shift, before the app's first ping: a
  courier silent longer than that has closed the app or lost signal, and is
  offered nothing until it pings again). A busy
  courier is free at the end of its current route (estimated at the dispatch
  speed), at its last drop-off.
- Committed: orders a courier holds and has not picked up yet; the engine may
  grow such a bundle while the courier waits at the merchant (an offer of the
  extra orders to the same courier).
- Prepositioning moves are counted but not sent: the live platform has no
  "go and wait" instruction yet.
- Reassignment (the tenant's ``allow_reassignment``): after the plan, committed bundles
  whose courier is still on the way may be offered to a courier who picks them up sooner
  (``app.reassignment``); those offers are the round's ``moves``.
- Stacked orders (``core.dispatch.stacking``, when the policy allows them): each open
  order carries its promised latest delivery (the quoted window's end); a stacked plan is
  offered with its route (``offers.offer_in(stops=...)``). A courier holding a stack
  visits its merchants nearest first in the free-time estimate, and is not grown by
  assignment updates (those are one merchant's).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from lastmile.app import experiments
from lastmile.app.acceptance import AcceptanceLearner, OfferFeaturesOf
from lastmile.app.context import Services
from lastmile.app.leases import Fence, check_fence
from lastmile.app.live import LiveStore
from lastmile.app.offers import make_offer, offer_in
from lastmile.app.ports import UnitOfWork
from lastmile.app.reassignment import make_move_offer, offer_move_in, round_moves
from lastmile.app.tenancy import current_tenant
from lastmile.app.tenants import dispatch_policy
from lastmile.core.dispatch import (
    Assignment,
    CommittedAssignment,
    CourierState,
    DispatchPolicy,
    OpenOrder,
    Snapshot,
    TravelModel,
    plan_round,
)
from lastmile.core.dispatch.reassign import Move
from lastmile.core.errors import DomainError, NotFound
from lastmile.core.eta import travel as one_travel_model
from lastmile.core.experiments.definition import Context, dispatch_with
from lastmile.core.geo import EARTH_RADIUS_M, Point
from lastmile.core.model import Courier
from lastmile.core.offers import Offer, OfferStop
from lastmile.core.orders import (
    AWAITING_COURIER,
    COURIER_BEFORE_PICKUP,
    SYSTEM,
    Order,
    OrderStatus,
)
from lastmile.core.pay import DEFAULT_POLICY

# One round never loads more: the oldest orders go first and the rest wait for the next
# round. Rounds above 250,000 couriers x bundles are sparse (docs/dispatch.md "Sparse rounds
# at city scale"): bench/dispatch_scaling.py measured 2,000 x 2,000 at 0.68 s and 4,000 at
# 1.9 s (medians) on a machine at load 11-14 where the old dense round took 1.9 s at 2,000;
# time now grows about as size^1.2, so 4,000 keeps a round within a tick (the old cap,
# 2,000, was ~0.4 s dense on an idle machine).
MAX_OPEN_ORDERS = 4_000


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveTravel:
    """How the round turns metres into seconds: straight line x road factor at a speed."""

    # The one travel model's values (core.eta.travel): a bicycle in town, streets ~30 %
    # longer than the crow flies, 2 min handovers.
    speed_mps: float = one_travel_model.DEFAULT_SPEED_MPS
    road_factor: float = one_travel_model.ROAD_FACTOR
    pickup_service_s: float = one_travel_model.PICKUP_HANDOVER_S
    dropoff_service_s: float = one_travel_model.DROPOFF_HANDOVER_S

    def model(self) -> TravelModel:
        return TravelModel(metres_per_step=self.speed_mps / self.road_factor, step_s=1.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Plane:
    """Equirectangular projection around ``origin``: (x east, y north) in metres."""

    origin: Point

    def xy(self, p: Point) -> tuple[float, float]:
        k = math.cos(math.radians(self.origin.lat))
        x = math.radians(p.lng - self.origin.lng) * k * EARTH_RADIUS_M
        y = math.radians(p.lat - self.origin.lat) * EARTH_RADIUS_M
        return x, y


@dataclass(frozen=True, slots=True, kw_only=True)
class RoundResult:
    region_id: str
    at: float
    open_orders: int
    couriers: int
    idle_couriers: int
    offers: tuple[Offer, ...] = ()
    extensions: tuple[Offer, ...] = ()  # extra orders offered to a courier at the merchant
    prepositions: int = 0
    refused: tuple[str, ...] = field(default=())  # codes of offers the platform refused
    moves: tuple[Offer, ...] = ()  # held bundles offered to a courier who is sooner there


@dataclass(frozen=True, slots=True, kw_only=True)
class _Loaded:
    snapshot: Snapshot
    idle: int
    offered: frozenset[str] = frozenset()  # orders with a live offer (a move's included)


def ready_s(order: Order, prep_fallback_s: float) -> float:
    if order.ready_at is not None:
        return order.ready_at
    if order.confirmed_at is not None and order.prep_estimate_s is not None:
        return order.confirmed_at + order.prep_estimate_s
    return order.placed_at + prep_fallback_s


def _open_order(order: Order, plane: Plane, prep_fallback_s: float, tenant: str) -> OpenOrder:
    px, py = plane.xy(order.pickup)
    dx, dy = plane.xy(order.dropoff)
    return OpenOrder(
        order_id=order.id, merchant_id=order.merchant_id, placed_s=order.placed_at,
        ready_s=max(order.placed_at, ready_s(order, prep_fallback_s)),
        pickup_x_m=px, pickup_y_m=py, dropoff_x_m=dx, dropoff_y_m=dy, tenant=tenant,
        moves=order.moves,
        promised_s=order.eta.high_at,
    )


def live_position(live: LiveStore, courier: Courier, fallback: Point, now: float) -> Point | None:
    """The live position; a stand-in only early in a shift; None for a silent courier."""
    pos = live.get(courier.id, now=now)
    if pos is not None:
        return pos.point
    started = courier.shift_started_at
    if started is not None and now - started > live.max_age_s:
        return None
    return courier.location or fallback


def _by_merchant_nearest_first(before: list[Order], start: tuple[float, float],
                               plane: Plane) -> list[list[Order]]:
    """Orders still to pick up, grouped by merchant (one group unless a stack), the merchant
    the courier is at or nearest to first."""
    groups: dict[str, list[Order]] = {}
    for o in before:
        groups.setdefault(o.merchant_id, []).append(o)
    if len(groups) <= 1:
        return list(groups.values())

    def key(group: list[Order]) -> tuple[bool, float, str]:
        gx, gy = plane.xy(group[0].pickup)
        at = any(o.status is OrderStatus.AT_PICKUP for o in group)
        return (not at, math.hypot(gx - start[0], gy - start[1]), group[0].merchant_id)

    return sorted(groups.values(), key=key)


def route_end(start: tuple[float, float], held: list[Order], now: float, plane: Plane,
               travel: LiveTravel) -> tuple[float, float, float, float | None]:
    """(free_s, x, y, pickup_s) after visiting the merchant (if not picked up) and the doors."""
    model, t = travel.model(), now
    x, y = start
    pickup_s = None
    before = [o for o in held if o.status in COURIER_BEFORE_PICKUP]
    for group in _by_merchant_nearest_first(before, (x, y), plane):
        mx, my = plane.xy(group[0].pickup)
        arrival = t if group[0].status is OrderStatus.AT_PICKUP else t + model.seconds_between(
            x, y, mx, my)
        ready = max(ready_s(o, 0.0) for o in group)
        at = max(arrival + travel.pickup_service_s / 2, ready)
        pickup_s = at if pickup_s is None else pickup_s  # the first merchant's pickup
        t, x, y = at + travel.pickup_service_s / 2, mx, my
    for order in held:
        if order.status in (OrderStatus.PICKED_UP, OrderStatus.AT_DROPOFF, *COURIER_BEFORE_PICKUP):
            dx, dy = plane.xy(order.dropoff)
            t += model.seconds_between(x, y, dx, dy) + travel.dropoff_service_s
            x, y = dx, dy
    return t, x, y, pickup_s


def _courier_state(orders: Mapping[str, Order], courier: Courier, *, live: LiveStore,
                   plane: Plane, centre: Point, now: float, travel: LiveTravel, tenant: str,
                   ) -> tuple[CourierState, CommittedAssignment | None] | None:
    """The courier's state for the engine; None when it is silent (no live position)."""
    where = live_position(live, courier, centre, now)
    if where is None:
        return None
    start = plane.xy(where)
    held = [o for o in (orders.get(i) for i in courier.active_order_ids)
            if o is not None and not o.terminal]
    free_s, x, y, pickup_s = route_end(start, held, now, plane, travel)
    state = CourierState(
        courier_id=courier.id, x_m=x, y_m=y, free_s=free_s,
        shift_start_s=courier.shift_started_at or now,
        shift_end_s=courier.shift_ends_at or now + 3600.0, tenant=tenant,
    )
    before = [o for o in held if o.status in COURIER_BEFORE_PICKUP]
    if not before or pickup_s is None or len({o.merchant_id for o in before}) > 1:
        return state, None  # nothing to grow (a stack is not grown by updates)
    at_merchant = before[0].status is OrderStatus.AT_PICKUP
    mx, my = plane.xy(before[0].pickup)
    arrival = now if at_merchant else now + travel.model().seconds_between(*start, mx, my)
    committed = CommittedAssignment(
        courier_id=courier.id, merchant_id=before[0].merchant_id,
        orders=tuple(_open_order(o, plane, 0.0, tenant) for o in before),
        arrival_s=arrival, pickup_s=max(pickup_s, now),
    )
    return state, committed


def load_snapshot(services: Services, live: LiveStore, region_id: str, *,
                  travel: LiveTravel) -> _Loaded:
    now = services.clock.now()
    # Every row below is read in this unit's tenant (the storage layer filters by it): the
    # snapshot and each of its parties carry it, and the engine never pairs across tenants.
    tenant = current_tenant()
    with services.uow(read_only=True) as uow:
        region = uow.regions.get(region_id)
        if region is None:
            raise NotFound("region_not_found", f"no region {region_id}", field="region_id")
        centre = region.center()
        plane = Plane(origin=centre)
        prep = uow.merchants.prep_times(region_id)
        waiting = uow.orders.list(region_id=region_id, statuses=sorted(AWAITING_COURIER),
                                  limit=MAX_OPEN_ORDERS, oldest_first=True)
        live_offers = [o for o in uow.offers.pending_in_region(region_id) if not o.expired(now)]
        offered = {order_id for o in live_offers for order_id in o.order_ids}
        deciding = {o.courier_id for o in live_offers}
        orders = tuple(
            _open_order(o, plane, prep.get(o.merchant_id, 600), tenant)
            for o in sorted(waiting, key=lambda o: (o.placed_at, o.id)) if o.id not in offered
        )
        # Deciding on an offer: not available this round. Banned: never (a ban ends the
        # shift; the check also holds for a row a concurrent writer left on shift).
        on_shift = [c for c in uow.couriers.list_region(region_id, on_shift_only=True)
                    if c.id not in deciding and not c.banned]
        in_hand = uow.orders.get_many({i for c in on_shift for i in c.active_order_ids})
        couriers, committed = [], []
        for courier in on_shift:
            found = _courier_state(in_hand, courier, live=live, plane=plane, centre=centre,
                                   now=now, travel=travel, tenant=tenant)
            if found is None:
                continue  # silent past the live store's max age: cannot see an offer
            state, held = found
            couriers.append(state)
            if held is not None:
                committed.append(held)
    snapshot = Snapshot(
        now_s=now, orders=orders, couriers=tuple(sorted(couriers, key=lambda c: c.courier_id)),
        travel=travel.model(), pickup_service_s=travel.pickup_service_s,
        dropoff_service_s=travel.dropoff_service_s, committed=tuple(committed),
        tenant=tenant,
    )
    return _Loaded(snapshot=snapshot, idle=sum(1 for c in couriers if c.free_s <= now),
                   offered=frozenset(offered))


def round_policy(services: Services, region_id: str, base: DispatchPolicy) -> DispatchPolicy:
    """The policy of a round of ``region_id`` now: ``base`` with the current tenant's
    knobs, then a running dispatch experiment's arm for the region (a switchback's window,
    a market A/B's allocation; app.experiments records the exposure)."""
    policy = dispatch_policy(services, base)
    return dispatch_with(policy, experiments.overrides(
        services, "dispatch", Context(at_s=services.clock.now(), region_id=region_id)))


def dispatch_round(services: Services, live: LiveStore, region_id: str, policy: DispatchPolicy,
                   *, travel: LiveTravel | None = None, fence: Fence | None = None,
                   acceptance: AcceptanceLearner | None = None) -> RoundResult:
    """Plan one round for ``region_id`` and send its decisions as offers.

    ``policy`` is the deployment's; the current tenant's ``dispatch`` overrides
    (``core.tenant_config``) apply on top of it.

    An offer the platform refuses (the order was cancelled or offered meanwhile,
    the courier went off shift) is skipped and its code reported; the next round
    sees the new state. Deterministic for a given state, clock and id source.

    With a ``fence`` (the region's lease) every offer of the round is written in one unit
    of work that first checks the lease is still the worker's: a worker that lost it
    (paused past its TTL, another took over) gets ``Conflict("lease_lost")`` and writes
    nothing. Without one (tests, a single process), each offer is its own unit of work.

    With ``acceptance`` and a policy ``acceptance_weight`` > 0 the round prices each pair
    by the learnt chance its courier takes it (``app.acceptance``). Every offer's
    ``offer.made`` event carries the features it showed, so the history is learnable.
    """
    travel = travel or LiveTravel()
    policy = round_policy(services, region_id, policy)
    loaded = load_snapshot(services, live, region_id, travel=travel)
    snap = loaded.snapshot
    if acceptance is not None and policy.acceptance_weight > 0 and snap.orders:
        snap = replace(snap, acceptance=acceptance.pricing(services, region_id))
    features = OfferFeaturesOf(snap, acceptance.pay if acceptance is not None else DEFAULT_POLICY)
    plan = plan_round(snap, policy) if snap.orders and snap.couriers else None
    moves = round_moves(snap, policy, plan, offered=loaded.offered)
    offers: list[Offer] = []
    extensions: list[Offer] = []
    moved: list[Offer] = []
    refused: list[str] = []
    held: defaultdict[str, set[str]] = defaultdict(set)
    for c in snap.committed:
        held[c.courier_id].update(c.order_ids)
    sends: list[Send] = [(a.courier_id, a.order_ids, offers, _stops(a), None)
                         for a in (plan.assignments if plan else ())]
    for r in plan.reassignments if plan else ():
        extra = tuple(i for i in r.order_ids if i not in held[r.courier_id])
        if extra:
            sends.append((r.courier_id, extra, extensions, (), None))
    sends += [(m.to_courier_id, m.order_ids, moved, (), m) for m in moves]
    if fence is None:
        for send in sends:
            _offer(services, send, refused, policy, features)
    elif sends:
        _fenced_offers(services, fence, sends, refused, policy, features)
    return RoundResult(
        region_id=region_id, at=snap.now_s, open_orders=len(snap.orders),
        couriers=len(snap.couriers), idle_couriers=loaded.idle, offers=tuple(offers),
        extensions=tuple(extensions), prepositions=len(plan.prepositions) if plan else 0,
        refused=tuple(refused), moves=tuple(moved),
    )


# (courier, orders, the result list it goes to, a stacked route or (), the move when it is one)
Send = tuple[str, tuple[str, ...], list[Offer], tuple[OfferStop, ...], Move | None]


def _stops(a: Assignment) -> tuple[OfferStop, ...]:
    """The route of a stacked assignment as offer stops; () for one merchant's bundle."""
    return tuple(OfferStop(kind=s.kind, merchant_id=s.merchant_id, order_ids=s.order_ids)
                 for s in a.stops)


Features = Callable[[str, tuple[str, ...]], dict[str, float] | None]


def _fenced_offers(services: Services, fence: Fence, sends: list[Send],
                   refused: list[str], policy: DispatchPolicy, features: Features) -> None:
    """All of a round's offers in one unit of work behind the fence, or none of them.

    An offer a rule refuses (``offer_in`` checks before it writes) is skipped and reported;
    a refusal by the database (a unique index: another request got there first) undoes the
    whole round as ``Conflict("concurrent_update")``, and the next round re-plans.
    """
    made: list[tuple[Offer, list[Offer]]] = []
    with services.uow() as uow:
        check_fence(uow, fence)
        for send in sends:
            try:
                made.append((_offer_in(uow, services, send, policy, features), send[2]))
            except DomainError as exc:  # the world moved since the snapshot; next round re-plans
                refused.append(exc.code)
        uow.commit()
    for offer, out in made:
        out.append(offer)


def _offer_in(uow: UnitOfWork, services: Services, send: Send, policy: DispatchPolicy,
              features: Features) -> Offer:
    """One send as an offer in the caller's unit of work: a move, or a (stacked) offer
    carrying the features it shows (``app.acceptance`` learns from them)."""
    courier_id, order_ids, _out, stops, move = send
    if move is not None:
        return offer_move_in(uow, services, move, actor=SYSTEM,
                             max_moves_per_order=policy.max_moves_per_order)
    return offer_in(uow, services, courier_id=courier_id, order_ids=order_ids, actor=SYSTEM,
                    stops=stops, stack_radius_m=policy.stack_radius_m,
                    features=features(courier_id, order_ids))


def _offer(services: Services, send: Send, refused: list[str], policy: DispatchPolicy,
           features: Features) -> None:
    courier_id, order_ids, out, stops, move = send
    try:
        out.append(make_offer(services, courier_id=courier_id, order_ids=order_ids, actor=SYSTEM,
                              stops=stops, stack_radius_m=policy.stack_radius_m,
                              features=features(courier_id, order_ids))
                   if move is None else
                   make_move_offer(services, move, max_moves_per_order=policy.max_moves_per_order,
                                   actor=SYSTEM))
    except DomainError as exc:  # the world moved since the snapshot; next round re-plans
        refused.append(exc.code)
