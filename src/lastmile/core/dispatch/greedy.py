"""Nearest-idle-courier greedy dispatch: the floor baseline.

Rule: orders are taken by placement time (ties by id); each goes alone to the
idle courier (free now, on shift) that reaches its merchant first and can pick it
up before its shift ends; ties by courier id. Every assignment is committed at
once; nothing is bundled, postponed or moved.
"""

from __future__ import annotations

import numpy as np

from lastmile.core.dispatch.model import Assignment, DispatchPlan, Snapshot


def greedy_plan(snapshot: Snapshot) -> DispatchPlan:
    now = snapshot.now_s
    idle = sorted(
        (c for c in snapshot.couriers if c.free_s <= now and c.shift_start_s <= now),
        key=lambda c: c.courier_id,
    )
    orders = sorted(snapshot.orders, key=lambda o: (o.placed_s, o.order_id))
    if not idle or not orders:
        return DispatchPlan()
    pos = np.array([(c.x_m, c.y_m) for c in idle], dtype=np.float64)
    end = np.array([c.shift_end_s for c in idle], dtype=np.float64)
    taken = np.zeros(len(idle), dtype=bool)
    half_p = snapshot.pickup_service_s / 2
    out: list[Assignment] = []
    for o in orders:
        dist = np.hypot(pos[:, 0] - o.pickup_x_m, pos[:, 1] - o.pickup_y_m)
        arrival = now + snapshot.travel.seconds(dist)
        pickup = np.maximum(o.ready_s, arrival + half_p)
        ok = (~taken) & (pickup <= end)
        if not ok.any():
            continue
        best = int(np.argmin(np.where(ok, arrival, np.inf)))
        taken[best] = True
        out.append(
            Assignment(
                courier_id=idle[best].courier_id,
                merchant_id=o.merchant_id,
                order_ids=(o.order_id,),
                arrival_s=float(arrival[best]),
                pickup_s=float(pickup[best]),
            )
        )
    return DispatchPlan(assignments=tuple(out))
