"""Stacking and reassignment measured in the live city: the simulator's seeded days with
each live-city policy off / stacking / reassignment / both.

Each run is ``lastmile simulate``'s ``run_scenario`` (the real use cases, SQLite, a manual
clock): consumers, kitchens, couriers that follow a stacked offer's stops and re-plan when
an order is moved away, and the dispatcher with ``DispatchPolicy(allow_stacking=...,
allow_reassignment=...)`` and every other knob at its default. ``lunch`` runs its two
hours of demand and then ``--clear-h`` (1.5) hours with no new orders, so every order is
delivered or cancelled; ``black-friday-lunch`` already runs until its backlog clears. A
scenario and seed give the same city and kitchens in all four runs (their own random
streams); only the dispatch policy differs, and what it changes downstream (quoted ETAs
and so conversion, who rides where, who cancels).
``--propensities`` uses the couriers' hidden individual propensities instead of the
default fixed ``accept_p`` 0.9; ``--on-the-go`` lets couriers riding to a door answer offers
(``WorldConfig.offers_on_the_go``; by default a courier sees an offer only once idle, so an
offer to a courier finishing a drop-off, as many moves are, often expires unseen).

Per run (``sim.kpis``): click-to-door mean and p90 (delivered orders), courier minutes
holding orders per delivered order, the share delivered after the promised window's end,
orders moved (accepted moves) and move offers, stacks accepted and the share of delivered
orders delivered from a stack, time to assignment (placed -> first accepted offer, mean
and p90), the offers' acceptance rate, orders still open when the run ends and the
run's CPU seconds.

Prints one JSON line per (scenario, seed, policy), then per scenario one line of the
policies' means over seeds, and a last line with every scenario's means.
Run: ``PYTHONPATH=src nice -n 5 python bench/live_policies.py [--seeds 1 2 3]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from typing import Any

from lastmile.core.dispatch import DispatchPolicy
from lastmile.sim.model import WorldConfig
from lastmile.sim.scenarios import Scenario, get_scenario
from lastmile.sim.simulate_command import run_scenario

POLICIES: dict[str, DispatchPolicy] = {
    "off": DispatchPolicy(),
    "stacking": DispatchPolicy(allow_stacking=True),
    "reassignment": DispatchPolicy(allow_reassignment=True),
    "both": DispatchPolicy(allow_stacking=True, allow_reassignment=True),
}
METRICS = ("orders_placed", "orders_delivered", "orders_cancelled", "orders_open_at_end",
           "c2d_mean_min", "c2d_p90_min", "courier_min_per_order", "late_share",
           "orders_moved", "moves_offered", "stacks_offered", "stacks_accepted",
           "stacked_share", "assign_mean_min", "assign_p90_min", "acceptance_rate", "cpu_s")


def cleared(name: str, clear_h: float) -> Scenario:
    """The named scenario; one whose demand runs to its end (lunch) gets ``clear_h`` more
    hours without new orders, so its backlog is delivered and measured too."""
    sc = get_scenario(name)
    if sc.demand_until_h is not None or clear_h <= 0:
        return sc
    return replace(sc, demand_until_h=sc.start_h + sc.hours, hours=sc.hours + clear_h)


def measure(scenario: Scenario, seed: int, policy: str, *, hours: float | None,
            propensities: bool, on_the_go: bool) -> dict[str, Any]:
    cpu = time.process_time()
    k = run_scenario(scenario, seed=seed, hours=hours, policy=POLICIES[policy],
                     config=WorldConfig(propensities=propensities,
                                        offers_on_the_go=on_the_go)).kpis
    return {
        "scenario": scenario.name, "seed": seed, "policy": policy,
        "orders_placed": k["orders_placed"], "orders_delivered": k["orders_delivered"],
        "orders_cancelled": k["orders_cancelled"], "orders_open_at_end": k["orders_open_at_end"],
        "c2d_mean_min": k["click_to_door_min"]["mean"],
        "c2d_p90_min": k["click_to_door_min"]["p90"],
        "courier_min_per_order": k["courier_busy_min_per_order"],
        "late_share": k["late_share"],
        "orders_moved": k["orders_moved"], "moves_offered": k["moves_offered"],
        "stacks_offered": k["stacks_offered"], "stacks_accepted": k["stacks_accepted"],
        "stacked_share": k["stacked_share"],
        "assign_mean_min": k["time_to_assignment_min"]["mean"],
        "assign_p90_min": k["time_to_assignment_min"]["p90"],
        "acceptance_rate": k["acceptance_rate"],
        "cpu_s": round(time.process_time() - cpu, 1),
    }


def means(rows: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Per policy, each metric's mean over the rows (seeds) that have it."""
    out: dict[str, dict[str, float | None]] = {}
    for policy in POLICIES:
        mine = [r for r in rows if r["policy"] == policy]
        if not mine:
            continue
        out[policy] = {}
        for m in METRICS:
            values = [r[m] for r in mine if r[m] is not None]
            out[policy][m] = round(statistics.fmean(values), 3) if values else None
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenarios", nargs="+", default=["lunch", "black-friday-lunch"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    ap.add_argument("--policies", nargs="+", default=list(POLICIES), choices=list(POLICIES))
    ap.add_argument("--hours", type=float, default=None, help="default: each scenario's")
    ap.add_argument("--clear-h", type=float, default=1.5,
                    help="hours without new orders after a scenario whose demand runs to its "
                         "end (lunch), so its backlog clears")
    ap.add_argument("--propensities", action="store_true",
                    help="couriers with hidden individual propensities")
    ap.add_argument("--on-the-go", action="store_true",
                    help="couriers riding to a door answer offers (WorldConfig.offers_on_the_go)")
    args = ap.parse_args()
    summary: dict[str, Any] = {}
    for scenario in args.scenarios:
        rows = []
        for seed in args.seeds:
            for policy in args.policies:
                row = measure(cleared(scenario, args.clear_h), seed, policy, hours=args.hours,
                              propensities=args.propensities, on_the_go=args.on_the_go)
                rows.append(row)
                print(json.dumps(row), flush=True)
        summary[scenario] = means(rows)
        print(json.dumps({"scenario": scenario, "seeds": args.seeds,
                          "means": summary[scenario]}), flush=True)
    print(json.dumps({"scenarios": args.scenarios, "seeds": args.seeds,
                      "propensities": args.propensities, "on_the_go": args.on_the_go,
                      "means": summary}))


if __name__ == "__main__":
    main()
