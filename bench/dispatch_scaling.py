"""Dispatch round scaling: synthetic lunch rounds of n open orders and n couriers.

Each round has merchants with a demand weight, several orders per merchant (so
bundles form), couriers already holding committed bundles (some waiting at the
merchant, so assignment updates can grow them) and couriers busy delivering; see
``synthetic``. The city grows with the round (side ``side_m(n)``, 12 km at 4,000 and
proportional to sqrt(n)), so density stays that of a 4,000-order lunch peak at every
size, and merchant popularity is skewed within districts of 1,000 merchants. For each
size, over ``--repeats`` runs:

- ``round_ms``: one full ``plan_round`` through the engine's own code (updates,
  bundling, candidates or cost matrix, matching, commit decisions, prepositioning);
  ``round_cpu_ms`` the CPU time of the same calls (``time.process_time``: on a shared
  machine the wall time also counts the time other processes held the cores);
- ``costs_ms``: the engine's steps 1-4 (``core.dispatch.round_costs``: updates, horizon,
  bundling, candidate arcs and their costs, or the dense cost matrix);
- ``solve_ms``: the bare solve the round itself runs on its own costs: scipy
  ``linear_sum_assignment`` on the matrix for a dense round (at most
  ``DispatchPolicy.dense_up_to_pairs`` couriers x bundles: the 250 and 500 rounds), else
  the sparse solve on the round's candidate arcs (``matching.sparse_matching``, or
  ``partition.partitioned_matching`` when the round has more than ``cell_bundles``
  bundles); ``solver`` names which;
- up to ``--dense-up-to`` (default 2,000), the same round forced dense
  (``dense_round_ms``) and how its plan compares with the sparse one: bundles served
  by each solve, committed assignments of each, and how many are identical.

Every figure is the **median** of the runs; ``*_min`` / ``*_max`` give the spread. The
functions take turns within each run, so a load change on a shared machine hits them alike.
Each size line also counts what the round decided (assignments, multi-order bundles,
reassignments, prepositions, candidate arcs), so a trivial round cannot pass for a fast
one. Last line: ``{"sizes", "round_ms", "solve_ms", "ratio_at_2000", "exponent", ...}``
where exponent is the log-log slope of the median round_ms over sizes.

    .venv/bin/python bench/dispatch_scaling.py            # 250..20,000, 3 runs each
    .venv/bin/python bench/dispatch_scaling.py --quick    # 250..2000, 3 runs
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lastmile.core.dispatch import (  # noqa: E402
    CommittedAssignment,
    CourierState,
    DispatchPlan,
    DispatchPolicy,
    Merchant,
    OpenOrder,
    RoundCosts,
    Snapshot,
    TravelModel,
    plan_round,
    round_costs,
)
from lastmile.core.dispatch.matching import optimal_matching, sparse_matching  # noqa: E402
from lastmile.core.dispatch.partition import cells_of, partitioned_matching  # noqa: E402

# A city grows in area with its orders: the side is 12 km at 4,000 orders and grows with
# sqrt(n) (3 km at 250, 26.8 km at 20,000), so orders, couriers and merchants per km2 stay
# those of a 4,000-order lunch peak in a 12 km square at every size.
SIDE_AT_4000_M = 12_000.0
# Popularity is skewed within each district of this many merchants (the 1,000 merchants of
# the 4,000-order city), not over the whole city: a 20,000-order city has five districts
# each with its own favourites, rather than one restaurant taking 4 % of a metropolis.
DISTRICT_MERCHANTS = 1_000
# Shares of the n couriers (a lunch peak: most are working, half idle now).
IDLE_SHARE = 0.50  # idle now, at a random place
# Carrying picked-up orders, free in 20-60 min at the last drop-off: half of them beyond the
# 40-minute horizon, so open orders outnumber available couriers and bundles form.
DELIVERING_SHARE = 0.25
# The rest (25 %) hold a committed bundle of 1-2 orders not yet picked up; half of them
# already wait at the merchant (assignment updates may grow their bundle).
POPULARITY_EXPONENT = 0.8  # merchant i gets orders in proportion to 1 / (i + 1) ** 0.8


def side_m(n: int) -> float:
    """Side of the square city of an n-order round (metres)."""
    return SIDE_AT_4000_M * float(np.sqrt(n / 4000))


def _order(rng: np.random.Generator, oid: str, merchant: int, where: np.ndarray,
           placed: float, ready: float, side: float) -> OpenOrder:
    drop = np.clip(where + rng.normal(0, 2000, size=2), 0, side)
    return OpenOrder(order_id=oid, merchant_id=f"r{merchant}", placed_s=placed, ready_s=ready,
                     pickup_x_m=float(where[0]), pickup_y_m=float(where[1]),
                     dropoff_x_m=float(drop[0]), dropoff_y_m=float(drop[1]))


def _committed(rng: np.random.Generator, j: int, m: int, where: np.ndarray, waiting: bool,
               side: float) -> tuple[CourierState, CommittedAssignment]:
    """Courier ``c{j}`` holding 1-2 orders of merchant ``m``, waiting there or on its way."""
    pickup = float(rng.uniform(0, 300))
    arrival = float(rng.uniform(-240, 0)) if waiting else float(rng.uniform(60, 600))
    pickup = max(pickup, arrival + 120.0)
    orders = tuple(
        _order(rng, f"k{j}_{i}", m, where, placed=pickup - 1500.0,
               ready=pickup - float(rng.uniform(0, 120)), side=side)
        for i in range(int(rng.integers(1, 3))))
    last = orders[-1]
    state = CourierState(
        courier_id=f"c{j}", x_m=last.dropoff_x_m, y_m=last.dropoff_y_m,
        free_s=pickup + float(rng.uniform(600, 1500)), shift_start_s=-3600.0,
        shift_end_s=float(rng.uniform(3600, 14400)), at_merchant_id=f"r{m}" if waiting else None)
    held = CommittedAssignment(courier_id=state.courier_id, merchant_id=f"r{m}", orders=orders,
                               arrival_s=arrival, pickup_s=pickup)
    return state, held


def synthetic(n: int, seed: int) -> Snapshot:
    """n open orders over n/4 merchants (popularity skewed within districts) in a square
    of side ``side_m(n)``, and n couriers: idle, delivering, or holding a committed
    bundle; now = 0 s."""
    rng = np.random.default_rng(seed)
    side = side_m(n)
    n_merchants = max(1, n // 4)
    spots = rng.uniform(0, side, size=(n_merchants, 2))
    weight = 1.0 / (np.arange(n_merchants) % DISTRICT_MERCHANTS + 1) ** POPULARITY_EXPONENT
    weight /= weight.sum()
    picks = rng.choice(n_merchants, size=n, p=weight)
    orders = []
    for i, m in enumerate(picks):
        placed = float(rng.uniform(-1200, 0))
        orders.append(_order(rng, f"o{i}", int(m), spots[m], placed,
                             placed + float(rng.uniform(300, 2400)), side))
    couriers: list[CourierState] = []
    committed: list[CommittedAssignment] = []
    n_idle, n_delivering = int(n * IDLE_SHARE), int(n * DELIVERING_SHARE)
    for j in range(n):
        x, y = rng.uniform(0, side, size=2)
        if j < n_idle + n_delivering:
            free = float(rng.uniform(-600, 0)) if j < n_idle else float(rng.uniform(1200, 3600))
            couriers.append(CourierState(courier_id=f"c{j}", x_m=float(x), y_m=float(y),
                                         free_s=free, shift_start_s=-3600.0,
                                         shift_end_s=float(rng.uniform(1800, 14400))))
            continue
        m = int(rng.choice(n_merchants, p=weight))
        state, held = _committed(rng, j, m, spots[m], waiting=j % 2 == 0, side=side)
        couriers.append(state)
        committed.append(held)
    demand = np.bincount(picks, minlength=n_merchants)
    merchants = tuple(Merchant(merchant_id=f"r{m}", x_m=float(spots[m][0]),
                               y_m=float(spots[m][1]), demand_weight=float(demand[m]))
                      for m in range(n_merchants))
    return Snapshot(now_s=0.0, orders=tuple(orders), couriers=tuple(couriers),
                    travel=TravelModel(metres_per_step=320.0, step_s=60.0),
                    pickup_service_s=240.0, dropoff_service_s=240.0,
                    committed=tuple(committed), merchants=merchants)


def interleaved_ms(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Wall milliseconds of ``repeats`` calls of each function, the functions taking turns
    within each repeat, so a load change on a shared machine hits them all alike; the CPU
    milliseconds (``time.process_time``) of each call under ``<name>_cpu``."""
    out: dict[str, list[float]] = {key: [] for name in fns for key in (name, f"{name}_cpu")}
    for _ in range(repeats):
        for name, fn in fns.items():
            t, c = time.perf_counter(), time.process_time()
            fn()
            out[f"{name}_cpu"].append((time.process_time() - c) * 1000)
            out[name].append((time.perf_counter() - t) * 1000)
    return out


