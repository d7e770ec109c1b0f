"""Anticipation: what a courier's job costs the orders that are not placed yet.

The round's cost prices the open orders only. Two terms price the future with what is
known at the round (merchants' recent demand, the preparation times of the open orders):

- **Coverage loss** (``coverage_loss``, per courier). An order placed now at merchant m is
  ready ``prep`` later; it is late by ``max(0, reach_m - prep)``, ``reach_m`` being the
  soonest any courier of the round can pick it up (its start, its drive, half the pickup
  service). When courier c is the soonest at m and leaves on a job, m's reach becomes the
  second soonest. Per second c is away, the expected lateness this adds is
  ``sum over the merchants c is soonest at of rate_m * (E[late | second] - E[late | first])``,
  ``rate_m`` the merchant's demand per second (``Merchant.demand_weight`` is orders per
  hour) and the expectation over the open orders' preparation times. The pair cost adds
  ``coverage_weight * loss_c * (time the pair keeps c busy)``: the matching takes the
  courier nobody else would miss, the regret of taking the sole nearby courier.
- **Repositioning** (``reposition_s``, per bundle): the drive from the bundle's last
  drop-off to the nearest merchant with demand, the empty drive the courier's next job
  starts with. Priced in rounds with more bundles than couriers, where courier time
  limits how many orders are served.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from lastmile.core.dispatch.model import Merchant, OpenOrder, TravelModel

HOUR_S = 3600.0


def prep_times(orders: Sequence[OpenOrder]) -> NDArray[np.float64]:
    """The open orders' preparation times (ready - placed, seconds, >= 0), sorted."""
    prep = np.fromiter((max(0.0, o.ready_s - o.placed_s) for o in orders), np.float64,
                       len(orders))
    prep.sort()
    return prep


def expected_late(reach_s: NDArray[np.float64], prep_sorted: NDArray[np.float64]
                  ) -> NDArray[np.float64]:
    """``mean_i max(0, reach - prep_i)`` elementwise over ``reach_s`` (0 with no sample)."""
    n = len(prep_sorted)
    if n == 0:
        return np.zeros_like(reach_s)
    csum = np.concatenate([[0.0], np.cumsum(prep_sorted)])
    k = np.searchsorted(prep_sorted, reach_s, side="left")
    out: NDArray[np.float64] = (k * reach_s - csum[k]) / n
    return out


def coverage_loss(
    *,
    courier_x_m: NDArray[np.float64],
    courier_y_m: NDArray[np.float64],
    courier_start_s: NDArray[np.float64],
    now_s: float,
    merchants: Sequence[Merchant],
    prep_sorted: NDArray[np.float64],
    travel: TravelModel,
    pickup_service_s: float,
) -> NDArray[np.float64]:
    """Per courier: expected seconds of lateness per second it is away (module rule)."""
    n = len(courier_x_m)
    loss = np.zeros(n)
    demand = [m for m in merchants if m.demand_weight > 0]
    if n == 0 or not demand or len(prep_sorted) == 0:
        return loss
    mx = np.array([m.x_m for m in demand])
    my = np.array([m.y_m for m in demand])
    rate = np.array([m.demand_weight for m in demand]) / HOUR_S
    reach = (np.maximum(courier_start_s - now_s, 0.0)[:, None] + pickup_service_s / 2
             + travel.seconds(np.hypot(courier_x_m[:, None] - mx, courier_y_m[:, None] - my)))
    first_ix = np.argmin(reach, axis=0)
    cols = np.arange(len(demand))
    first = reach[first_ix, cols]
    if n > 1:
        second = np.partition(reach, 1, axis=0)[1]
    else:
        second = np.full(len(demand), np.inf)
    # With no second courier the merchant's orders wait for whoever comes next: count the
    # loss up to the longest preparation time seen plus an hour, not without bound.
    second = np.minimum(second, prep_sorted[-1] + HOUR_S)
    gain = rate * (expected_late(second, prep_sorted) - expected_late(first, prep_sorted))
    np.add.at(loss, first_ix, gain)
    return loss


def reposition_s(
    end_x_m: NDArray[np.float64],
    end_y_m: NDArray[np.float64],
    merchants: Sequence[Merchant],
    travel: TravelModel,
) -> NDArray[np.float64]:
    """Per bundle: the drive from its last drop-off to the nearest merchant with demand
    (0 for every bundle when no merchant has demand)."""
    demand = [(m.x_m, m.y_m) for m in merchants if m.demand_weight > 0]
    if not demand or len(end_x_m) == 0:
        return np.zeros(len(end_x_m))
    dist, _ = cKDTree(np.array(demand)).query(np.column_stack([end_x_m, end_y_m]))
    out: NDArray[np.float64] = travel.seconds(np.asarray(dist, dtype=np.float64))
    return out
