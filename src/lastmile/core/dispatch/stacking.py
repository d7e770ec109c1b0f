"""Stacked orders: one courier route through two nearby merchants and two nearby doors.

A *stack* joins two single-order bundles of different merchants of one tenant into one
bundle whose route is: pick up at merchant A, pick up at merchant B, drop off at the two
doors (in the best feasible of the 2 x 2 sequences). Rule, for orders ``a`` and ``b``:

- the merchants are at most ``stack_radius_m`` apart and the doors at most
  ``stack_dropoff_radius_m`` (straight line, metres on the snapshot's plane);
- the route starts (first pickup) no earlier than ``start = max(ready_A, ready_B - gap, now)``,
  where ``gap`` is the planned time from the first pickup to the second: the courier never
  waits at the second merchant, so every stop keeps a fixed offset from the first pickup
  and costing can price the stack as it prices any bundle (``Bundle.ready_s = start``);
- at ``start`` every order is delivered by its promised time (``OpenOrder.promised_s``,
  when given), each order's food waits at most ``stack_max_food_wait_s`` between ready and
  pickup, and each order arrives at most ``stack_max_extra_delay_s`` later than it would
  alone (picked up at its ready time or now if later, driven straight to its door);
- the stack saves the courier at least ``stack_min_saving_s`` over two separate trips:
  (busy time of trip a) + (busy time of trip b) + the shorter empty ride between them,
  against the busy time of the stacked route (busy = from the first pickup's service start
  to leaving the last door);
- of the feasible sequences the one with the least total click-to-door is taken.

``Bundle.latest_pickup_s`` carries the last first-pickup time that still keeps every
promised window and the food-wait bound; ``costing`` marks a courier arriving later as
infeasible for that stack. Pairs are chosen greedily by saving (largest first, ties by
order ids), each order in at most one stack; an order in a multi-order bundle is never
stacked. Pure and deterministic; never pairs orders of different tenants.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lastmile.core.dispatch.model import (
    Bundle,
    DispatchPolicy,
    OpenOrder,
    Stop,
    TravelModel,
)

# Candidate partners per order: the nearest merchants within the radius (a dense food
# court would otherwise make the pair count quadratic).
MAX_PARTNERS = 8


@dataclass(frozen=True, slots=True, kw_only=True)
class StackPlan:
    """One feasible stacked route for two orders and what it saves."""

    bundle: Bundle
    saving_s: float


def _direct_s(o: OpenOrder, travel: TravelModel, pickup_service_s: float,
              dropoff_service_s: float) -> float:
    """Pickup to drop-off of ``o`` alone (half services, as ``bundling``)."""
    return (pickup_service_s / 2
            + travel.seconds_between(o.pickup_x_m, o.pickup_y_m, o.dropoff_x_m, o.dropoff_y_m)
            + dropoff_service_s / 2)


def _busy_alone_s(o: OpenOrder, travel: TravelModel, pickup_service_s: float,
                  dropoff_service_s: float) -> float:
    return (pickup_service_s
            + travel.seconds_between(o.pickup_x_m, o.pickup_y_m, o.dropoff_x_m, o.dropoff_y_m)
            + dropoff_service_s)


def plan_stack(a: OpenOrder, b: OpenOrder, *, travel: TravelModel, pickup_service_s: float,
               dropoff_service_s: float, policy: DispatchPolicy,
               now_s: float = -math.inf) -> StackPlan | None:
    """The best feasible stacked route of ``a`` and ``b`` (see the module rule), or None."""
    if a.merchant_id == b.merchant_id or a.tenant != b.tenant or a.order_id == b.order_id:
        return None
    if math.hypot(a.pickup_x_m - b.pickup_x_m, a.pickup_y_m - b.pickup_y_m) > policy.stack_radius_m:
        return None
    if (math.hypot(a.dropoff_x_m - b.dropoff_x_m, a.dropoff_y_m - b.dropoff_y_m)
            > policy.stack_dropoff_radius_m):
        return None
    half_p, half_d = pickup_service_s / 2, dropoff_service_s / 2
    direct = {o.order_id: _direct_s(o, travel, pickup_service_s, dropoff_service_s)
              for o in (a, b)}
    separate = (_busy_alone_s(a, travel, pickup_service_s, dropoff_service_s)
                + _busy_alone_s(b, travel, pickup_service_s, dropoff_service_s)
                + min(travel.seconds_between(a.dropoff_x_m, a.dropoff_y_m,
                                             b.pickup_x_m, b.pickup_y_m),
                      travel.seconds_between(b.dropoff_x_m, b.dropoff_y_m,
                                             a.pickup_x_m, a.pickup_y_m)))
    best: tuple[float, str, StackPlan] | None = None
    for first, second in ((a, b), (b, a)):
        gap = half_p + travel.seconds_between(first.pickup_x_m, first.pickup_y_m,
                                              second.pickup_x_m, second.pickup_y_m) + half_p
        start = max(first.ready_s, second.ready_s - gap, now_s)
        pickup_off = {first.order_id: 0.0, second.order_id: gap}
        food_latest = min(first.ready_s + policy.stack_max_food_wait_s,
                          second.ready_s + policy.stack_max_food_wait_s - gap)
        for x, y in ((a, b), (b, a)):
            t = gap + half_p + travel.seconds_between(second.pickup_x_m, second.pickup_y_m,
                                                      x.dropoff_x_m, x.dropoff_y_m) + half_d
            off_x = t
            t += half_d + travel.seconds_between(x.dropoff_x_m, x.dropoff_y_m,
                                                 y.dropoff_x_m, y.dropoff_y_m) + half_d
            off_y = t
            end = t + half_d
            drop_off = {x.order_id: off_x, y.order_id: off_y}
            latest = food_latest
            for o in (x, y):
                if o.promised_s is not None:
                    latest = min(latest, o.promised_s - drop_off[o.order_id])
            if start > latest:
                continue
            excess = {o.order_id: start + drop_off[o.order_id] - max(o.ready_s, now_s)
                      - direct[o.order_id] for o in (x, y)}
            if max(excess.values()) > policy.stack_max_extra_delay_s:
                continue
            saving = separate - (half_p + end)
            if saving < policy.stack_min_saving_s:
                continue
            route_s = off_x + off_y
            bundle = Bundle(
                merchant_id=first.merchant_id,
                order_ids=(x.order_id, y.order_id),
                ready_s=start,
                x_m=first.pickup_x_m,
                y_m=first.pickup_y_m,
                route_s=route_s,
                detour_s=route_s - direct[x.order_id] - direct[y.order_id],
                last_leg_end_s=end,
                end_x_m=y.dropoff_x_m,
                end_y_m=y.dropoff_y_m,
                placed_s=(x.placed_s, y.placed_s),
                readies_s=(x.ready_s, y.ready_s),
                stops=(
                    Stop(kind="pickup", merchant_id=first.merchant_id,
                         order_ids=(first.order_id,), x_m=first.pickup_x_m,
                         y_m=first.pickup_y_m, offset_s=pickup_off[first.order_id]),
                    Stop(kind="pickup", merchant_id=second.merchant_id,
                         order_ids=(second.order_id,), x_m=second.pickup_x_m,
                         y_m=second.pickup_y_m, offset_s=pickup_off[second.order_id]),
                    Stop(kind="dropoff", merchant_id=x.merchant_id, order_ids=(x.order_id,),
                         x_m=x.dropoff_x_m, y_m=x.dropoff_y_m, offset_s=off_x),
                    Stop(kind="dropoff", merchant_id=y.merchant_id, order_ids=(y.order_id,),
                         x_m=y.dropoff_x_m, y_m=y.dropoff_y_m, offset_s=off_y),
                ),
                latest_pickup_s=latest,
            )
            total = sum(excess.values())
            key = "|".join((first.order_id, x.order_id))
            if best is None or (total, key) < (best[0], best[1]):
                best = (total, key, StackPlan(bundle=bundle, saving_s=saving))
    return best[2] if best is not None else None


def _partners(singles: Sequence[OpenOrder], radius_m: float) -> Iterable[tuple[int, int]]:
    """Index pairs (i < j) of orders whose merchants differ and lie within ``radius_m``;
    each order keeps its ``MAX_PARTNERS`` nearest. A grid of ``radius_m`` cells."""
    grid: defaultdict[tuple[int, int], list[int]] = defaultdict(list)
    cell = [(math.floor(o.pickup_x_m / radius_m), math.floor(o.pickup_y_m / radius_m))
            for o in singles]
    for i, c in enumerate(cell):
        grid[c].append(i)
    seen: set[tuple[int, int]] = set()
    for i, (cx, cy) in enumerate(cell):
        o = singles[i]
        near: list[tuple[float, int]] = []
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                for j in grid.get((cx + dx, cy + dy), ()):
                    p = singles[j]
                    if j == i or p.merchant_id == o.merchant_id or p.tenant != o.tenant:
                        continue
                    d = math.hypot(o.pickup_x_m - p.pickup_x_m, o.pickup_y_m - p.pickup_y_m)
                    if d <= radius_m:
                        near.append((d, j))
        near.sort()
        for _, j in near[:MAX_PARTNERS]:
            pair = (min(i, j), max(i, j))
            if pair not in seen:
                seen.add(pair)
                yield pair


def stack_bundles(bundles: Sequence[Bundle], orders: Sequence[OpenOrder], *,
                  travel: TravelModel, pickup_service_s: float, dropoff_service_s: float,
                  policy: DispatchPolicy, now_s: float = -math.inf) -> tuple[Bundle, ...]:
    """``bundles`` with pairs of single-order bundles replaced by stacks (module rule).

    Every order stays in exactly one bundle; multi-order bundles pass unchanged; a stack
    takes the place of its earlier member, so the output order is deterministic.
    ``policy.allow_stacking`` off gives ``bundles`` unchanged.
    """
    if not policy.allow_stacking:
        return tuple(bundles)
    by_id = {o.order_id: o for o in orders}
    single_at = [i for i, b in enumerate(bundles)
                 if len(b.order_ids) == 1 and not b.stops and b.order_ids[0] in by_id]
    singles = [by_id[bundles[i].order_ids[0]] for i in single_at]
    plans: list[tuple[float, str, str, int, int, Bundle]] = []
    for i, j in _partners(singles, policy.stack_radius_m):
        found = plan_stack(singles[i], singles[j], travel=travel,
                           pickup_service_s=pickup_service_s,
                           dropoff_service_s=dropoff_service_s, policy=policy, now_s=now_s)
        if found is not None:
            ids = sorted((singles[i].order_id, singles[j].order_id))
            plans.append((-found.saving_s, ids[0], ids[1], i, j, found.bundle))
    plans.sort(key=lambda p: p[:3])
    taken: set[int] = set()
    stack_at: dict[int, Bundle] = {}  # bundle position -> the stack that takes it
    dropped: set[int] = set()
    for _, _, _, i, j, bundle in plans:
        if i in taken or j in taken:
            continue
        taken.update((i, j))
        first, second = sorted((single_at[i], single_at[j]))
        stack_at[first] = bundle
        dropped.add(second)
    out: list[Bundle] = []
    for k, b in enumerate(bundles):
        if k in dropped:
            continue
        out.append(stack_at.get(k, b))
    return tuple(out)
