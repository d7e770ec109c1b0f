"""Dispatch round scaling: synthetic rounds of n open orders and n couriers.

For each size: ``round_ms`` = one full ``plan_round`` (bundling, costs, matching,
commit decisions), ``solve_ms`` = the bare scipy ``linear_sum_assignment`` on the
same cost matrix, in its faster orientation (the floor a round is held to; the
engine solves bundles-as-rows), and ``solve_courier_rows_ms`` = the same solve with
couriers as rows, for reference (scipy is far slower that way on these matrices).
Best of ``--repeats``. Last line:
``{"sizes", "round_ms", "solve_ms", "ratio_at_2000", "exponent", ...}`` where
exponent is the log-log slope of round_ms over sizes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lastmile.core.dispatch import (  # noqa: E402
    CourierState,
    DispatchPolicy,
    OpenOrder,
    Snapshot,
    TravelModel,
    plan_round,
)
from lastmile.core.dispatch.bundling import bundle_size_cap, generate_bundles  # noqa: E402
from lastmile.core.dispatch.costing import pair_costs  # noqa: E402


def synthetic(n: int, seed: int) -> Snapshot:
    """n orders over n/4 merchants in a 12 km square, n couriers; now = 0 s."""
    rng = np.random.default_rng(seed)
    merchants = rng.uniform(0, 12_000, size=(max(1, n // 4), 2))
    orders = []
    for i in range(n):
        m = int(rng.integers(len(merchants)))
        placed = float(rng.uniform(-1200, 0))
        drop = merchants[m] + rng.normal(0, 2000, size=2)
        orders.append(
            OpenOrder(
                order_id=f"o{i}",
                merchant_id=f"r{m}",
                placed_s=placed,
                ready_s=placed + float(rng.uniform(300, 2400)),
                pickup_x_m=float(merchants[m][0]),
                pickup_y_m=float(merchants[m][1]),
                dropoff_x_m=float(drop[0]),
                dropoff_y_m=float(drop[1]),
            )
        )
    couriers = tuple(
        CourierState(
            courier_id=f"c{j}",
            x_m=float(x),
            y_m=float(y),
            free_s=float(rng.uniform(-600, 600)),
            shift_start_s=-3600.0,
            shift_end_s=float(rng.uniform(1800, 14400)),
        )
        for j, (x, y) in enumerate(rng.uniform(0, 12_000, size=(n, 2)))
    )
    return Snapshot(
        now_s=0.0,
        orders=tuple(orders),
        couriers=couriers,
        travel=TravelModel(metres_per_step=320.0, step_s=60.0),
        pickup_service_s=240.0,
        dropoff_service_s=240.0,
    )


def cost_matrix(snap: Snapshot, policy: DispatchPolicy) -> np.ndarray:
    cap = bundle_size_cap(
        n_orders=len(snap.orders),
        n_couriers=len(snap.couriers),
        max_bundle_size=policy.max_bundle_size,
    )
    bundles = generate_bundles(
        snap.orders,
        travel=snap.travel,
        pickup_service_s=snap.pickup_service_s,
        dropoff_service_s=snap.dropoff_service_s,
        size_cap=cap,
        max_ready_gap_s=policy.max_ready_gap_s,
        max_extra_delay_s=policy.max_extra_delay_s,
    )
    return pair_costs(
        list(snap.couriers),
        bundles,
        now_s=snap.now_s,
        travel=snap.travel,
        pickup_service_s=snap.pickup_service_s,
        idle_weight=policy.idle_weight,
        late_weight=policy.late_weight,
    ).cost


def best_ms(fn: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, (time.perf_counter() - t) * 1000)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="250,500,1000,2000,4000")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    policy = DispatchPolicy()
    round_ms, solve_ms, courier_rows_ms = [], [], []
    for n in sizes:
        snap = synthetic(n, seed=n)
        cost = cost_matrix(snap, policy)
        r = best_ms(lambda snap=snap: plan_round(snap, policy), args.repeats)
        by_courier = best_ms(lambda cost=cost: linear_sum_assignment(cost), args.repeats)
        by_bundle = best_ms(lambda cost=cost: linear_sum_assignment(cost.T), args.repeats)
        s = min(by_courier, by_bundle)
        round_ms.append(round(r, 2))
        solve_ms.append(round(s, 2))
        courier_rows_ms.append(round(by_courier, 2))
        print(
            json.dumps(
                {
                    "size": n,
                    "matrix": list(cost.shape),
                    "round_ms": round(r, 2),
                    "solve_ms": round(s, 2),
                    "solve_courier_rows_ms": round(by_courier, 2),
                    "ratio": round(r / s, 3),
                }
            ),
            flush=True,
        )
    slope = float(np.polyfit(np.log(sizes), np.log(round_ms), 1)[0]) if len(sizes) > 1 else None
    ratio = (round_ms[sizes.index(2000)] / solve_ms[sizes.index(2000)]) if 2000 in sizes else None
    print(
        json.dumps(
            {
                "sizes": sizes,
                "round_ms": round_ms,
                "solve_ms": solve_ms,
                "ratio_at_2000": round(ratio, 3) if ratio else None,
                "exponent": round(slope, 3) if slope is not None else None,
                "solve_courier_rows_ms": courier_rows_ms,
            }
        )
    )


if __name__ == "__main__":
    main()
