"""Generate ETA history with the simulator and check it against what the platform stored.

Plays a scenario (the real use cases on SQLite, as ``lastmile simulate``), optionally
exports the history as Parquet (``--out``), then checks every record:

- every order placed has a record; a terminal order's is finished, an open order's is open;
- a delivery's stages are >= 0 and add up to its click-to-door, which is the order's own
  ``delivered_at - placed_at``; a cancellation has no stages;
- the cart, distance, quote, local hour and weekday are the order's and its region's;
- orders per minute equal a recount from the orders table of the orders placed before it
  in its 30-minute window (the counters are what the platform saw then);
- the preparation mean and p90 equal ``prep_stats`` over the merchant's records finished
  before it was placed (the history as it stood at placement).

Prints one JSON object, last: ``{"scenario", "seed", "orders", "records", "delivered",
"cancelled", "open", "missing", "stage_sum_max_err_s", "mismatches": {check: count},
"click_to_door_s": {"mean", "p50", "p90"}, "wall_s"}``.

    PYTHONPATH=src nice -n 5 .venv/bin/python bench/eta_history.py --scenario lunch \
        --out /tmp/lunch.parquet
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from bisect import bisect_left
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sim_day import sliced  # noqa: E402

from lastmile.adapters.eta_parquet import write_history  # noqa: E402
from lastmile.bootstrap import build  # noqa: E402
from lastmile.core.eta.features import SERIES_BUCKETS  # noqa: E402
from lastmile.core.eta.history import (  # noqa: E402
    PREP_SAMPLES,
    WINDOW_MINUTES,
    HistoryRecord,
    minute_of,
    prep_stats,
)
from lastmile.core.geo import haversine_m  # noqa: E402
from lastmile.core.orders import Order, OrderStatus  # noqa: E402
from lastmile.settings import Settings  # noqa: E402
from lastmile.sim.scenarios import get_scenario  # noqa: E402
from lastmile.sim.simulate_command import run_scenario  # noqa: E402

TOL = 1e-6


def _close(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and abs(a - b) <= TOL * max(1.0, abs(b))


def _recount(r: HistoryRecord, placed: list[tuple[float, str]]) -> tuple[float, ...]:
    """Orders per minute in the record's buckets from the region's (placed_at, id) list."""
    current = minute_of(r.placed_at)
    first = current - WINDOW_MINUTES + 1
    counts = [0] * SERIES_BUCKETS
    for at, oid in placed[bisect_left(placed, (first * 60.0, "")):]:
        if (at, oid) >= (r.placed_at, r.order_id):
            break
        counts[(minute_of(at) - first) // 5] += 1
    elapsed = [5.0] * SERIES_BUCKETS
    elapsed[-1] = 4 + (r.placed_at - current * 60) / 60
    return tuple(n / m for n, m in zip(counts, elapsed, strict=True))


def _prep_then(r: HistoryRecord, by_merchant: dict[str, list[HistoryRecord]],
               default_s: float) -> tuple[float, float]:
    done = [x for x in by_merchant[r.features.merchant_id]
            if x.finish is not None and x.finish.prep_s is not None
            and x.finish.finished_at < r.placed_at]
    done.sort(key=lambda x: x.finish.finished_at if x.finish else 0.0, reverse=True)
    return prep_stats([x.finish.prep_s for x in done[:PREP_SAMPLES]
                       if x.finish and x.finish.prep_s is not None], default_s=default_s)


def check(records: list[HistoryRecord], orders: dict[str, Order], zones: dict[str, str],
          prep_defaults: dict[str, int]) -> dict[str, object]:
    bad: Counter[str] = Counter()
    by_id = {r.order_id: r for r in records}
    placed: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for o in orders.values():
        placed[o.region_id].append((o.placed_at, o.id))
    for v in placed.values():
        v.sort()
    by_merchant: dict[str, list[HistoryRecord]] = defaultdict(list)
    for r in records:
        by_merchant[r.features.merchant_id].append(r)
    sum_err = 0.0
    for o in orders.values():
        r = by_id.get(o.id)
        if r is None:
            bad["missing"] += 1
            continue
        f, fin = r.features, r.finish
        if (fin is None) != (not o.terminal):
            bad["finished_state"] += 1
        local = datetime.fromtimestamp(o.placed_at, ZoneInfo(zones[o.region_id]))
        if (r.placed_at, f.hour, f.weekday, f.items, f.subtotal_minor) != (
                o.placed_at, local.hour, local.weekday(),
                sum(li.quantity for li in o.lines), o.prices.subtotal.amount_minor):
            bad["order_fields"] += 1
        if not (_close(f.distance_m, haversine_m(o.pickup, o.dropoff))
                and _close(r.quoted_s, o.eta.expected_at - o.placed_at)):
            bad["distance_or_quote"] += 1
        if not all(_close(a, b) or a == b for a, b in zip(
                f.orders_per_min, _recount(r, placed[o.region_id]), strict=True)):
            bad["orders_per_min"] += 1
        if not all(_close(a, b) for a, b in zip(
                (f.prep_mean_s, f.prep_p90_s),
                _prep_then(r, by_merchant, prep_defaults[o.merchant_id]), strict=True)):
            bad["prep_history"] += 1
        if fin is None:
            continue
        out = fin.outcome
        if o.status is OrderStatus.CANCELLED:
            bad["cancelled_with_stages"] += out is not None
            continue
        if out is None:
            bad["delivered_without_stages"] += 1
            continue
        stages = (out.assign_s, out.to_merchant_s, out.wait_s, out.to_consumer_s)
        bad["negative_stage"] += any(s < 0 for s in stages)
        sum_err = max(sum_err, abs(sum(stages) - out.total_s))
        bad["total_vs_order"] += not _close(out.total_s, (o.delivered_at or 0) - o.placed_at)
    totals = sorted(r.finish.outcome.total_s for r in records
                    if r.finish is not None and r.finish.outcome is not None)
    return {
        "orders": len(orders), "records": len(records),
        "delivered": sum(1 for r in records if r.finish and r.finish.status == "delivered"),
        "cancelled": sum(1 for r in records if r.finish and r.finish.status == "cancelled"),
        "open": sum(1 for r in records if r.finish is None), "missing": bad.pop("missing", 0),
        "stage_sum_max_err_s": sum_err,
        "mismatches": {k: v for k, v in sorted(bad.items()) if v},
        "click_to_door_s": {} if not totals else {
            "mean": round(sum(totals) / len(totals), 1),
            "p50": round(totals[len(totals) // 2], 1),
            "p90": round(totals[min(len(totals) - 1, math.ceil(0.9 * len(totals)) - 1)], 1)},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default="lunch")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--regions", type=int, default=None, help="keep the first N regions")
    ap.add_argument("--from-h", type=float, default=None, help="start at this hour of day")
    ap.add_argument("--hours", type=float, default=None, help="simulated hours to play")
    ap.add_argument("--out", type=Path, default=None, help="also write the history here")
    args = ap.parse_args()
    scenario = sliced(get_scenario(args.scenario), regions=args.regions, scale=1.0,
                      from_h=args.from_h, hours=args.hours)
    seed = scenario.seed if args.seed is None else args.seed
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lastmile-eta-history-") as tmp:
        run_scenario(scenario, seed=seed, data_dir=Path(tmp))
        container = build(Settings(data_dir=Path(tmp)))
        try:
            with container.services.uow(read_only=True) as uow:
                records = uow.eta_history.records(finished_only=False)
                regions = uow.regions.list()
                zones = {g.id: g.time_zone for g in regions}
                orders: dict[str, Order] = {}
                prep_defaults: dict[str, int] = {}
                for g in regions:
                    orders.update((o.id, o) for o in uow.orders.list(region_id=g.id,
                                                                     limit=10**7))
                    prep_defaults.update(uow.merchants.prep_times(g.id))
        finally:
            container.close()
    if args.out is not None:
        write_history([r for r in records if r.finish is not None], args.out)
    summary = {"scenario": scenario.name, "seed": seed,
               **check(records, orders, zones, prep_defaults),
               "wall_s": round(time.perf_counter() - t0, 1)}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
