"""Cost of giving a bundle to a courier: one formula, priced for any set of pairs.

For courier c (free at ``start_c`` at position p_c) and bundle b (merchant at
m_b, ready at r_b, orders k with ready times r_k):

- arrival  a_cb = start_c + travel(|p_c - m_b|)
- pickup   P_cb = max(r_b, a_cb + pickup_service / 2)
- cost     sum_k (P_cb - r_k) + detour_b            (click-to-door over the floor)
           + idle_weight * (P_cb - a_cb - pickup_service / 2)  (courier waiting)
           + travel_weight * travel(|p_c - m_b|)              (courier driving)
           + busy_weight * (P_cb - start_c + busy_after_b)      (courier time used: driving,
             waiting, pickup and the route until free again; ``busy_after_b`` is the
             bundle's ``last_leg_end_s``)
           - late_weight * sum_k max(0, now - r_k)  (orders already waiting go first)
           - SERVE_REWARD * |b|                     (serve as many orders as possible)

A pair whose pickup would fall after the courier's shift end, or after a stacked bundle's
``latest_pickup_s`` (``stacking``), costs ``INFEASIBLE``.
The click-to-door floor of an order is its ready time plus direct travel and
service, so ``sum_k (P_cb - r_k) + detour_b`` is exactly the bundle's excess
click-to-door over the floor.

The formula lives in ``price`` and nowhere else: it works elementwise on numpy
arrays that broadcast, so ``pair_costs`` (every courier x every bundle, a dense
matrix) and ``arc_costs`` (the candidate arcs of a sparse round, 1-D) run the very
same arithmetic and can never disagree on a pair's cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from lastmile.core.dispatch.model import Bundle, CourierState, TravelModel

INFEASIBLE = 1e12
SERVE_REWARD = 1e6


@dataclass(frozen=True, slots=True, kw_only=True)
class PairTimes:
    """Arrival, pickup, travel and cost of pairs (seconds): couriers x bundles matrices
    from ``pair_costs``, or one entry per arc from ``arc_costs``."""

    arrival_s: NDArray[np.float64]
    pickup_s: NDArray[np.float64]
    travel_s: NDArray[np.float64]
    cost: NDArray[np.float64]
    feasible: NDArray[np.bool_]


@dataclass(frozen=True, slots=True, kw_only=True)
class CourierArrays:
    """Per courier: free position (metres), start = max(now, free, shift start), shift end."""

    x_m: NDArray[np.float64]
    y_m: NDArray[np.float64]
    start_s: NDArray[np.float64]
    end_s: NDArray[np.float64]

    def take(self, ix: NDArray[np.intp]) -> CourierArrays:
        return CourierArrays(x_m=self.x_m[ix], y_m=self.y_m[ix], start_s=self.start_s[ix],
                             end_s=self.end_s[ix])


@dataclass(frozen=True, slots=True, kw_only=True)
class BundleArrays:
    """Per bundle: merchant position, ready time, size, sum of its orders' ready times,
    time its orders already waited past ready (at ``now``), detour."""

    x_m: NDArray[np.float64]
    y_m: NDArray[np.float64]
    ready_s: NDArray[np.float64]
    size: NDArray[np.float64]
    sum_ready_s: NDArray[np.float64]
    waiting_s: NDArray[np.float64]
    detour_s: NDArray[np.float64]
    latest_pickup_s: NDArray[np.float64]  # a stack's bound (``stacking``); +inf otherwise
    busy_after_s: NDArray[np.float64]  # pickup to the courier free again (``last_leg_end_s``)

    def take(self, ix: NDArray[np.intp]) -> BundleArrays:
        return BundleArrays(x_m=self.x_m[ix], y_m=self.y_m[ix], ready_s=self.ready_s[ix],
                            size=self.size[ix], sum_ready_s=self.sum_ready_s[ix],
                            waiting_s=self.waiting_s[ix], detour_s=self.detour_s[ix],
                            latest_pickup_s=self.latest_pickup_s[ix],
                            busy_after_s=self.busy_after_s[ix])


def courier_arrays(couriers: Sequence[CourierState], now_s: float) -> CourierArrays:
    n = len(couriers)
    pos = np.fromiter((v for c in couriers for v in (c.x_m, c.y_m)), np.float64, 2 * n)
    start = np.fromiter((max(now_s, c.free_s, c.shift_start_s) for c in couriers),
                        np.float64, n)
    end = np.fromiter((c.shift_end_s for c in couriers), np.float64, n)
    return CourierArrays(x_m=pos[0::2], y_m=pos[1::2], start_s=start, end_s=end)


def bundle_arrays(bundles: Sequence[Bundle], now_s: float) -> BundleArrays:
    m = len(bundles)
    pos = np.fromiter((v for b in bundles for v in (b.x_m, b.y_m)), np.float64, 2 * m)
    return BundleArrays(
        x_m=pos[0::2], y_m=pos[1::2],
        ready_s=np.fromiter((b.ready_s for b in bundles), np.float64, m),
        size=np.fromiter((len(b.order_ids) for b in bundles), np.float64, m),
        sum_ready_s=np.fromiter((sum(b.readies_s) for b in bundles), np.float64, m),
        waiting_s=np.fromiter((sum(max(0.0, now_s - r) for r in b.readies_s) for b in bundles),
                              np.float64, m),
        detour_s=np.fromiter((b.detour_s for b in bundles), np.float64, m),
        latest_pickup_s=np.fromiter((b.latest_pickup_s for b in bundles), np.float64, m),
        busy_after_s=np.fromiter((b.last_leg_end_s for b in bundles), np.float64, m),
    )


def price(
    c: CourierArrays,
    b: BundleArrays,
    *,
    travel: TravelModel,
    pickup_service_s: float,
    idle_weight: float,
    late_weight: float,
    travel_weight: float,
    busy_weight: float = 0.0,
) -> PairTimes:
    """THE cost formula (module docstring), elementwise over courier and bundle arrays
    that broadcast against each other (columns x rows for a matrix, equal 1-D arrays for
    arcs)."""
    travel_s = travel.seconds(np.hypot(c.x_m - b.x_m, c.y_m - b.y_m))
    half_p = pickup_service_s / 2
    arrival = c.start_s + travel_s
    pickup = np.maximum(b.ready_s, arrival + half_p)
    # -- stacking (issue 11 item 3): a stack picked up after its latest_pickup_s would break a
    # promised window or the food-wait bound. Every other bundle's bound is +inf.
    feasible = (pickup <= c.end_s) & (pickup <= b.latest_pickup_s)
    cost = b.size * pickup - b.sum_ready_s
    cost += idle_weight * (pickup - arrival - half_p) + travel_weight * travel_s
    cost += b.detour_s - late_weight * b.waiting_s - SERVE_REWARD * b.size
    if busy_weight:
        cost += busy_weight * (pickup - c.start_s + b.busy_after_s)
    cost[~feasible] = INFEASIBLE
    return PairTimes(
        arrival_s=arrival, pickup_s=pickup, travel_s=travel_s, cost=cost, feasible=feasible
    )


def pair_costs(
    couriers: Sequence[CourierState],
    bundles: Sequence[Bundle],
    *,
    now_s: float,
    travel: TravelModel,
    pickup_service_s: float,
    idle_weight: float,
    late_weight: float,
    travel_weight: float = 0.0,
    busy_weight: float = 0.0,
) -> PairTimes:
    """Cost matrix (len(couriers) x len(bundles)); see the module docstring."""
    c = courier_arrays(couriers, now_s)
    b = bundle_arrays(bundles, now_s)
    col = CourierArrays(x_m=c.x_m[:, None], y_m=c.y_m[:, None], start_s=c.start_s[:, None],
                        end_s=c.end_s[:, None])
    return price(col, b, travel=travel, pickup_service_s=pickup_service_s,
                 idle_weight=idle_weight, late_weight=late_weight, travel_weight=travel_weight,
                 busy_weight=busy_weight)


def arc_costs(
    c: CourierArrays,
    b: BundleArrays,
    courier_ix: NDArray[np.intp],
    bundle_ix: NDArray[np.intp],
    *,
    travel: TravelModel,
    pickup_service_s: float,
    idle_weight: float,
    late_weight: float,
    travel_weight: float = 0.0,
    busy_weight: float = 0.0,
) -> PairTimes:
    """The same cost for the arcs (courier_ix[e], bundle_ix[e]) only: entry e of every
    array equals ``pair_costs(...)[courier_ix[e], bundle_ix[e]]`` bit for bit."""
    return price(c.take(courier_ix), b.take(bundle_ix), travel=travel,
                 pickup_service_s=pickup_service_s, idle_weight=idle_weight,
                 late_weight=late_weight, travel_weight=travel_weight, busy_weight=busy_weight)
