"""Measure the ETA heuristic's interval on the simulator: what ratios make it an 80% one.

Runs seeded scenarios through the real use cases (``sim.simulate_command.run_scenario``),
and for every order placed compares the realised click-to-door with the quoted point
(``eta_expected_at - placed_at``, the heuristic's point). Orders still open when a run ends
are right-censored at the end (they took *at least* that long), so the quantiles of
realised / point come from a Kaplan-Meier estimate, not from the delivered orders alone
(which would leave out exactly the slow ones).

Prints, per scenario and overall, the ratio's p10, p50 and p90 (the candidates for
``HeuristicParams.p10_ratio`` / ``p90_ratio``), and with the ratios in force: the mean
absolute error, the share of delivered orders inside the window (coverage80), after the
point and after the window's end (late). The last line is one JSON object.

    nice -n 5 python bench/eta_calibration.py [--scenario lunch --seeds 1-8]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lastmile.core.eta import late  # noqa: E402
from lastmile.core.eta.queue import DEFAULT_QUEUE, QueueParams  # noqa: E402
from lastmile.core.eta.travel import road_m, trip_s  # noqa: E402
from lastmile.core.pricing import PricingPolicy, heuristic_params  # noqa: E402
from lastmile.sim.simulate_command import run_scenario  # noqa: E402


def km_quantiles(ratio: np.ndarray, observed: np.ndarray, qs: tuple[float, ...]
                 ) -> list[float | None]:
    """Kaplan-Meier quantiles of ``ratio`` where ``observed`` is False for censored rows.

    Quantile q is the smallest observed ratio at which the estimated CDF reaches q; None
    when censoring leaves the CDF below q (the data cannot say)."""
    order = np.lexsort((~observed, ratio))  # at ties, events before censorings
    r, e = ratio[order], observed[order]
    at_risk = len(r) - np.arange(len(r))
    surv = np.cumprod(np.where(e, 1.0 - 1.0 / at_risk, 1.0))
    cdf = 1.0 - surv
    out: list[float | None] = []
    for q in qs:
        hit = np.nonzero(e & (cdf >= q - 1e-12))[0]
        out.append(float(r[hit[0]]) if len(hit) else None)
    return out


def collect(scenario: str, seeds: list[int], policy: PricingPolicy,
            queue: QueueParams | None = None) -> list[dict[str, float | bool]]:
    rows: list[dict[str, float | bool]] = []
    for seed in seeds:
        with tempfile.TemporaryDirectory() as tmp:
            log = run_scenario(scenario, seed=seed, data_dir=Path(tmp), pricing=policy,
                               queue_params=queue).log
            prep = _prep_times(Path(tmp), {o.merchant_id for o in log.orders.values()})
        for o in log.orders.values():
            if o.cancelled_at is not None and o.delivered_at is None:
                continue  # a cancelled order's door time is unknown and not censored
            point = o.eta_expected_at - o.placed_at
            done = o.delivered_at is not None
            took = (o.delivered_at if o.delivered_at is not None else log.end) - o.placed_at
            # The point without the queue for a courier: the later of food and the pickup
            # leg, then the trip (engine.heuristic_arrays with no order waiting).
            base = (max(prep[o.merchant_id], policy.pickup_leg_s)
                    + trip_s(road_m(o.pickup or o.dropoff, o.dropoff),
                             speed_mps=policy.courier_speed_mps, service_s=policy.service_s))
            base = min(base, point)
            params = heuristic_params(policy)
            low = (o.eta_low_at - o.placed_at if o.eta_low_at is not None
                   else base * params.p10_ratio + (point - base) * params.queue_p10)
            rows.append({"point_s": point, "took_s": took, "observed": done, "base_s": base,
                         "p10_s": low, "seed": seed,
                         # heuristic-3: the window's ratio to the point says which pair of
                         # ratios (food- or courier-bound, core.eta.queue) the quote used.
                         "low_ratio": low / point if point > 0 else 1.0,
                         "late": done and late.is_late(took + o.placed_at,
                                                       late.promised_end(o.eta_high_at)),
                         "high_s": o.eta_high_at - o.placed_at})
    return rows


def _prep_times(data_dir: Path, merchant_ids: set[str]) -> dict[str, float]:
    from lastmile.bootstrap import build
    from lastmile.settings import Settings

    container = build(Settings(data_dir=data_dir))
    try:
        with container.services.uow(read_only=True) as uow:
            found = {mid: uow.merchants.get(mid) for mid in merchant_ids}
    finally:
        container.close()
    return {mid: float(m.prep_time_s) for mid, m in found.items() if m is not None}


def summary(rows: list[dict[str, float | bool]], policy: PricingPolicy,
            queue: QueueParams = DEFAULT_QUEUE) -> dict[str, object]:
    point = np.array([float(r["point_s"]) for r in rows])
    took = np.array([float(r["took_s"]) for r in rows])
    observed = np.array([bool(r["observed"]) for r in rows])
    ratio = took / point
    p10, p50, p90 = km_quantiles(ratio, observed, (0.1, 0.5, 0.9))
    # Two parts (docs/eta.md): rows with no courier queue give the base ratios; rows with
    # one give the queue's share: (took - base) / (point - base).
    base = np.array([float(r["base_s"]) for r in rows])
    excess = point - base
    calm = excess < 1.0
    b10, b50, b90 = km_quantiles(took[calm] / point[calm], observed[calm], (0.1, 0.5, 0.9))
    q = ~calm
    q10, q50, q90 = km_quantiles((took[q] - base[q]) / excess[q], observed[q], (0.1, 0.5, 0.9))
    d = observed
    p10_s = np.array([float(r["p10_s"]) for r in rows])
    high_s = np.array([float(r["high_s"]) for r in rows])
    inside = (took[d] >= p10_s[d]) & (took[d] <= high_s[d])  # the quoted window, as served
    # heuristic-3 (core.eta.queue): the ratio candidates for its two pairs, food-bound and
    # courier-bound quotes (told apart by the window's low end over the point).
    low_ratio = np.array([float(r["low_ratio"]) for r in rows])
    bound = np.abs(low_ratio - queue.courier_p10) < np.abs(low_ratio - queue.food_p10)
    h3 = {}
    for name, g in (("food", ~bound), ("courier", bound)):
        g10, g50, g90 = (km_quantiles(ratio[g], observed[g], (0.1, 0.5, 0.9)) if g.any()
                         else (None, None, None))
        h3[name] = {"orders": int(g.sum()), "ratio_km": [_r(g10), _r(g50), _r(g90)]}
    seeds = sorted({int(r["seed"]) for r in rows})
    per_seed = {str(s): _r(float(np.mean([abs(float(r["took_s"]) - float(r["point_s"]))
                                          for r in rows if r["seed"] == s and r["observed"]]
                                         or [np.nan]))) for s in seeds}
    return {
        "orders": len(rows), "delivered": int(d.sum()), "censored": int((~d).sum()),
        "h3_ratio": h3, "mae_s_by_seed": per_seed,
        "ratio_km": {"p10": _r(p10), "p50": _r(p50), "p90": _r(p90)},
        "no_queue": {"orders": int(calm.sum()), "ratio_km": [_r(b10), _r(b50), _r(b90)]},
        "queue": {"orders": int(q.sum()), "share_km": [_r(q10), _r(q50), _r(q90)]},
        "interval": {k: getattr(heuristic_params(policy), k) for k in (
            "courier_cycle_s", "p10_ratio", "p90_ratio", "queue_p10", "queue_p90")},
        "mae_s": _r(float(np.mean(np.abs(took[d] - point[d])))) if d.any() else None,
        "coverage80": _r(float(inside.mean())) if d.any() else None,
        "after_point_share": _r(float((took[d] > point[d]).mean())) if d.any() else None,
        "late_share": _r(float(np.mean([bool(r["late"]) for r, o in zip(rows, d, strict=True)
                                        if o]))) if d.any() else None,
    }


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", action="append", help="scenario (repeatable; default lunch "
                    "and black-friday-lunch)")
    ap.add_argument("--seeds", default="1-6", help="seeds, a range like 1-6")
    ap.add_argument("--cycle", type=int, help="courier_cycle_s to try (default: the policy's)")
    ap.add_argument("--leg", type=int, help="pickup_leg_s to try (default: the policy's)")
    ap.add_argument("--window", type=float, nargs=2, metavar=("LOW", "HIGH"),
                    help="window_low and window_high to try (default: the policy's)")
    ap.add_argument("--model", choices=["heuristic-2", "heuristic-3"], default=None,
                    help="the quote's model (default: the policy's; heuristic-3 is "
                    "core.eta.queue)")
    ap.add_argument("--queue", action="append", default=[], metavar="NAME=VALUE",
                    help="a heuristic-3 constant to try (core.eta.queue.QueueParams)")
    args = ap.parse_args()
    queue = replace(DEFAULT_QUEUE, **{k: type(getattr(DEFAULT_QUEUE, k))(float(v)) for k, v in
                                      (kv.split("=", 1) for kv in args.queue)})
    lo, _, hi = args.seeds.partition("-")
    seeds = list(range(int(lo), int(hi or lo) + 1))
    policy = PricingPolicy()
    policy = replace(policy, courier_cycle_s=args.cycle or policy.courier_cycle_s,
                     pickup_leg_s=args.leg or policy.pickup_leg_s,
                     window_low=args.window[0] if args.window else policy.window_low,
                     window_high=args.window[1] if args.window else policy.window_high,
                     eta_queue=(policy.eta_queue if args.model is None
                                else args.model == "heuristic-3"))
    started = time.process_time()
    everything: list[dict[str, float | bool]] = []
    per: dict[str, object] = {}
    for scenario in args.scenario or ["lunch", "black-friday-lunch"]:
        rows = collect(scenario, seeds, policy, queue)
        everything += rows
        per[scenario] = summary(rows, policy, queue)
        print(json.dumps({"scenario": scenario, "seeds": args.seeds, **per[scenario]}))
    print(json.dumps({"seeds": args.seeds, "model": "heuristic-3" if policy.eta_queue else
                      "heuristic-2", "queue": {k: v for k, v in vars(args).items()
                                               if k == "queue"}["queue"],
                      "courier_cycle_s": policy.courier_cycle_s,
                      "pickup_leg_s": policy.pickup_leg_s, "scenarios": per,
                      "overall": summary(everything, policy, queue),
                      "cpu_s": round(time.process_time() - started, 1)}))


if __name__ == "__main__":
    main()
