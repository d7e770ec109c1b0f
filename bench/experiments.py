"""Experiments validated on the city simulator (issue 13, item 4; docs/experiments.md,
"Validation"). Every figure comes from seeded simulated days (``lastmile.sim.experiments``):
experiments created in the simulated platform's database, served by its levers through
``variant``, observed by ``app.experiments_data`` and analysed by ``core.experiments.stats``.

- A/A: ``--days`` days, each with ``--salts`` A/A experiments of every design (own layers,
  own salts) on click-to-door minutes: the share whose test rejects at 5 %. Tests of one
  day share its data, so the interval is a Wilson interval on the effective number of
  tests (the count divided by the design effect of the day clustering, at least 1).
- Coverage: a fee change of +1.00 (``base_delivery_fee_minor`` 450 -> 550) in a city where
  its effect on the delivery fee per order is exactly +100 (sim.experiments docstring). The
  days rotate over consumer A/B (``--salts`` experiments sharing a layer), switchback and
  market A/B; courier A/B has no fee lever, so its experiments get a documented injected
  shift of +2 minutes per treatment order on click-to-door (``Trial.shift``).
- Network effect: a congested city and a fee of +10.00 that halves treated demand.
  Truth: the whole city under treatment minus the whole city under control, same seeds
  (``--trilemma-seeds``), click-to-door minutes per order after the start. Against it a
  consumer A/B and a switchback (``--window-min`` windows, the first ``--burn-in-min`` of
  a window after a switch excluded), pooled over the seeds.
- Interleaving: ``sim.interleaving`` on one synthetic ranker change: sessions an A/B test
  needs over interleaved sessions needed, at 80 % power and 5 %.

The last line is one JSON object (the issue's contract); the line before it has the
details (intervals, counts, CPU seconds). Days run on local processes (``--processes``) or
a Dask cluster (``--dask ADDRESS``).

    nice -n 5 python bench/experiments.py [--days 12] [--salts 4] [--trilemma-seeds 3]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lastmile.core.errors import DomainError  # noqa: E402
from lastmile.core.experiments.stats import analyze  # noqa: E402
from lastmile.sim.experiments import (  # noqa: E402
    BASE_FEE_MINOR,
    VALIDATION_PRICING,
    Day,
    DayResult,
    Trial,
    city_mean,
    pooled,
    run_days,
    validation_city,
)
from lastmile.sim.interleaving import Feed, sensitivity  # noqa: E402
from lastmile.sim.validation import rate_interval  # noqa: E402

ALPHA = 0.05
DESIGNS = ("ab", "courier_ab", "switchback", "market_ab")
FEE_DELTA = 100
COURIER_SHIFT_MIN = 2.0
NETWORK_DELTA = 1_000


def validation_days(days: int, salts: int, seed: int) -> list[Day]:
    city = validation_city()
    out = []
    fee = (("base_delivery_fee_minor", BASE_FEE_MINOR + FEE_DELTA),)
    for i in range(days):
        trials = [Trial(name=f"aa-{d.replace('_', '-')}-{k}", design=d,
                        lever="other" if d == "courier_ab" else "fees")
                  for d in DESIGNS for k in range(salts)]
        trials += [Trial(name=f"cov-courier-ab-{k}", design="courier_ab", lever="other",
                         shift=COURIER_SHIFT_MIN) for k in range(salts)]
        rotating = ("ab", "switchback", "market_ab")[i % 3]
        if rotating == "ab":
            trials += [Trial(name=f"cov-ab-{k}", design="ab", treatment=fee,
                             metric="delivery_fee_minor", layer="fee-ab", share=1.0 / salts)
                       for k in range(salts)]
        else:
            trials.append(Trial(name=f"cov-{rotating.replace('_', '-')}-0", design=rotating,
                                treatment=fee, metric="delivery_fee_minor"))
        out.append(Day(seed=seed + i, scenario=city, trials=tuple(trials), tag="validation"))
    return out


def network_days(seeds: int, seed: int, *, window_min: float, burn_in_min: float
                 ) -> list[Day]:
    city = validation_city(per_h=16.0, couriers=(2, 3, 3))
    fee = (("base_delivery_fee_minor", BASE_FEE_MINOR + NETWORK_DELTA),)
    treated = replace(VALIDATION_PRICING, base_delivery_fee_minor=BASE_FEE_MINOR + NETWORK_DELTA)
    out = []
    for i in range(seeds):
        s = seed + 1_000 + i
        out += [
            Day(seed=s, scenario=city, tag="global-control"),
            Day(seed=s, scenario=city, pricing=treated, tag="global-treatment"),
            Day(seed=s, scenario=city, tag="ab", trials=(
                Trial(name="net-ab", design="ab", treatment=fee),)),
            Day(seed=s, scenario=city, tag="switchback", trials=(
                Trial(name="net-sb", design="switchback", treatment=fee,
                      window_s=window_min * 60.0, burn_in_s=burn_in_min * 60.0),)),
        ]
    return out


UNANALYSABLE: dict[str, int] = defaultdict(int)


def _effect(obs: Any, design: str) -> Any:
    """The one effect, or None when the analysis refuses the data (too few units in an
    arm; counted in the details' ``unanalysable``)."""
    try:
        return analyze(obs, design=design, alpha=ALPHA).effects[0]  # type: ignore[arg-type]
    except (DomainError, ZeroDivisionError, ValueError):
        UNANALYSABLE[design] += 1
        return None


def validation(results: list[DayResult], salts: int) -> dict[str, Any]:
    rejected: dict[str, list[list[bool]]] = defaultdict(list)
    covered: dict[str, list[list[bool]]] = defaultdict(list)
    for r in results:
        for d in DESIGNS:
            effects = [_effect(obs, d) for name, obs in r.observations.items()
                       if name.startswith(f"aa-{d.replace('_', '-')}-") and obs]
            rejected[d].append([e.p_value < ALPHA for e in effects if e is not None])
            day_cov = []
            for name, obs in r.observations.items():
                if not name.startswith(f"cov-{d.replace('_', '-')}-") or not obs:
                    continue
                truth = COURIER_SHIFT_MIN if d == "courier_ab" else FEE_DELTA
                e = _effect(obs, d)
                if e is not None:
                    day_cov.append(e.ci[0] <= truth <= e.ci[1])
            if day_cov:
                covered[d].append(day_cov)
    return {"aa": {d: rate_interval(rejected[d]) for d in DESIGNS},
            "coverage": {d: rate_interval(covered[d]) for d in DESIGNS}}


def network(results: list[DayResult]) -> dict[str, Any]:
    by = defaultdict(list)
    for r in results:
        by[r.tag].append(r)
    metric = "click_to_door_min"
    truth = city_mean(by["global-treatment"], metric) - city_mean(by["global-control"], metric)
    ab = _effect(pooled(by["ab"], "net-ab"), "ab")
    sb = _effect(pooled(by["switchback"], "net-sb"), "switchback")
    return {"true_effect": truth, "ab_estimate": ab.effect, "ab_ci": list(ab.ci),
            "switchback_estimate": sb.effect, "switchback_ci": list(sb.ci),
            "control_mean": city_mean(by["global-control"], metric),
            "orders_control": sum(r.orders for r in by["global-control"]),
            "orders_treatment": sum(r.orders for r in by["global-treatment"])}


def _finite(x: Any) -> Any:
    """JSON without NaN: a rate of no tests is null."""
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    return x


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--days", type=int, default=12, help="A/A and coverage days")
    ap.add_argument("--salts", type=int, default=4, help="A/A experiments per design a day")
    ap.add_argument("--trilemma-seeds", type=int, default=3, help="network-effect seeds "
                    "(4 days each)")
    ap.add_argument("--window-min", type=float, default=60.0, help="switchback window")
    ap.add_argument("--burn-in-min", type=float, default=30.0, help="switchback burn-in "
                    "(excluded): at least the congested city's click-to-door time")
    ap.add_argument("--sessions", type=int, default=20_000, help="interleaving sessions")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--processes", type=int, default=None)
    ap.add_argument("--dask", default=None, metavar="ADDRESS", help="a Dask scheduler")
    args = ap.parse_args()
    from rich.progress import Progress

    cpu = time.process_time()
    days = validation_days(args.days, args.salts, args.seed)
    days += network_days(args.trilemma_seeds, args.seed, window_min=args.window_min,
                         burn_in_min=args.burn_in_min)
    with Progress(transient=True) as bar:
        task = bar.add_task("simulated days", total=len(days))
        results = run_days(days, dask_address=args.dask, processes=args.processes,
                           on_progress=lambda done, total: bar.update(task, completed=done))
    checks = validation([r for r in results if r.tag == "validation"], args.salts)
    net = network([r for r in results if r.tag != "validation"])
    il = sensitivity(sessions=args.sessions, seed=args.seed, feed=Feed())
    details = {
        "aa": checks["aa"], "coverage": checks["coverage"], "network": net,
        "interleaving": {"ab_exposures": round(il.ab_exposures),
                         "interleaving_exposures": round(il.interleaving_exposures),
                         "ab_effect": il.ab_effect, "preference": il.preference,
                         "engaged_share": il.engaged_share, "sessions": il.sessions},
        "unanalysable": dict(UNANALYSABLE), "days": len(days), "orders": sum(r.orders for r in results),
        "sim_cpu_s": round(sum(r.cpu_s for r in results), 1),
        "parent_cpu_s": round(time.process_time() - cpu, 1),
        "args": vars(args)}
    print(json.dumps(_finite(details)))

    def r4(x: float) -> float | None:
        return None if not math.isfinite(x) else round(float(x), 4)

    print(json.dumps({
        "aa_false_positive": {d: r4(checks["aa"][d]["rate"]) for d in DESIGNS},
        "ci_coverage": {d: r4(checks["coverage"][d]["rate"]) for d in DESIGNS},
        "network_effect": {"true_effect": r4(net["true_effect"]),
                           "ab_estimate": r4(net["ab_estimate"]),
                           "switchback_estimate": r4(net["switchback_estimate"]),
                           "switchback_ci": [r4(v) for v in net["switchback_ci"]]},
        "interleaving": {"sensitivity_vs_ab": r4(il.ratio)}}))


if __name__ == "__main__":
    main()
