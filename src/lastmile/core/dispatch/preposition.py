"""Prepositioning: send idle couriers to wait at merchants with expected demand.

Rule: an idle courier that got no bundle this round and is not already at a
merchant goes to the merchant with the highest ``demand_weight / (1 + travel
minutes)`` within ``preposition_radius_s``, provided no other courier waits at
or heads to that merchant. Merchants with zero weight attract nobody. Pairs are
taken best score first (ties by courier id, then merchant id), one courier per
merchant.

With ``preposition_orders_per_courier = k > 0`` (MDRP tuning, docs/dispatch.md
"Tuning and validation") a merchant instead takes up to ``ceil(demand_weight / k)``
waiting couriers, counting those already waiting at or heading to it; a courier
committed to a bundle there does not count (it leaves with its bundle).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from lastmile.core.dispatch.model import (
    CourierState,
    DispatchPolicy,
    Merchant,
    Preposition,
    Snapshot,
)


def plan_prepositions(
    snapshot: Snapshot, policy: DispatchPolicy, free_couriers: Sequence[CourierState]
) -> tuple[Preposition, ...]:
    merchants = [m for m in snapshot.merchants if m.demand_weight > 0]
    waiting: dict[str, int] = {}
    for c in snapshot.couriers:
        if c.at_merchant_id is not None:
            waiting[c.at_merchant_id] = waiting.get(c.at_merchant_id, 0) + 1
    per = policy.preposition_orders_per_courier
    if per > 0:
        slots = {m.merchant_id: math.ceil(m.demand_weight / per) - waiting.get(m.merchant_id, 0)
                 for m in merchants}
    else:
        covered = set(waiting) | {a.merchant_id for a in snapshot.committed}
        slots = {m.merchant_id: 0 if m.merchant_id in covered else 1 for m in merchants}
    merchants = [m for m in merchants if slots[m.merchant_id] > 0]
    movers = [c for c in free_couriers if c.at_merchant_id is None]
    if not merchants or not movers:
        return ()
    cpos = np.array([(c.x_m, c.y_m) for c in movers], dtype=np.float64)
    mpos = np.array([(m.x_m, m.y_m) for m in merchants], dtype=np.float64)
    weight = np.array([m.demand_weight for m in merchants], dtype=np.float64)
    dist = np.hypot(cpos[:, None, 0] - mpos[None, :, 0], cpos[:, None, 1] - mpos[None, :, 1])
    travel_s = snapshot.travel.seconds(dist)
    score = weight[None, :] / (1.0 + travel_s / 60.0)
    score[travel_s > policy.preposition_radius_s] = -np.inf
    return _take_best(snapshot.now_s, movers, merchants, score, travel_s,
                      [slots[m.merchant_id] for m in merchants])


def _take_best(
    now_s: float,
    movers: Sequence[CourierState],
    merchants: Sequence[Merchant],
    score: np.ndarray,
    travel_s: np.ndarray,
    slots: Sequence[int],
) -> tuple[Preposition, ...]:
    flat = [
        (-score[i, j], movers[i].courier_id, merchants[j].merchant_id, i, j)
        for i, j in zip(*np.nonzero(np.isfinite(score)), strict=True)
    ]
    flat.sort()
    used_c: set[int] = set()
    left = list(slots)
    out: list[Preposition] = []
    for _, cid, mid, i, j in flat:
        if i in used_c or left[j] <= 0 or movers[i].shift_end_s <= now_s + travel_s[i, j]:
            continue
        used_c.add(i)
        left[j] -= 1
        out.append(
            Preposition(courier_id=cid, merchant_id=mid, arrival_s=float(now_s + travel_s[i, j]))
        )
    return tuple(out)
