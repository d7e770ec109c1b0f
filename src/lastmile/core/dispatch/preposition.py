"""Prepositioning: send idle couriers to wait at merchants with expected demand.

Rule: an idle courier that got no bundle this round and is not already at a
merchant goes to the merchant with the highest ``demand_weight / (1 + travel
minutes)`` within ``preposition_radius_s``, provided no other courier waits at
or heads to that merchant. Merchants with zero weight attract nobody. Pairs are
taken best score first (ties by courier id, then merchant id), one courier per
merchant.
"""

from __future__ import annotations

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
    covered = {c.at_merchant_id for c in snapshot.couriers if c.at_merchant_id is not None}
    covered |= {a.merchant_id for a in snapshot.committed}
    merchants = [m for m in merchants if m.merchant_id not in covered]
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
    return _take_best(snapshot.now_s, movers, merchants, score, travel_s)


def _take_best(
    now_s: float,
    movers: Sequence[CourierState],
    merchants: Sequence[Merchant],
    score: np.ndarray,
    travel_s: np.ndarray,
) -> tuple[Preposition, ...]:
    flat = [
        (-score[i, j], movers[i].courier_id, merchants[j].merchant_id, i, j)
        for i, j in zip(*np.nonzero(np.isfinite(score)), strict=True)
    ]
    flat.sort()
    used_c: set[int] = set()
    used_m: set[int] = set()
    out: list[Preposition] = []
    for _, cid, mid, i, j in flat:
        if i in used_c or j in used_m or movers[i].shift_end_s <= now_s + travel_s[i, j]:
            continue
        used_c.add(i)
        used_m.add(j)
        out.append(
            Preposition(courier_id=cid, merchant_id=mid, arrival_s=float(now_s + travel_s[i, j]))
        )
    return tuple(out)