def spread(samples: Sequence[float]) -> dict[str, float]:
    """Median, min and max of timing samples (ms, rounded to 0.01)."""
    return {"median": round(statistics.median(samples), 2), "min": round(min(samples), 2),
            "max": round(max(samples), 2)}


def decisions(snap: Snapshot, costs: RoundCosts, plan: DispatchPlan) -> dict[str, int]:
    """What one round decided: proof that the measured round is not a trivial one."""
    return {"orders": len(snap.orders), "couriers": len(snap.couriers),
            "committed": len(snap.committed), "merchants": len(snap.merchants),
            "bundles": len(costs.bundles),
            "multi_order_bundles": sum(1 for b in costs.bundles if len(b.order_ids) > 1),
            "arcs": (len(costs.arcs.courier_ix) if costs.arcs is not None
                     else int(costs.times.cost.size) if costs.times is not None else 0),
            "assignments": len(plan.assignments), "reassignments": len(plan.reassignments),
            "prepositions": len(plan.prepositions)}


def bare_solve(costs: RoundCosts, policy: DispatchPolicy) -> tuple[str, Callable[[], Any]]:
    """(name, call) of the solve ``plan_round`` runs on these costs, on the same arrays."""
    if costs.times is not None:
        cost = costs.times.cost
        return "dense_lsa", lambda: optimal_matching(cost)
    if costs.arcs is None:
        return "none", lambda: None
    ci, bi, arc_cost = costs.arcs.courier_ix, costs.arcs.bundle_ix, costs.arcs.times.cost
    n, m = len(costs.couriers), len(costs.bundles)
    if m > policy.cell_bundles:
        cell = cells_of(np.array([b.x_m for b in costs.bundles]),
                        np.array([b.y_m for b in costs.bundles]), policy.cell_bundles)
        return "sparse_cells", lambda: partitioned_matching(n, m, ci, bi, arc_cost, cell)
    return "sparse", lambda: sparse_matching(n, m, ci, bi, arc_cost)


