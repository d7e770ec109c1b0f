"""MDRP metrics of a run (the README's list plus our floor and cost figures).

Distributions report mean, std, min, p10, median, p90, max. The per-order
click-to-door *floor* is what a courier waiting at the restaurant could do:
(ready - placement) + direct restaurant-to-customer travel + half the pickup
service + half the drop-off service; ``c2d_excess = c2d_mean - floor_mean``,
both over the delivered orders.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lastmile.sim.mdrp.pay import courier_statements
from lastmile.sim.mdrp.simulation import SimResult


def describe(values: Sequence[float]) -> dict[str, float | int | None]:
    """n, mean, std, min, p10, median, p90, max; None when there are no values."""
    if len(values) == 0:
        return {
            "n": 0,
            "mean": None,
            "std": None,
            "min": None,
            "p10": None,
            "median": None,
            "p90": None,
            "max": None,
        }
    a = np.asarray(values, dtype=np.float64)
    return {
        "n": int(a.size),
        "mean": float(a.mean()),
        "std": float(a.std()),
        "min": float(a.min()),
        "p10": float(np.percentile(a, 10)),
        "median": float(np.median(a)),
        "p90": float(np.percentile(a, 90)),
        "max": float(a.max()),
    }


def compute_metrics(result: SimResult) -> dict[str, object]:
    inst = result.instance
    p = inst.params
    half_p, half_d = p.pickup_service_min / 2, p.dropoff_service_min / 2
    c2d, r2d, r2p, over, floor = [], [], [], [], []
    for o in inst.orders:
        d = result.deliveries.get(o.order_id)
        if d is None:
            continue
        r = inst.restaurants[o.restaurant_id]
        c2d.append(d.dropoff_time - o.placement_time)
        r2d.append(d.dropoff_time - o.ready_time)
        r2p.append(d.pickup_time - o.ready_time)
        over.append(max(0, d.dropoff_time - o.placement_time - p.target_c2d_min))
        floor.append(
            o.ready_time - o.placement_time + inst.travel_min(r.x, r.y, o.x, o.y) + half_p + half_d
        )
    delivered = len(c2d)
    couriers = _courier_metrics(result)
    c2d_mean = float(np.mean(c2d)) if c2d else None
    floor_mean = float(np.mean(floor)) if floor else None
    return {
        "instance": inst.name,
        "orders": len(inst.orders),
        "orders_delivered": delivered,
        "undelivered": len(inst.orders) - delivered,
        "undelivered_share": (len(inst.orders) - delivered) / len(inst.orders)
        if inst.orders
        else 0.0,
        "click_to_door": describe(c2d),
        "click_to_door_overage": describe(over),
        "ready_to_door": describe(r2d),
        "ready_to_pickup": describe(r2p),
        "floor": describe(floor),
        "c2d_mean": c2d_mean,
        "floor_mean": floor_mean,
        "c2d_excess": (c2d_mean - floor_mean)
        if c2d_mean is not None and floor_mean is not None
        else None,
        "r2p_mean": float(np.mean(r2p)) if r2p else None,
        "orders_per_bundle": describe([len(a.order_ids) for a in result.assignments]),
        **couriers,
    }


def _courier_metrics(result: SimResult) -> dict[str, object]:
    inst = result.instance
    p = inst.params
    delivered_by: dict[str, int] = {}
    visits_by: dict[str, int] = {}
    for a in result.assignments:
        delivered_by[a.courier_id] = delivered_by.get(a.courier_id, 0) + len(a.order_ids)
        visits_by[a.courier_id] = visits_by.get(a.courier_id, 0) + 1
    node_xy = {rid: (r.x, r.y) for rid, r in inst.restaurants.items()}
    node_xy.update({o.order_id: (o.x, o.y) for o in inst.orders})
    delivered = {
        cid: [(oid, d.dropoff_time) for oid, d in result.deliveries.items() if d.courier_id == cid]
        for cid in delivered_by
    }
    statements = {s.courier_id: s for s in courier_statements(inst, delivered)}
    util, per_hour, pays, guaranteed = [], [], [], 0
    busy_total = duty_total = 0.0
    for c in inst.couriers:
        node_xy["0"] = (c.x, c.y)
        drive = sum(
            inst.travel_min(*node_xy[m.origin], *node_xy[m.destination])
            for m in result.moves.get(c.courier_id, ())
        )
        n = delivered_by.get(c.courier_id, 0)
        busy = (
            drive
            + visits_by.get(c.courier_id, 0) * p.pickup_service_min
            + n * p.dropoff_service_min
        )
        duty = max(c.off_time - c.on_time, 0)
        hours = duty / 60.0
        busy_total, duty_total = busy_total + busy, duty_total + duty
        util.append(busy / duty if duty else 0.0)
        per_hour.append(n / hours if hours else 0.0)
        paid = statements[c.courier_id]
        pays.append(paid.total.amount_minor / 100)
        guaranteed += paid.guaranteed
    n_delivered = sum(delivered_by.values())
    total_pay = sum(s.total.amount_minor for s in statements.values()) / 100
    return {
        "courier_utilisation": describe(util),
        "utilisation": busy_total / duty_total if duty_total else 0.0,
        "orders_per_courier_hour": describe(per_hour),
        "orders_per_courier_hour_total": n_delivered / (duty_total / 60.0)
        if duty_total
        else 0.0,
        "courier_pay": describe(pays),
        "total_courier_compensation": total_pay,
        "cost_per_order": total_pay / n_delivered if n_delivered else None,
        "share_paid_guarantee": guaranteed / len(inst.couriers) if inst.couriers else 0.0,
    }
