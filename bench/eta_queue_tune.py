"""Tune ``heuristic-3``'s point constants (``core.eta.queue``) offline, on recorded queues.

Runs seeded scenarios with ``heuristic-3`` serving the quotes (its current constants), and
records, for every order placed, the queue the quote saw (``QueueState`` and the new
``QueueOrder``, exactly what ``app.eta_queue`` passed to the model) and the realised
click-to-door. Then replays ``core.eta.queue.plan`` on those records for a grid of
constants and prints each setting's MAE over the delivered orders, one JSON line each,
the best last. Offline, the world does not react to the new constants (consumers convert on
the quote); ``bench/eta_calibration.py --model heuristic-3 --queue NAME=VALUE`` measures a
chosen setting at its own equilibrium.

    nice -n 5 python bench/eta_queue_tune.py --seeds 1-12 [--scenario lunch ...]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import lastmile.app.eta_queue as app_queue  # noqa: E402
from lastmile.core.eta import queue as core_queue  # noqa: E402
from lastmile.core.pricing import PricingPolicy  # noqa: E402
from lastmile.sim.simulate_command import run_scenario  # noqa: E402

GRID = {
    "assign_lag_s": [0.0, 60.0, 120.0],
    "ride_pool": [1, 4, 12],
    "queue_drain": [1.0, 0.7, 0.5, 0.35, 0.25],
}

Record = tuple[core_queue.QueueState, core_queue.QueueOrder, float]


def record(scenario: str, seeds: list[int]) -> list[Record]:
    """Every delivered order's quote-time queue and its realised click-to-door."""
    seen: dict[tuple[float, str], tuple[core_queue.QueueState, core_queue.QueueOrder]] = {}
    served = app_queue.queue_estimate

    def spy(state: core_queue.QueueState, order: core_queue.QueueOrder,
            params: core_queue.QueueParams = core_queue.DEFAULT_QUEUE
            ) -> core_queue.EtaEstimate:
        seen[(round(state.now_s, 3), order.merchant_id)] = (state, order)
        return served(state, order, params)

    out: list[Record] = []
    app_queue.queue_estimate = spy  # type: ignore[assignment]  # the bench's recorder
    try:
        for seed in seeds:
            seen.clear()
            with tempfile.TemporaryDirectory() as tmp:
                log = run_scenario(scenario, seed=seed, data_dir=Path(tmp),
                                   pricing=replace(PricingPolicy(), eta_queue=True)).log
            for o in log.orders.values():
                got = seen.get((round(o.placed_at, 3), o.merchant_id))
                if o.delivered_at is not None and got is not None:
                    out.append((*got, o.delivered_at - o.placed_at))
    finally:
        app_queue.queue_estimate = served  # type: ignore[assignment]
    return out


def mae(records: list[Record], params: core_queue.QueueParams) -> float:
    return float(np.mean([abs(took - core_queue.plan(s, o, params).door_s)
                          for s, o, took in records]))


def ratios(records: list[Record], params: core_queue.QueueParams) -> dict[str, list[float]]:
    """Realised over predicted, p10 / p50 / p90, for food- and courier-bound quotes: the
    candidates for the interval's ``food_p10/p90`` and ``courier_p10/p90`` (delivered
    orders only: the slow open ones are left out, so the p90s read low)."""
    out: dict[str, list[float]] = {}
    plans = [(core_queue.plan(s, o, params), took) for s, o, took in records]
    for name, bound in (("food", False), ("courier", True)):
        r = [took / p.door_s for p, took in plans if p.courier_bound is bound and p.door_s > 0]
        out[name] = [round(float(q), 3) for q in np.quantile(r, (0.1, 0.5, 0.9))] if r else []
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", action="append", help="scenario (repeatable; default lunch "
                    "and black-friday-lunch)")
    ap.add_argument("--seeds", default="1-12", help="seeds, a range like 1-12 (every scenario)")
    ap.add_argument("--seeds-for", action="append", default=[], metavar="SCENARIO=RANGE",
                    help="another range for one scenario (e.g. black-friday-lunch=1-2)")
    args = ap.parse_args()

    def span(text: str) -> list[int]:
        lo, _, hi = text.partition("-")
        return list(range(int(lo), int(hi or lo) + 1))

    own = dict(kv.split("=", 1) for kv in args.seeds_for)
    started = time.process_time()
    data = {sc: record(sc, span(own.get(sc, args.seeds)))
            for sc in args.scenario or ["lunch", "black-friday-lunch"]}
    results = []
    for values in itertools.product(*GRID.values()):
        params = replace(core_queue.DEFAULT_QUEUE, **dict(zip(GRID, values, strict=True)))
        per = {sc: round(mae(rs, params), 1) for sc, rs in data.items()}
        # The score: the scenarios' MAEs relative to the current constants', averaged, so
        # black-friday's long queues (MAE in the thousands) do not drown lunch.
        results.append((dict(zip(GRID, values, strict=True)), per))
    base = {sc: mae(rs, core_queue.DEFAULT_QUEUE) for sc, rs in data.items()}
    scored = sorted(results, key=lambda r: float(np.mean([r[1][sc] / base[sc] for sc in data])))
    for setting, per in reversed(scored):
        print(json.dumps({"setting": setting, "mae_s": per}))
    best = replace(core_queue.DEFAULT_QUEUE, **scored[0][0])
    print(json.dumps({"seeds": args.seeds, "orders": {sc: len(rs) for sc, rs in data.items()},
                      "current_mae_s": {sc: round(v, 1) for sc, v in base.items()},
                      "best": scored[0][0], "best_mae_s": scored[0][1],
                      "best_ratios": {sc: ratios(rs, best) for sc, rs in data.items()},
                      "best_ratios_all": ratios([r for rs in data.values() for r in rs], best),
                      "cpu_s": round(time.process_time() - started, 1)}))


if __name__ == "__main__":
    main()