def served(costs: RoundCosts, policy: DispatchPolicy) -> int:
    """Bundles the round's solve gives a courier."""
    _, solve = bare_solve(costs, policy)
    got = solve()
    return 0 if got is None else len(got)


def versus_dense(snap: Snapshot, policy: DispatchPolicy, sparse_plan: DispatchPlan,
                 sparse_costs: RoundCosts) -> tuple[dict[str, Any], Callable[[], object]]:
    """How the sparse round's plan compares with the same round solved dense."""
    dense = replace(policy, dense_up_to_pairs=10**15)
    dense_costs = round_costs(snap, dense)
    dense_plan = plan_round(snap, dense)
    key = {(a.courier_id, a.order_ids) for a in dense_plan.assignments}
    return {"dense_served": served(dense_costs, dense),
            "sparse_served": served(sparse_costs, policy),
            "dense_assignments": len(dense_plan.assignments),
            "same_assignments": sum(1 for a in sparse_plan.assignments
                                    if (a.courier_id, a.order_ids) in key),
            "dense_prepositions": len(dense_plan.prepositions)}, lambda: plan_round(snap, dense)


def measure(n: int, policy: DispatchPolicy, repeats: int, dense_up_to: int) -> dict[str, Any]:
    """One size: medians and spreads of the round, its costing and the bare solve."""
    snap = synthetic(n, seed=n)
    costs = round_costs(snap, policy)
    solver, solve = bare_solve(costs, policy)
    plan = plan_round(snap, policy)
    fns: dict[str, Callable[[], object]] = {
        "round": lambda: plan_round(snap, policy),
        "costs": lambda: round_costs(snap, policy),
        "solve": solve,
    }
    compare: dict[str, Any] = {}
    if n <= dense_up_to:
        compare, fns["dense"] = versus_dense(snap, policy, plan, costs)
    samples = {name: spread(ms) for name, ms in interleaved_ms(fns, repeats).items()}
    rnd, pre, sol = samples["round"], samples["costs"], samples["solve"]
    return {
        "size": n, "side_km": round(side_m(n) / 1000, 1), "solver": solver,
        "round_ms": rnd["median"], "round_cpu_ms": samples["round_cpu"]["median"],
        "solve_ms": sol["median"], "costs_cpu_ms": samples["costs_cpu"]["median"],
        "ratio": round(rnd["median"] / sol["median"], 3) if sol["median"] else None,
        "round_ms_min": rnd["min"], "round_ms_max": rnd["max"],
        "solve_ms_min": sol["min"], "solve_ms_max": sol["max"],
        "costs_ms": pre["median"],
        "dense_round_ms": samples["dense"]["median"] if "dense" in samples else None,
        "repeats": repeats, "statistic": "median",
        **decisions(snap, costs, plan), **compare,
    }


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The last line: per-size medians as lists, the ratio at 2,000 and the log-log slope."""
    sizes = [int(r["size"]) for r in rows]
    round_ms = [float(r["round_ms"]) for r in rows]
    slope = _slope(sizes, round_ms)
    at = next((r for r in rows if r["size"] == 2000), None)
    ratio = at["round_ms"] / at["solve_ms"] if at and at["solve_ms"] else None
    return {
        "sizes": sizes, "round_ms": round_ms, "solve_ms": [r["solve_ms"] for r in rows],
        "round_cpu_ms": [r["round_cpu_ms"] for r in rows],
        "exponent_cpu": _slope(sizes, [float(r["round_cpu_ms"]) for r in rows]),
        "ratio_at_2000": round(ratio, 3) if ratio else None,
        "exponent": slope,
        "solver": [r["solver"] for r in rows],
        "statistic": "median", "repeats": rows[0]["repeats"] if rows else 0,
        "round_ms_min": [r["round_ms_min"] for r in rows],
        "round_ms_max": [r["round_ms_max"] for r in rows],
        "costs_ms": [r["costs_ms"] for r in rows],
        "dense_round_ms": [r["dense_round_ms"] for r in rows],
        **{k: [r[k] for r in rows] for k in ("bundles", "arcs", "multi_order_bundles",
                                              "assignments", "reassignments", "prepositions",
                                              "committed")},
    }


def _slope(sizes: Sequence[int], ms: Sequence[float]) -> float | None:
    """Log-log slope of times over sizes (3 decimals), None for fewer than 2 sizes."""
    if len(sizes) < 2 or min(ms) <= 0:
        return None
    return round(float(np.polyfit(np.log(sizes), np.log(ms), 1)[0]), 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="250,500,1000,2000,4000,8000,12000,20000")
    ap.add_argument("--repeats", type=int, default=3, help="runs per figure (the median is kept)")
    ap.add_argument("--dense-up-to", type=int, default=2000,
                    help="also run each round forced dense, and compare plans, up to this "
                    "size (a dense 4,000 round takes seconds and GBs)")
    ap.add_argument("--quick", action="store_true", help="sizes 250..2000 and 3 runs")
    args = ap.parse_args()
    sizes = [250, 500, 1000, 2000] if args.quick else [int(s) for s in args.sizes.split(",")]
    repeats = 3 if args.quick else max(1, args.repeats)
    rows = []
    for n in sizes:
        rows.append(measure(n, DispatchPolicy(), repeats, args.dense_up_to))
        print(json.dumps(rows[-1]), flush=True)
    print(json.dumps(summarise(rows)))


if __name__ == "__main__":
    main()
