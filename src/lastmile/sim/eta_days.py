"""Simulated days as ETA rows: run a scenario through the real use cases (as ``lastmile
simulate`` does) and turn each delivered order into features at its placement and its
realised click-to-door. Until the delivery history records exist this is how the ETA
benchmark gets held-out simulated days; a day is a (scenario, seed, courier scale).

Features at placement ``t`` (seconds on the simulated clock):

- ``hour`` of the simulated day, ``weekday`` 0 (2026-01-01 is the simulator's day);
- ``distance_m`` great-circle merchant -> drop-off, ``travel_s`` = distance x the road factor
  / ``PricingPolicy.courier_speed_mps`` + ``service_s`` (today's pricing travel model);
- ``prep_mean_s`` / ``prep_p90_s``: mean and 90th percentile of the merchant's last 20
  realised preparations (placement -> ready) that were ready by ``t``, else its stated
  preparation time;
- ``orders_per_min``: the region's placements per minute in each 5-minute bucket of
  ``(t - 30 min, t]``; ``idle_couriers``: couriers on shift minus those holding orders, from
  the world's 5-minute samples (the latest sample at or before each bucket's end);
- ``items`` and ``subtotal_minor``: the order's cart (recorded as the order is placed);
- read from the world just before the order is placed (``_known_at``): ``idle_nearest_s``
  the nearest idle courier's travel to the merchant (pricing travel model),
  ``courier_reach_s`` / ``courier_reach_3_s`` the first and third smallest time a courier
  could be there (idle: its travel; on its last drop-off: the rest of that leg, the door
  handover, then the travel from the door), ``open_orders`` the orders no courier holds yet,
  ``merchant_open_orders`` the merchant's orders not picked up.

Only single-city scenarios are used (the world's samples are city-wide).
"""

from __future__ import annotations

import bisect
import math
import random
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from lastmile.adapters.clock import ManualClock, SequentialIds
from lastmile.app.ordering import place_order
from lastmile.core.eta import travel as travel_model
from lastmile.core.eta.features import BUCKET_S, SERIES_BUCKETS, EtaFeatures, numeric_matrix
from lastmile.core.eta.table import EtaTable
from lastmile.core.geo import Point, haversine_m
from lastmile.core.pricing import PricingPolicy
from lastmile.sim.actions import DirectActions, OrderAsk, PlacedView, _request, fees_of
from lastmile.sim.eta_cache import cached_table
from lastmile.sim.model import Phase, WorldLog
from lastmile.sim.scenarios import get_scenario
from lastmile.sim.simulate_command import ManualDriver

_HISTORY = 20
DAY_VERSION = 2
"""Bump when a day's features change: cached days of another version are played again."""


class _CartRecorder(DirectActions):
    """``DirectActions`` that also remembers each placed order's cart."""

    carts: dict[str, tuple[int, int]]
    known: dict[str, Known]
    log: WorldLog | None = None
    merchants: dict[str, Point]

    def place(self, ask: OrderAsk, *, key: str) -> PlacedView:
        before = (_known_at(self.log, self.merchants[ask.merchant_id], ask.merchant_id,
                            self.s.clock.now()) if self.log is not None else None)
        o = self._call(place_order, _request(ask), idempotency_key=key).order
        self.carts[o.id] = (ask.quantity, o.prices.subtotal.amount_minor)
        if before is not None:
            self.known[o.id] = before
        return PlacedView(order_id=o.id, placed_at=o.placed_at, eta_expected_at=o.eta.expected_at,
                          eta_high_at=o.eta.high_at, eta_low_at=o.eta.low_at, fees_minor=fees_of(o.prices.as_minor()),
                          currency=o.currency)


Known = tuple[float, float, float, float, float]
"""courier_reach_s, courier_reach_3_s, idle_nearest_s, open_orders, merchant_open_orders."""
_LAST_LEG = frozenset({Phase.TO_DROPOFF, Phase.AT_DROPOFF})


def _known_at(log: WorldLog, merchant: Point, merchant_id: str, now: float) -> Known:
    """What the platform knows at ``now`` about couriers near ``merchant`` and open work
    (the order being placed is not in the log yet)."""
    policy = PricingPolicy()

    def travel(a: Point) -> float:
        return travel_model.ride_s(travel_model.road_m(a, merchant), policy.courier_speed_mps)

    idle: list[float] = []
    reach: list[float] = []
    for run in log.couriers.values():
        if run.phase is Phase.IDLE:
            idle.append(travel(run.where(now)))
        elif run.phase in _LAST_LEG and len(run.orders) <= 1 and run.leg is not None:
            _, door, _, arrive = run.leg
            reach.append(max(arrive - now, 0.0) + policy.service_s / 2 + travel(door))
    reach = sorted(reach + idle)
    waiting = sum(1 for r in log.orders.values() if r.open and r.courier_id is None)
    kitchen = sum(1 for r in log.orders.values() if r.open and r.merchant_id == merchant_id)
    return (reach[0] if reach else math.nan, reach[2] if len(reach) > 2 else math.nan,
            min(idle) if idle else math.nan, float(waiting), float(kitchen))


