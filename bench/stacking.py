"""Stacked orders on vs off: courier time and on-time share on synthetic live-city days.

A live-city day, synthetic and seeded: merchants in clusters of 2-4 a few hundred metres
apart (a high street, a food court), consumers within a few km of their merchant; orders
arrive over a lunch peak, food is ready 6-16 min after the order, and every order is
promised by its quoted window's end (placed + 40-50 min). Couriers ride at the live
dispatcher's speed (4.5 m/s / road factor 1.3) with 2-min pickup and drop-off services.

Every 60 s a round runs ``plan_round`` on the open orders and the couriers (busy ones at
the end of their route); each committed assignment is executed exactly as planned (a
stacked one along its stops). The same day runs with ``allow_stacking`` off and on.

Measured per run:
- ``courier_min_per_order``: courier minutes from being dispatched to leaving the last door,
  per delivered order (empty riding to the merchant and waiting there included);
- ``late_share``: delivered after the promised time (orders never delivered count as late);
- ``c2d_min``: mean click-to-door; ``stacked_share``: orders delivered in a stack.

Prints one JSON line per (seed, couriers, stacking) and a summary last line.
Run: ``PYTHONPATH=src nice -n 10 python bench/stacking.py [--seeds 3] [--orders 400]``.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
from dataclasses import dataclass, replace

from lastmile.core.dispatch import (
    CourierState,
    DispatchPolicy,
    OpenOrder,
    Snapshot,
    TravelModel,
    plan_round,
)

TRAVEL = TravelModel(metres_per_step=4.5 / 1.3, step_s=1.0)
PICKUP_S = 120.0
DROPOFF_S = 120.0
ROUND_S = 60.0
DAY_S = 150 * 60.0


@dataclass
class _Courier:
    cid: str
    x: float
    y: float
    free_s: float
    busy_s: float = 0.0


def make_day(seed: int, n_orders: int) -> list[OpenOrder]:
    """Orders of one synthetic lunch (see the module docstring)."""
    rng = random.Random(seed)
    clusters = []
    for _ in range(max(4, n_orders // 40)):
        cx, cy = rng.uniform(-6000, 6000), rng.uniform(-6000, 6000)
        clusters.append([(f"m{len(clusters)}_{k}", cx + rng.uniform(-350, 350),
                          cy + rng.uniform(-350, 350)) for k in range(rng.randint(2, 4))])
    orders = []
    for i in range(n_orders):
        # Lunch peak: a triangle around the middle of the day's first two hours.
        placed = rng.triangular(0, DAY_S - 30 * 60, (DAY_S - 30 * 60) / 2)
        mid, mx, my = rng.choice(rng.choice(clusters))
        r, a = 3000 * math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi)
        ready = placed + rng.uniform(6 * 60, 16 * 60)
        orders.append(OpenOrder(
            order_id=f"o{i:05d}", merchant_id=mid, placed_s=placed, ready_s=ready,
            pickup_x_m=mx, pickup_y_m=my, dropoff_x_m=mx + r * math.cos(a),
            dropoff_y_m=my + r * math.sin(a), promised_s=placed + rng.uniform(40 * 60, 50 * 60)))
    return sorted(orders, key=lambda o: (o.placed_s, o.order_id))


def run_day(orders: list[OpenOrder], n_couriers: int, policy: DispatchPolicy,
            seed: int) -> dict[str, float]:
    rng = random.Random(seed + 1000)
    couriers = {f"c{k:03d}": _Courier(f"c{k:03d}", rng.uniform(-6000, 6000),
                                      rng.uniform(-6000, 6000), 0.0)
                for k in range(n_couriers)}
    by_id = {o.order_id: o for o in orders}
    open_ids: list[str] = []
    delivered: dict[str, float] = {}
    stacked: set[str] = set()
    nxt, t = 0, 0.0
    while t < DAY_S + 120 * 60 and (nxt < len(orders) or open_ids):
        while nxt < len(orders) and orders[nxt].placed_s <= t:
            open_ids.append(orders[nxt].order_id)
            nxt += 1
        if open_ids:
            snap = Snapshot(
                now_s=t, orders=tuple(by_id[i] for i in open_ids),
                couriers=tuple(CourierState(courier_id=c.cid, x_m=c.x, y_m=c.y, free_s=c.free_s,
                                            shift_start_s=0.0, shift_end_s=1e9)
                               for c in couriers.values()),
                travel=TRAVEL, pickup_service_s=PICKUP_S, dropoff_service_s=DROPOFF_S)
            plan = plan_round(snap, policy)
            for a in plan.assignments:
                c = couriers[a.courier_id]
                end, x, y = _execute(a, by_id, delivered, stacked)
                c.busy_s += end - t
                c.free_s, c.x, c.y = end, x, y
            taken = {i for a in plan.assignments for i in a.order_ids}
            open_ids = [i for i in open_ids if i not in taken]
        t += ROUND_S
    late = sum(1 for o in orders if o.order_id not in delivered
               or delivered[o.order_id] > (o.promised_s or math.inf))
    return {
        "courier_min_per_order": sum(c.busy_s for c in couriers.values()) / 60
        / max(1, len(delivered)),
        "late_share": late / len(orders),
        "c2d_min": statistics.fmean(delivered[o.order_id] - o.placed_s
                                    for o in orders if o.order_id in delivered) / 60,
        "stacked_share": len(stacked) / len(orders),
        "undelivered": len(orders) - len(delivered),
    }


def _execute(a, by_id, delivered, stacked) -> tuple[float, float, float]:
    """Deliver an assignment as planned; (route end, x, y). Checks the plan's own times."""
    if a.stops:
        for s in a.stops:
            at = a.pickup_s + s.offset_s
            for oid in s.order_ids:
                if s.kind == "pickup":
                    assert at >= by_id[oid].ready_s - 1e-6, "stack picks up before ready"
                else:
                    delivered[oid] = at
                    stacked.add(oid)
        last = a.stops[-1]
        return a.pickup_s + last.offset_s + DROPOFF_S / 2, last.x_m, last.y_m
    first = by_id[a.order_ids[0]]
    assert a.pickup_s >= max(by_id[i].ready_s for i in a.order_ids) - 1e-6
    t = a.pickup_s + PICKUP_S / 2
    x, y = first.pickup_x_m, first.pickup_y_m
    for oid in a.order_ids:
        o = by_id[oid]
        t += TRAVEL.seconds_between(x, y, o.dropoff_x_m, o.dropoff_y_m) + DROPOFF_S / 2
        delivered[oid] = t
        t += DROPOFF_S / 2
        x, y = o.dropoff_x_m, o.dropoff_y_m
    return t, x, y


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--orders", type=int, default=400)
    ap.add_argument("--couriers", type=int, nargs="+", default=[50, 70])
    args = ap.parse_args()
    base = DispatchPolicy(allow_prepositioning=False)
    runs: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    for seed in range(args.seeds):
        day = make_day(seed, args.orders)
        for n in args.couriers:
            for on in (False, True):
                out = run_day(day, n, replace(base, allow_stacking=on), seed)
                runs[on].append(out)
                print(json.dumps({"seed": seed, "orders": args.orders, "couriers": n,
                                  "stacking": on, **{k: round(v, 4) for k, v in out.items()}}),
                      flush=True)

    def mean(on: bool, key: str) -> float:
        return round(statistics.fmean(r[key] for r in runs[on]), 4)

    print(json.dumps({
        "courier_min_per_order_off": mean(False, "courier_min_per_order"),
        "courier_min_per_order_on": mean(True, "courier_min_per_order"),
        "late_share_off": mean(False, "late_share"),
        "late_share_on": mean(True, "late_share"),
        "c2d_min_off": mean(False, "c2d_min"),
        "c2d_min_on": mean(True, "c2d_min"),
        "stacked_share": mean(True, "stacked_share"),
        "runs": len(runs[True]),
    }))


if __name__ == "__main__":
    main()
