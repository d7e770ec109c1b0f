"""Pricing bench: consumer quotes per second through the real quote use case, on SQLite.

Setup (``setup``): the demo region (10 x 10 km, Palo Alto) seeded with merchants,
consumers and ``--couriers`` couriers, each idle at a random point in the live store, and
``--orders`` open orders placed through ``place_order``, most of them to a few hotspots
(so some H3 rings run short of couriers and surge, others do not). ``--warmup-rounds``
surge rounds then run one simulated minute apart, so the smoothed multipliers stand
where that demand puts them.

Measured:

- ``round_ms``: one surge round (``app.surge.run_round``: count orders by drop-off cell
  and couriers by position cell, ratios over each ring, smoothing), median of
  ``--rounds``;
- ``quotes_per_s``: ``ordering.issue_quote`` (the route's use case: merchant, menu,
  region, tenant policy, cell surge, fee pipeline, ETA, signed token) for random baskets
  and drop-offs during ``--seconds``, with the clock following real time (a round runs
  when a minute has passed, as in production); p50/p99 per quote.

- ``ledger_postings_per_s``: each open order's money trail as if delivered (hold, hold
  release, capture split line by line, the courier's pay from the pay pipeline) posted
  through ``app.ledger``, one unit of work (and commit) per order, for at most
  ``--seconds``; postings are the transactions' lines (each transaction balances). Null
  when nothing could be posted (every trail already on the ledger).

A plot of the delivery fee against the supply/demand ratio (open orders per available
courier) goes to ``--out``: the steady-state fee at 2, 5 and 8 km, and the quotes of the run
at the smoothed ratio of their drop-off's cell.

    .venv/bin/python bench/pricing.py               # 400 couriers, 1,500 orders, 10 s
    .venv/bin/python bench/pricing.py --quick       # 60 couriers, 150 orders, 2 s

Prints JSON lines; the last one is ``{"quotes_per_s": ..., "ledger_postings_per_s": ...}``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lastmile.adapters.clock import ManualClock, SequentialIds  # noqa: E402
from lastmile.app import ledger, ordering, pay, queries  # noqa: E402
from lastmile.app.live import CourierLive  # noqa: E402
from lastmile.app.surge import region_surge, run_round  # noqa: E402
from lastmile.app.tenancy import current_tenant  # noqa: E402
from lastmile.bootstrap import Container, build  # noqa: E402
from lastmile.core import fees  # noqa: E402
from lastmile.core.fees import FeeInputs, run_fee  # noqa: E402
from lastmile.core.geo import Point, haversine_m  # noqa: E402
from lastmile.core.orders import OrderStatus  # noqa: E402
from lastmile.core.pricing import ROAD_FACTOR, PricingPolicy  # noqa: E402
from lastmile.core.surge import cell_of, target_multiplier  # noqa: E402
from lastmile.settings import Settings  # noqa: E402
from lastmile.sim.seed import SeedSummary, random_point, seed_demo  # noqa: E402

HOTSPOT_SHARE = 0.7  # of the open orders, to a few hotspots; the rest anywhere


def _near(rng: random.Random, centre: Point, spread_deg: float = 0.004) -> Point:
    return Point(lat=centre.lat + rng.gauss(0, spread_deg), lng=centre.lng + rng.gauss(0, spread_deg))


Menu = list[tuple[str, Point, list[str]]]  # (merchant id, location, available item ids)


def menus(services: Any, seed: SeedSummary) -> Menu:
    out = []
    for merchant_id in seed.merchant_ids:
        m = queries.get_merchant(services, merchant_id)
        out.append((m.id, m.location, [i.id for i in m.menu if i.available]))
    return out


def _basket(menu: Menu, seed: SeedSummary, rng: random.Random,
            dropoff: Point) -> ordering.OrderRequest:
    """A random basket from a merchant within delivery reach of ``dropoff``."""
    reach_m = PricingPolicy().max_distance_m / ROAD_FACTOR
    merchant_id, _, items = rng.choice([m for m in menu if haversine_m(m[1], dropoff) < reach_m])
    return ordering.OrderRequest(
        consumer_id=rng.choice(seed.consumer_ids), merchant_id=merchant_id,
        lines=(ordering.LineRequest(item_id=rng.choice(items), quantity=rng.choice((1, 1, 2))),),
        dropoff=dropoff)


def setup(args: argparse.Namespace, data_dir: Path) -> tuple[Container, ManualClock, SeedSummary]:
    clock = ManualClock()
    container = build(Settings(data_dir=data_dir), clock=clock, ids=SequentialIds(),
                      rng=random.Random(1))
    seed = seed_demo(container.services, seed=11, merchants=24, consumers=200,
                     couriers=args.couriers)
    rng = random.Random(5)
    container.live.upsert_many(
        CourierLive(courier_id=c, region_id=seed.region.id, status="idle",
                    updated_at=clock.now(), **_latlng(random_point(rng)))
        for c in seed.courier_ids)
    hotspots = [random_point(rng) for _ in range(3)]
    menu = menus(container.services, seed)
    for i in range(args.orders):
        where = (_near(rng, rng.choice(hotspots)) if rng.random() < HOTSPOT_SHARE
                 else random_point(rng))
        if not seed.region.polygon.contains(where):
            where = random_point(rng)
        ordering.place_order(container.services, _basket(menu, seed, rng, where),
                             idempotency_key=f"bench-{i}")
    return container, clock, seed


def _latlng(p: Point) -> dict[str, float]:
    return {"lat": p.lat, "lng": p.lng}


def warm_up(container: Container, clock: ManualClock, seed: SeedSummary, rounds: int) -> None:
    """Advance the region's surge ``rounds`` times, a round apart, couriers kept fresh."""
    services = container.services
    policy = services.pricing
    for _ in range(rounds):
        clock.advance(policy.surge_round_s)
        _refresh(container, clock, seed)
        with services.uow(read_only=True) as uow:
            region_surge(uow, services, seed.region.id, policy)