def simulated_day(scenario: str, *, seed: int, courier_scale: float = 1.0,
                  demand_scale: float = 1.0) -> EtaTable:
    """Play one day (``courier_scale`` x the city's couriers, ``demand_scale`` x its demand)
    and return its delivered orders; source = ``"<scenario>/<seed>/x<scale>"``."""
    from lastmile.bootstrap import build, install_ledger
    from lastmile.settings import Settings
    from lastmile.sim.city import build_city
    from lastmile.sim.world import World

    base = get_scenario(scenario)
    if len(base.cities) != 1:
        raise ValueError(f"scenario {scenario!r} has {len(base.cities)} cities; need one")
    city_spec = base.cities[0]
    sc = replace(base, base_per_h=base.base_per_h * demand_scale, cities=(
        replace(city_spec, couriers=max(1, round(city_spec.couriers * courier_scale))),))
    with tempfile.TemporaryDirectory(prefix="lastmile-eta-") as tmp:
        clock = ManualClock(start=sc.day_start + sc.start_h * 3600)
        container = build(Settings(data_dir=Path(tmp)), clock=clock, ids=SequentialIds(),
                          rng=random.Random(seed))
        install_ledger(container)
        try:
            city = build_city(container.services, sc, random.Random(seed))
            actions = _CartRecorder(container.services, container.tracking)
            actions.carts, actions.known = {}, {}
            actions.merchants = {m.id: m.location for m in city.merchants}
            world = World(city=city, scenario=sc, actions=actions, driver=ManualDriver(clock),
                          seed=seed, hours=None)
            actions.log = world.log
            log = world.run()
        finally:
            container.close()
    prep = {m.id: float(m.prep_time_s) for m in city.merchants}
    features, totals = day_rows(log, actions.carts, prep, actions.known, day_start=sc.day_start)
    source = f"{scenario}/{seed}/x{courier_scale:g}"
    return EtaTable(matrix=numeric_matrix(features),
                    merchant=np.array([f.merchant_id for f in features], dtype=str),
                    source=np.array([source] * len(features), dtype=str),
                    total_s=np.array(totals, dtype=np.float64))


def day_rows(log: WorldLog, carts: dict[str, tuple[int, int]],
             stated_prep_s: dict[str, float], known: dict[str, Known] | None = None, *,
             day_start: float
             ) -> tuple[list[EtaFeatures], list[float]]:
    """Features and click-to-door seconds of the log's delivered orders, in placement order
    (the world's log has no assignment time, so no stage split: the history records have);
    ``known`` (order id -> ``_known_at`` before its placement) fills the courier and open-work
    fields, else they are NaN; ``day_start``: the local midnight of the scenario's day (the
    hour feature is local)."""
    policy = PricingPolicy()
    orders = sorted(log.orders.values(), key=lambda r: (r.placed_at, r.id))
    placed = [r.placed_at for r in orders]
    sample_t = [s.t for s in log.samples]
    ready = sorted((r.ready_at, r.merchant_id, r.ready_at - r.placed_at)
                   for r in orders if r.ready_at is not None)
    ready_t = [x[0] for x in ready]
    features: list[EtaFeatures] = []
    totals: list[float] = []
    for r in orders:
        if r.delivered_at is None or r.picked_up_at is None or r.pickup is None:
            continue
        t = r.placed_at
        ends = [t - (SERIES_BUCKETS - 1 - b) * BUCKET_S for b in range(SERIES_BUCKETS)]
        counts = [bisect.bisect_right(placed, e) - bisect.bisect_right(placed, e - BUCKET_S)
                  for e in ends]
        idle = []
        for e in ends:
            i = bisect.bisect_right(sample_t, e) - 1
            idle.append(float(log.samples[i].on_shift - log.samples[i].busy) if i >= 0 else 0.0)
        done = [x[2] for x in ready[:bisect.bisect_right(ready_t, t)]
                if x[1] == r.merchant_id][-_HISTORY:]
        stated = stated_prep_s.get(r.merchant_id, 600.0)
        distance = haversine_m(r.pickup, r.dropoff)
        items, subtotal = carts.get(r.id, (1, 0))
        features.append(EtaFeatures(
            merchant_id=r.merchant_id, region=r.region_id,
            hour=int((t - day_start) // 3600) % 24, weekday=0, distance_m=distance,
            travel_s=travel_model.travel_s(r.pickup, r.dropoff, speed_mps=policy.courier_speed_mps,
                                           service_s=policy.service_s),
            prep_mean_s=float(np.mean(done)) if done else stated,
            prep_p90_s=float(np.quantile(done, 0.9)) if done else stated,
            orders_per_min=tuple(c / (BUCKET_S / 60) for c in counts),
            idle_couriers=tuple(max(0.0, v) for v in idle), items=items,
            subtotal_minor=subtotal))
        if known is not None and r.id in known:
            features[-1] = _with_known(features[-1], known[r.id])
        totals.append(r.delivered_at - t)
    return features, totals


def _with_known(f: EtaFeatures, k: Known) -> EtaFeatures:
    reach, reach_3, idle, waiting, kitchen = k
    return replace(f, courier_reach_s=reach, courier_reach_3_s=reach_3, idle_nearest_s=idle,
                   open_orders=waiting, merchant_open_orders=kitchen)


def cached_day(cache_dir: Path | None, scenario: str, *, seed: int, courier_scale: float,
               demand_scale: float) -> EtaTable:
    """``simulated_day`` read from / written to ``cache_dir`` (deterministic per arguments)."""
    name = f"sim-{scenario}-{seed}-c{courier_scale:g}-d{demand_scale:g}-v{DAY_VERSION}.npz"
    return cached_table(None if cache_dir is None else Path(cache_dir) / name,
                        lambda: simulated_day(scenario, seed=seed, courier_scale=courier_scale,
                                              demand_scale=demand_scale))
