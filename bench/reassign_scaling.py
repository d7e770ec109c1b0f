"""Reassignment scaling: ``core.dispatch.reassign.plan_moves`` on synthetic city snapshots.

A city of ``n`` couriers at constant density (a square of side ``150 m x sqrt(n)``): half
hold a committed bundle of 1-3 orders at one of ``n / 5`` merchants, travelling to it
(1-30 minutes away), the rest idle or finishing a drop-off within 10 minutes. For each size,
``plan_moves`` with reassignment on (gain > 5 min) runs ``--repeats`` times; each size line
gives the median (and spread) in ms and how many moves it proposed, so an empty answer cannot
pass for a fast one; ``cpu_ms`` is the process's CPU time (the median too), which a shared,
loaded machine inflates far less than the wall clock. Last line: ``{"sizes",
"plan_moves_ms", "cpu_ms", "moves", "exponent"}`` where exponent is the log-log slope of the
median wall time over sizes.

    .venv/bin/python bench/reassign_scaling.py            # 250..20000, 3 runs each
    .venv/bin/python bench/reassign_scaling.py --quick    # 250..2000, 3 runs
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lastmile.core.dispatch import (  # noqa: E402
    CommittedAssignment,
    CourierState,
    DispatchPolicy,
    OpenOrder,
    Snapshot,
    TravelModel,
)
from lastmile.core.dispatch.reassign import plan_moves  # noqa: E402

NOW = 12 * 3600.0
TRAVEL = TravelModel(metres_per_step=4.5 / 1.3, step_s=1.0)  # the live city's bicycle
POLICY = DispatchPolicy(allow_reassignment=True, reassign_min_gain_s=300.0)


def snapshot(n: int, rng: random.Random) -> Snapshot:
    side = 150.0 * math.sqrt(n)
    merchants = [(rng.uniform(0, side), rng.uniform(0, side)) for _ in range(max(1, n // 5))]
    couriers, committed = [], []
    for j in range(n):
        x, y = rng.uniform(0, side), rng.uniform(0, side)
        if j % 2 == 0:
            mx, my = rng.choice(merchants)
            arrival = NOW + rng.uniform(60, 1800)
            ready = NOW + rng.uniform(-300, 900)
            orders = tuple(OpenOrder(order_id=f"o{j}_{k}", merchant_id=f"m{mx:.0f}",
                                     placed_s=NOW - 900, ready_s=max(NOW - 900, ready),
                                     pickup_x_m=mx, pickup_y_m=my, dropoff_x_m=mx + 800,
                                     dropoff_y_m=my) for k in range(rng.randint(1, 3)))
            committed.append(CommittedAssignment(
                courier_id=f"c{j}", merchant_id=f"m{mx:.0f}", orders=orders, arrival_s=arrival,
                pickup_s=max(arrival + 60, ready)))
            free = arrival + 1200
        else:
            free = NOW + (0 if rng.random() < 0.6 else rng.uniform(0, 600))
        couriers.append(CourierState(courier_id=f"c{j}", x_m=x, y_m=y, free_s=free,
                                     shift_start_s=NOW - 3600, shift_end_s=NOW + 4 * 3600))
    return Snapshot(now_s=NOW, orders=(), couriers=tuple(couriers), travel=TRAVEL,
                    pickup_service_s=120.0, dropoff_service_s=120.0, committed=tuple(committed))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    sizes = [250, 500, 1000, 2000] if args.quick else [250, 1000, 4000, 10000, 20000]
    medians: list[float] = []
    cpus: list[float] = []
    counts: list[int] = []
    for n in sizes:
        snap = snapshot(n, random.Random(n))
        times, cpu, moves = [], [], 0
        for _ in range(args.repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            moves = len(plan_moves(snap, POLICY))
            times.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
        med = statistics.median(times)
        medians.append(round(med, 1))
        cpus.append(round(statistics.median(cpu), 1))
        counts.append(moves)
        print(json.dumps({"couriers": n, "held_bundles": len(snap.committed),
                          "plan_moves_ms": round(med, 1), "min_ms": round(min(times), 1),
                          "max_ms": round(max(times), 1), "cpu_ms": cpus[-1],
                          "moves": moves}), flush=True)
    slope = float(np.polyfit(np.log(sizes), np.log(medians), 1)[0])
    print(json.dumps({"sizes": sizes, "plan_moves_ms": medians, "cpu_ms": cpus, "moves": counts,
                      "exponent": round(slope, 2)}))


if __name__ == "__main__":
    main()