def _refresh(container: Container, clock: ManualClock, seed: SeedSummary) -> None:
    live = container.live
    now = clock.now()
    fresh = []
    for c in live.all_in_region(seed.region.id, now=now):
        fresh.append(CourierLive(courier_id=c.courier_id, region_id=c.region_id, lat=c.lat,
                                 lng=c.lng, status=c.status, updated_at=now))
    live.upsert_many(fresh)


def time_rounds(container: Container, clock: ManualClock, seed: SeedSummary,
                n: int) -> dict[str, Any]:
    services = container.services
    times = []
    state = None
    for _ in range(n):
        with services.uow(read_only=True) as uow:
            t0 = time.perf_counter()
            state = run_round(uow, services, seed.region.id, services.pricing, previous=state,
                              now=clock.now())
            times.append((time.perf_counter() - t0) * 1000)
    return {"round_ms": round(statistics.median(times), 2),
            "round_ms_max": round(max(times), 2), "rounds": n,
            "surging_cells": sum(1 for _, c in (state.cells if state else ()) if c.multiplier > 1)}


def time_quotes(container: Container, clock: ManualClock, seed: SeedSummary,
                seconds: float) -> tuple[dict[str, Any], list[tuple[float, int]]]:
    """Quotes for ``seconds`` with the clock following real time; (summary, (ratio, fee))."""
    services = container.services
    rng = random.Random(9)
    menu = menus(services, seed)
    start_clock, start = clock.now(), time.perf_counter()
    lat_ms: list[float] = []
    points: list[tuple[float, int]] = []
    surged = 0
    policy = services.pricing
    while time.perf_counter() - start < seconds:
        clock.set(start_clock + (time.perf_counter() - start))
        dropoff = random_point(rng)
        basket = _basket(menu, seed, rng, dropoff)
        t0 = time.perf_counter()
        issued = ordering.issue_quote(services, basket)
        lat_ms.append((time.perf_counter() - t0) * 1000)
        surged += issued.quote.surge_multiplier > 1
        board = services.surge.get(current_tenant(), seed.region.id)
        cell = board.by_cell.get(cell_of(dropoff, policy.surge_h3_resolution)) if board else None
        points.append((cell.ratio if cell else 0.0,
                       issued.quote.prices.delivery_fee.amount_minor))
    elapsed = time.perf_counter() - start
    lat_ms.sort()
    return {"quotes": len(lat_ms), "seconds": round(elapsed, 2),
            "quotes_per_s": round(len(lat_ms) / elapsed, 1),
            "p50_ms": round(lat_ms[len(lat_ms) // 2], 2),
            "p99_ms": round(lat_ms[min(len(lat_ms) - 1, int(len(lat_ms) * 0.99))], 2),
            "surged_share": round(surged / len(lat_ms), 3)}, points


def steady_fee_minor(ratio: float, distance_m: float, policy: PricingPolicy) -> int:
    """The delivery fee once smoothing has settled at ``ratio`` (Drive's rule set: the
    delivery fee alone)."""
    inputs = FeeInputs(distance_m=distance_m, currency="USD",
                       surge=target_multiplier(ratio, policy))
    return run_fee(fees.DRIVE, inputs, policy).delivery_fee.amount_minor


def plot(out: Path, points: list[tuple[float, int]], policy: PricingPolicy) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    top = max([10.0, *(p[0] for p in points)])
    ratios = [top * i / 200 for i in range(0, 201)]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for km in (2, 5, 8):
        ax.plot(ratios, [steady_fee_minor(r, km * 1000, policy) / 100 for r in ratios],
                label=f"steady state, {km} km")
    if points:
        ax.scatter([p[0] for p in points], [p[1] / 100 for p in points], s=6, alpha=0.3,
                   color="grey", label="bench quotes (cell's smoothed ratio)")
    ax.set_xlabel("open orders per available courier (drop-off cell and its ring)")
    ax.set_ylabel("delivery fee (USD)")
    ax.set_title("Delivery fee against the supply/demand ratio")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)


def time_ledger(container: Container, seed: SeedSummary, seconds: float) -> dict[str, Any]:
    """Each open order's whole money trail as a delivered order would post it: the hold,
    then its release, the capture split line by line and the courier's pay for the trip
    (the pay pipeline's amount), one unit of work (and commit) per order."""
    services = container.services
    with services.uow(read_only=True) as uow:
        orders = uow.orders.list(region_id=seed.region.id, statuses=[OrderStatus.PLACED],
                                 limit=100_000, oldest_first=True)
    txns = postings = 0
    start = time.perf_counter()
    for i, order in enumerate(orders):
        if time.perf_counter() - start >= seconds:
            break
        now = services.clock.now()
        delivered = replace(order, status=OrderStatus.DELIVERED,
                            courier_id=seed.courier_ids[i % len(seed.courier_ids)],
                            picked_up_at=now - 900.0, delivered_at=now)
        with services.uow() as uow:
            trail = (ledger.transactions_for("order.placed", order)
                     + ledger.transactions_for("order.delivered", delivered,
                                               trip=pay.trip_pay(uow, services, delivered)))
            posted = ledger.post_all(uow, services, trail)
            uow.commit()
        txns += len(posted)
        postings += sum(len(p.transaction.postings) for p in posted)
    elapsed = time.perf_counter() - start
    return {"ledger_transactions": txns, "ledger_postings": postings,
            "seconds": round(elapsed, 2),
            "ledger_postings_per_s": round(postings / elapsed, 1) if postings else None}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--couriers", type=int, default=400)
    p.add_argument("--orders", type=int, default=1_500)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--rounds", type=int, default=20, help="surge rounds timed")
    p.add_argument("--warmup-rounds", type=int, default=12)
    p.add_argument("--quick", action="store_true", help="60 couriers, 150 orders, 2 s")
    p.add_argument("--out", type=Path, default=Path("out/pricing_fee_vs_ratio.png"))
    args = p.parse_args(argv)
    if args.quick:
        args.couriers, args.orders, args.seconds, args.rounds = 60, 150, 2.0, 5
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        container, clock, seed = setup(args, Path(tmp))
        try:
            print(json.dumps({"setup": {"couriers": args.couriers, "open_orders": args.orders,
                                        "seconds": round(time.perf_counter() - t0, 1)}}))
            warm_up(container, clock, seed, args.warmup_rounds)
            rounds = time_rounds(container, clock, seed, args.rounds)
            print(json.dumps(rounds))
            quotes, points = time_quotes(container, clock, seed, args.seconds)
            print(json.dumps(quotes))
            plot(args.out, points, container.services.pricing)
            print(json.dumps({"plot": str(args.out)}))
            posted = time_ledger(container, seed, args.seconds)
            print(json.dumps(posted))
        finally:
            container.close()
    last = {"quotes_per_s": quotes["quotes_per_s"],
            "ledger_postings_per_s": posted["ledger_postings_per_s"]}
    print(json.dumps(last))
    return last


if __name__ == "__main__":
    main()
