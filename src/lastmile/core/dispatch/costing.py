"""Cost of giving each bundle to each courier, as one numpy matrix.

For courier c (free at ``start_c`` at position p_c) and bundle b (merchant at
m_b, ready at r_b, orders k with ready times r_k):

- arrival  a_cb = start_c + travel(|p_c - m_b|)
- pickup   P_cb = max(r_b, a_cb + pickup_service / 2)
- cost     sum_k (P_cb - r_k) + detour_b            (click-to-door over the floor)
           + idle_weight * (P_cb - a_cb - pickup_service / 2)  (courier waiting)
           + travel_weight * travel(|p_c - m_b|)              (courier driving)
           - late_weight * sum_k max(0, now - r_k)  (orders already waiting go first)
           - SERVE_REWARD * |b|                     (serve as many orders as possible)

A pair whose pickup would fall after the courier's shift end costs ``INFEASIBLE``.
The click-to-door floor of an order is its ready time plus direct travel and
service, so ``sum_k (P_cb - r_k) + detour_b`` is exactly the bundle's excess
click-to-door over the floor.
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
    """Arrival, pickup and cost matrices, couriers x bundles (seconds)."""

    arrival_s: NDArray[np.float64]
    pickup_s: NDArray[np.float64]
    travel_s: NDArray[np.float64]
    cost: NDArray[np.float64]
    feasible: NDArray[np.bool_]


def courier_arrays(
    couriers: Sequence[CourierState], now_s: float
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """(positions n x 2, start times = max(now, free, shift start), shift ends)."""
    pos = np.array([(c.x_m, c.y_m) for c in couriers], dtype=np.float64).reshape(-1, 2)
    start = np.array([max(now_s, c.free_s, c.shift_start_s) for c in couriers], dtype=np.float64)
    end = np.array([c.shift_end_s for c in couriers], dtype=np.float64)
    return pos, start, end


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
) -> PairTimes:
    """Cost matrix (len(couriers) x len(bundles)); see the module docstring."""
    pos, start, end = courier_arrays(couriers, now_s)
    mpos = np.array([(b.x_m, b.y_m) for b in bundles], dtype=np.float64).reshape(-1, 2)
    ready = np.array([b.ready_s for b in bundles], dtype=np.float64)
    size = np.array([len(b.order_ids) for b in bundles], dtype=np.float64)
    sum_ready = np.array([sum(b.readies_s) for b in bundles], dtype=np.float64)
    waiting = np.array(
        [sum(max(0.0, now_s - r) for r in b.readies_s) for b in bundles], dtype=np.float64
    )
    detour = np.array([b.detour_s for b in bundles], dtype=np.float64)
    dist = np.hypot(pos[:, None, 0] - mpos[None, :, 0], pos[:, None, 1] - mpos[None, :, 1])
    travel_s = travel.seconds(dist)
    half_p = pickup_service_s / 2
    arrival = start[:, None] + travel_s
    pickup = np.maximum(ready[None, :], arrival + half_p)
    feasible = pickup <= end[:, None]
    cost = size[None, :] * pickup - sum_ready[None, :]
    cost += idle_weight * (pickup - arrival - half_p) + travel_weight * travel_s
    cost += (detour - late_weight * waiting - SERVE_REWARD * size)[None, :]
    cost[~feasible] = INFEASIBLE
    return PairTimes(
        arrival_s=arrival, pickup_s=pickup, travel_s=travel_s, cost=cost, feasible=feasible
    )
