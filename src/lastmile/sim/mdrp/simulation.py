"""Discrete-event replay of an MDRP instance through the pure dispatch engine.

The simulator owns the clock (integer minutes, as in the instances) and the
rules; the engine only proposes. Each minute: pickups that are due happen and
their drop-offs are scheduled; every ``tick_min`` minutes a snapshot of what is
known *now* (orders placed so far, couriers' free times and places, committed
bundles not yet picked up) goes to ``plan_round`` and its plan is applied after
checking the rules again (a courier takes instructions only when idle at its
on-location or last stop; no pickup after its off-time; bundles of one
restaurant). Iteration orders are sorted, so a run is deterministic.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from lastmile.core.dispatch import (
    Assignment,
    CommittedAssignment,
    CourierState,
    DispatchPolicy,
    Merchant,
    OpenOrder,
    Preposition,
    Reassignment,
    Snapshot,
    TravelModel,
    plan_round,
)
from lastmile.sim.mdrp.instance import Instance

DEMAND_WINDOW_MIN = 60  # prepositioning demand = orders placed at the restaurant in the last hour


@dataclass(frozen=True, slots=True, kw_only=True)
class AssignmentRecord:
    assignment_time: int
    pickup_time: int
    courier_id: str
    order_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    pickup_time: int
    dropoff_time: int
    courier_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Move:
    departure_time: int
    origin: str
    destination: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SimResult:
    instance: Instance
    assignments: tuple[AssignmentRecord, ...]
    deliveries: dict[str, Delivery]
    moves: dict[str, tuple[Move, ...]]
    committed_at: dict[str, int] = field(default_factory=dict)
    """The minute each order was first committed to a courier (never revised later, unlike
    ``AssignmentRecord.assignment_time``, which an added order moves)."""


@dataclass(slots=True)
class _Pending:
    restaurant_id: str
    order_ids: list[str]
    assigned_at: int
    arrival: int
    pickup: int


@dataclass(slots=True)
class _CourierRun:
    courier_id: str
    on: int
    off: int
    x: float
    y: float
    node: str = "0"
    free_at: int = 0
    at_restaurant: str | None = None
    pending: _Pending | None = None
    moves: list[Move] = field(default_factory=list)


class _World:
    def __init__(self, instance: Instance, policy: DispatchPolicy) -> None:
        self.inst = instance
        self.policy = policy
        p = instance.params
        self.half_p = p.pickup_service_min // 2
        self.half_d = p.dropoff_service_min // 2
        self.travel = TravelModel(metres_per_step=p.meters_per_minute, step_s=60.0)
        self.orders = {o.order_id: o for o in instance.orders}
        self.by_time = sorted(instance.orders, key=lambda o: (o.placement_time, o.order_id))
        self.next_order = 0
        self.open: dict[str, OpenOrder] = {}
        self.couriers = {
            c.courier_id: _CourierRun(
                courier_id=c.courier_id,
                on=c.on_time,
                off=c.off_time,
                x=c.x,
                y=c.y,
                free_at=c.on_time,
            )
            for c in sorted(instance.couriers, key=lambda c: c.courier_id)
        }
        self.assignments: list[AssignmentRecord] = []
        self.deliveries: dict[str, Delivery] = {}
        self.committed_at: dict[str, int] = {}
        self.recent: deque[tuple[int, str]] = deque()
        self.demand: dict[str, int] = {}

    # --- arrivals of information -------------------------------------------------
    def reveal_orders(self, t: int) -> None:
        while (
            self.next_order < len(self.by_time)
            and self.by_time[self.next_order].placement_time <= t
        ):
            o = self.by_time[self.next_order]
            self.open[o.order_id] = self._as_open(o.order_id)
            self.recent.append((o.placement_time, o.restaurant_id))
            self.demand[o.restaurant_id] = self.demand.get(o.restaurant_id, 0) + 1
            self.next_order += 1
        while self.recent and self.recent[0][0] <= t - DEMAND_WINDOW_MIN:
            _, rid = self.recent.popleft()
            self.demand[rid] -= 1

    # --- snapshot ----------------------------------------------------------------
    def snapshot(self, t: int) -> Snapshot:
        horizon_min = self.policy.horizon_s / 60.0
        states: list[CourierState] = []
        committed: list[CommittedAssignment] = []
        for c in self.couriers.values():
            if c.off <= t or c.on > t + horizon_min:
                continue
            states.append(self._state(c))
            if c.pending is not None:
                committed.append(
                    CommittedAssignment(
                        courier_id=c.courier_id,
                        merchant_id=c.pending.restaurant_id,
                        orders=tuple(self._as_open(i) for i in c.pending.order_ids),
                        arrival_s=c.pending.arrival * 60.0,
                        pickup_s=c.pending.pickup * 60.0,
                    )
                )
        merchants = (
            tuple(
                Merchant(
                    merchant_id=rid, x_m=r.x, y_m=r.y, demand_weight=float(self.demand.get(rid, 0))
                )
                for rid, r in sorted(self.inst.restaurants.items())
            )
            if self.policy.allow_prepositioning
            else ()
        )
        return Snapshot(
            now_s=t * 60.0,
            orders=tuple(self.open[k] for k in sorted(self.open)),
            couriers=tuple(states),
            travel=self.travel,
            pickup_service_s=self.inst.params.pickup_service_min * 60.0,
            dropoff_service_s=self.inst.params.dropoff_service_min * 60.0,
            committed=tuple(committed),
            merchants=merchants,
        )

    def _as_open(self, order_id: str) -> OpenOrder:
        o = self.orders[order_id]
        r = self.inst.restaurants[o.restaurant_id]
        return OpenOrder(
            order_id=o.order_id,
            merchant_id=o.restaurant_id,
            placed_s=o.placement_time * 60.0,
            ready_s=o.ready_time * 60.0,
            pickup_x_m=r.x,
            pickup_y_m=r.y,
            dropoff_x_m=o.x,
            dropoff_y_m=o.y,
        )

    def _state(self, c: _CourierRun) -> CourierState:
        if c.pending is None:
            return CourierState(
                courier_id=c.courier_id,
                x_m=c.x,
                y_m=c.y,
                free_s=c.free_at * 60.0,
                shift_start_s=c.on * 60.0,
                shift_end_s=c.off * 60.0,
                at_merchant_id=c.at_restaurant,
            )
        end, (x, y) = self._route(c.pending.pickup, c.pending.restaurant_id, c.pending.order_ids)
        return CourierState(
            courier_id=c.courier_id,
            x_m=x,
            y_m=y,
            free_s=end * 60.0,
            shift_start_s=c.on * 60.0,
            shift_end_s=c.off * 60.0,
        )

    def _route(
        self, pickup: int, rid: str, order_ids: list[str]
    ) -> tuple[int, tuple[float, float]]:
        r = self.inst.restaurants[rid]
        x, y, t = r.x, r.y, pickup + self.half_p
        for oid in order_ids:
            o = self.orders[oid]
            t += self.inst.travel_min(x, y, o.x, o.y) + 2 * self.half_d
            x, y = o.x, o.y
        return t, (x, y)

    # --- applying a plan (every rule re-checked) ----------------------------------
    def apply_assignment(self, t: int, a: Assignment) -> None:
        c = self.couriers[a.courier_id]
        if c.pending is not None or c.free_at > t or c.on > t or c.off <= t:
            return
        orders = [self.orders[i] for i in a.order_ids if i in self.open]
        if len(orders) != len(a.order_ids) or {o.restaurant_id for o in orders} != {a.merchant_id}:
            return
        r = self.inst.restaurants[a.merchant_id]
        arrival = t + self.inst.travel_min(c.x, c.y, r.x, r.y)
        pickup = max(max(o.ready_time for o in orders), arrival + self.half_p)
        if pickup > c.off:
            return
        self._move(c, t, a.merchant_id, r.x, r.y)
        c.pending = _Pending(
            restaurant_id=a.merchant_id,
            order_ids=list(a.order_ids),
            assigned_at=t,
            arrival=arrival,
            pickup=pickup,
        )
        for i in a.order_ids:
            del self.open[i]
            self.committed_at[i] = t

    def apply_update(self, t: int, u: Reassignment) -> None:
        c = self.couriers[u.courier_id]
        p = c.pending
        if p is None or p.restaurant_id != u.merchant_id or not (p.arrival <= t <= p.pickup):
            return
        new = [i for i in u.order_ids if i not in p.order_ids]
        if set(p.order_ids) - set(u.order_ids) or any(i not in self.open for i in new):
            return
        if any(self.orders[i].restaurant_id != p.restaurant_id for i in new):
            return
        pickup = max(p.pickup, max(self.orders[i].ready_time for i in new))
        if pickup > c.off:
            return
        p.order_ids, p.pickup, p.assigned_at = list(u.order_ids), pickup, t
        for i in new:
            del self.open[i]
            self.committed_at[i] = t

    def apply_preposition(self, t: int, m: Preposition) -> None:
        c = self.couriers[m.courier_id]
        if c.pending is not None or c.free_at > t or c.on > t or c.off <= t:
            return
        r = self.inst.restaurants[m.merchant_id]
        c.free_at = t + self.inst.travel_min(c.x, c.y, r.x, r.y)
        self._move(c, t, m.merchant_id, r.x, r.y)
        c.at_restaurant = m.merchant_id

    def _move(self, c: _CourierRun, t: int, dest: str, x: float, y: float) -> None:
        if c.node != dest:
            c.moves.append(Move(departure_time=t, origin=c.node, destination=dest))
        c.node, c.x, c.y = dest, x, y

    # --- executing pickups ----------------------------------------------------------
    def execute_pickups(self, t: int) -> None:
        for c in self.couriers.values():
            p = c.pending
            if p is None or p.pickup > t:
                continue
            self.assignments.append(
                AssignmentRecord(
                    assignment_time=p.assigned_at,
                    pickup_time=p.pickup,
                    courier_id=c.courier_id,
                    order_ids=tuple(p.order_ids),
                )
            )
            dep = p.pickup + self.half_p
            for oid in p.order_ids:
                o = self.orders[oid]
                arrive = dep + self.inst.travel_min(c.x, c.y, o.x, o.y)
                self._move_at(c, dep, oid, o.x, o.y)
                dropoff = arrive + self.half_d
                self.deliveries[oid] = Delivery(
                    pickup_time=p.pickup, dropoff_time=dropoff, courier_id=c.courier_id
                )
                dep = dropoff + self.half_d
            c.free_at, c.pending, c.at_restaurant = dep, None, None

    def _move_at(self, c: _CourierRun, dep: int, dest: str, x: float, y: float) -> None:
        c.moves.append(Move(departure_time=dep, origin=c.node, destination=dest))
        c.node, c.x, c.y = dest, x, y


def simulate(instance: Instance, policy: DispatchPolicy, *, tick_min: int = 1,
             observe: Callable[[int, Snapshot], None] | None = None) -> SimResult:
    """Run the whole day; orders never assigned stay undelivered. ``observe(t, snapshot)``,
    when given, sees what is known at each minute orders are placed, before that minute's
    round (the ETA rows' placement-time features)."""
    w = _World(instance, policy)
    starts = [o.placement_time for o in instance.orders] + [c.on_time for c in instance.couriers]
    t0 = min(starts) if starts else 0
    t_end = max([c.off_time for c in instance.couriers] + [t0])
    for t in range(t0, t_end + 1):
        revealed = w.next_order
        w.reveal_orders(t)
        if observe is not None and w.next_order > revealed:
            observe(t, w.snapshot(t))
        if (t - t0) % tick_min == 0 and (w.open or any(c.pending for c in w.couriers.values())):
            plan = plan_round(w.snapshot(t), policy)
            for u in plan.reassignments:
                w.apply_update(t, u)
            for a in plan.assignments:
                w.apply_assignment(t, a)
            for m in plan.prepositions:
                w.apply_preposition(t, m)
        w.execute_pickups(t)
    return SimResult(
        instance=instance,
        assignments=tuple(w.assignments),
        deliveries=w.deliveries,
        moves={cid: tuple(c.moves) for cid, c in w.couriers.items()},
        committed_at=w.committed_at,
    )
