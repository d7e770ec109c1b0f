"""The discrete-event city: consumers, merchants and couriers acting on the platform.

The world owns the simulated clock (SimPy's rule: one owner). Events sit in a
heap keyed by (time, sequence), so same seed -> same run. Each event makes the
simulated people act through an ``Actions`` adapter (in-process use cases or
the HTTP API), never by writing platform state directly:

- consumers arrive as a Poisson process (thinning on the scenario's hourly
  rate), quote, convert with a probability that falls with fees and ETA,
  place, and cancel when the food has not left the merchant well past the
  quoted window;
- merchants confirm after a short delay and finish the food after the
  estimate times a log-normal factor, slower when the kitchen is busy;
- couriers start and end shifts, look at offers after each dispatch tick,
  accept with a probability, travel in straight lines at vehicle speed times
  a road factor, ping their position, arrive, pick up, deliver in sequence.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from lastmile.core.geo import Point, haversine_m
from lastmile.sim.actions import Actions, OfferView, OrderAsk, Refused
from lastmile.sim.city import City, SimCourierSpec, SimMerchant
from lastmile.sim.couriers import CourierBehaviour
from lastmile.sim.propensity import answer, draw_city_traits, features_seen, offer_rng
from lastmile.sim.scenarios import DAY_START, Scenario


class Driver(Protocol):
    """The simulated clock as the world sees it: read it, and move (or wait) to a time."""

    def now(self) -> float: ...
    def advance_to(self, t: float) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class WorldConfig:
    dispatch_every_s: float = 30.0
    ping_every_s: float = 60.0
    sample_every_s: float = 300.0
    accept_p: float = 0.9
    respond_s: tuple[float, float] = (3.0, 20.0)
    confirm_s: tuple[float, float] = (20.0, 120.0)
    pickup_service_s: float = 120.0
    dropoff_service_s: float = 120.0
    road_factor: float = 1.3
    travel_noise: float = 0.15  # log-normal sigma on each leg (lights, parking)
    patience_s: float = 900.0  # consumers cancel this long past the quoted high ETA
    base_conversion: float = 0.92
    merchant_radius_m: float = 4_000.0
    # Hidden individual propensities (sim.propensity) instead of accept_p and respond_s.
    propensities: bool = False


@dataclass(slots=True, kw_only=True)
class OrderRecord:
    id: str
    region_id: str
    merchant_id: str
    consumer_id: str
    dropoff: Point
    placed_at: float
    eta_expected_at: float
    eta_high_at: float
    fees_minor: int
    pickup: Point | None = None  # the merchant's location (courier pay: trip distance)
    ready_at: float | None = None
    picked_up_at: float | None = None
    delivered_at: float | None = None
    cancelled_at: float | None = None
    courier_id: str | None = None

    @property
    def open(self) -> bool:
        return self.picked_up_at is None and self.cancelled_at is None


@dataclass(slots=True, kw_only=True)
class CourierRun:
    spec: SimCourierSpec
    pos: Point
    phase: str = "off"  # off, idle, deciding, to_pickup, at_pickup, to_dropoff
    orders: list[str] = field(default_factory=list)
    leg: tuple[Point, Point, float, float] | None = None
    gen: int = 0  # bumps on every plan change; stale events are ignored
    ending: bool = False
    busy_since: float | None = None
    busy_s: float = 0.0
    shift_since: float | None = None
    shift_s: float = 0.0
    delivered: int = 0

    def where(self, t: float) -> Point:
        if self.leg is None:
            return self.pos
        a, b, t0, t1 = self.leg
        f = 1.0 if t >= t1 or t1 <= t0 else max(0.0, (t - t0) / (t1 - t0))
        return Point(lat=a.lat + (b.lat - a.lat) * f, lng=a.lng + (b.lng - a.lng) * f)


@dataclass(frozen=True, slots=True, kw_only=True)
class Sample:
    t: float
    on_shift: int
    busy: int
    open_orders: int
    delivered: int


@dataclass(slots=True, kw_only=True)
class WorldLog:
    start: float
    end: float
    orders: dict[str, OrderRecord] = field(default_factory=dict)
    couriers: dict[str, CourierRun] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    quotes: int = 0
    lost_quotes: int = 0
    refusals: dict[str, int] = field(default_factory=lambda: defaultdict(int))


class World:
    def __init__(self, *, city: City, scenario: Scenario, actions: Actions, driver: Driver,
                 seed: int, config: WorldConfig | None = None, hours: float | None = None):
        self.city, self.scenario, self.actions, self.driver = city, scenario, actions, driver
        self.cfg = config or WorldConfig()
        # Separate streams: a change in courier behaviour or dispatch must not move demand.
        self.rng = random.Random(seed)  # couriers
        self.demand_rng = random.Random(seed * 1_000 + 1)  # consumers
        self.kitchen_rng = random.Random(seed * 1_000 + 2)  # merchants
        start = DAY_START + scenario.start_h * 3600
        self.log = WorldLog(start=start, end=start + (hours or scenario.hours) * 3600)
        self._q: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = itertools.count()
        self._merchants = {m.id: m for m in city.merchants}
        self._by_region: dict[str, list[SimMerchant]] = defaultdict(list)
        for m in city.merchants:
            self._by_region[m.region_id].append(m)
        self._kitchen: dict[str, int] = defaultdict(int)
        self._peak = scenario.peak_per_hour()
        self._keys = itertools.count(1)
        self.couriers = CourierBehaviour(self)
        # Own streams: turning propensities on moves neither the city nor the demand.
        self.traits = (draw_city_traits((c.id for c in city.couriers),
                                        random.Random(seed * 1_000 + 3))
                       if self.cfg.propensities else None)
        self.seed = seed

    # -- the event loop -------------------------------------------------------------------
    def at(self, t: float, fn: Callable[..., None], *args: Any) -> None:
        heapq.heappush(self._q, (t, next(self._seq), fn, args))

    def now(self) -> float:
        return self.driver.now()

    def run(self, *, progress: Callable[[float, WorldLog], None] | None = None,
            stop: threading.Event | None = None) -> WorldLog:
        """Play events until the end time (or ``stop``); returns the log for the KPIs."""
        self._schedule_start()
        while self._q and self._q[0][0] <= self.log.end:
            if stop is not None and stop.is_set():
                self.log.end = self.now()
                break
            t, _, fn, args = heapq.heappop(self._q)
            self.driver.advance_to(t)
            fn(*args)
            if progress is not None:
                progress(t, self.log)
        else:
            self.driver.advance_to(self.log.end)
        self.close_books(self.log.end)
        return self.log

    def _schedule_start(self) -> None:
        start = self.log.start
        for region in self.city.regions:
            self._next_arrival(region.id, start)
        for spec in sorted(self.city.couriers, key=lambda c: c.id):
            run = CourierRun(spec=spec, pos=spec.home)
            self.log.couriers[spec.id] = run
            if spec.shift_end > start and spec.shift_start < self.log.end:
                self.at(max(start, spec.shift_start), self.couriers.shift_start, run)
        self.at(start + self.cfg.dispatch_every_s, self._dispatch_tick)
        self.at(start, self._sample)

    def close_books(self, end: float) -> None:
        for run in self.log.couriers.values():
            if run.shift_since is not None:
                run.shift_s += end - run.shift_since
                run.shift_since = end
            if run.busy_since is not None:
                run.busy_s += end - run.busy_since
                run.busy_since = end

    def _refused(self, exc: Refused) -> None:
        self.log.refusals[exc.code] += 1

    # -- consumers ------------------------------------------------------------------------
    def _next_arrival(self, region_id: str, t: float) -> None:
        while True:
            t += self.demand_rng.expovariate(self._peak / 3600.0)
            if t > self.log.end:
                return
            rate = self.scenario.orders_per_hour((t - DAY_START) / 3600)
            if self.demand_rng.random() * self._peak <= rate:
                self.at(t, self._arrival, region_id)
                return

    def _pick_merchant(self, region_id: str, dropoff: Point) -> SimMerchant:
        merchants = self._by_region[region_id]
        dist = [haversine_m(m.location, dropoff) for m in merchants]
        near = [(m, d) for m, d in zip(merchants, dist, strict=True)
                if d <= self.cfg.merchant_radius_m]
        if not near:
            return merchants[min(range(len(dist)), key=dist.__getitem__)]
        weights = [1 / (d + 300) for _, d in near]
        return self.demand_rng.choices([m for m, _ in near], weights)[0]

    def _converts(self, fees_minor: int, eta_s: float) -> bool:
        tolerance_min = self.scenario.eta_tolerance_min
        p = (self.cfg.base_conversion * math.exp(-max(0, fees_minor - 500) / 1500)
             * math.exp(-max(0.0, eta_s / 60 - tolerance_min) / 40))
        return self.demand_rng.random() < p

    def _arrival(self, region_id: str) -> None:
        self._next_arrival(region_id, self.now())
        region = next(r for r in self.city.regions if r.id == region_id)
        dropoff = region.random_point(self.demand_rng)
        merchant = self._pick_merchant(region_id, dropoff)
        ask = OrderAsk(consumer_id=self.demand_rng.choice(self.city.consumers[region_id]),
                       merchant_id=merchant.id,
                       item_id=self.demand_rng.choice(merchant.item_ids),
                       quantity=self.demand_rng.choice((1, 1, 2, 3)), dropoff=dropoff)
        try:
            q = self.actions.quote(ask)
            self.log.quotes += 1
            if not self._converts(q.fees_minor, q.eta_expected_at - self.now()):
                self.log.lost_quotes += 1
                return
            placed = self.actions.place(ask, key=f"sim-{next(self._keys)}")
        except Refused as exc:
            self._refused(exc)
            return
        self.log.orders[placed.order_id] = OrderRecord(
            id=placed.order_id, region_id=region_id, merchant_id=merchant.id,
            consumer_id=ask.consumer_id, dropoff=dropoff, placed_at=placed.placed_at,
            eta_expected_at=placed.eta_expected_at, eta_high_at=placed.eta_high_at,
            fees_minor=placed.fees_minor, pickup=merchant.location)
        confirm_in = self.kitchen_rng.uniform(*self.cfg.confirm_s)
        self.at(self.now() + confirm_in, self._confirm, placed.order_id)
        self.at(placed.eta_high_at + self.cfg.patience_s, self._maybe_cancel, placed.order_id)

    def _maybe_cancel(self, order_id: str) -> None:
        rec = self.log.orders[order_id]
        if not rec.open:
            return
        try:
            self.actions.cancel(rec.consumer_id, order_id, "too late")
            rec.cancelled_at = self.now()
            if rec.ready_at is None or rec.ready_at > self.now():
                self._kitchen[rec.merchant_id] = max(0, self._kitchen[rec.merchant_id] - 1)
        except Refused as exc:
            self._refused(exc)

    # -- merchants ------------------------------------------------------------------------
    def _confirm(self, order_id: str) -> None:
        rec = self.log.orders[order_id]
        if rec.cancelled_at is not None:
            return
        merchant = self._merchants[rec.merchant_id]
        try:
            self.actions.confirm(merchant.id, order_id, merchant.prep_time_s)
        except Refused as exc:
            self._refused(exc)
            return
        load = 1 + 0.08 * max(0, self._kitchen[merchant.id] - 2)
        self._kitchen[merchant.id] += 1
        spread = math.exp(self.kitchen_rng.gauss(0, self.scenario.prep_sigma))
        prep = merchant.prep_time_s * spread * load
        rec.ready_at = self.now() + max(120.0, prep)
        self.at(rec.ready_at, self._ready, order_id)

    def _ready(self, order_id: str) -> None:
        rec = self.log.orders[order_id]
        if rec.cancelled_at is not None:
            return
        self._kitchen[rec.merchant_id] = max(0, self._kitchen[rec.merchant_id] - 1)
        try:
            self.actions.mark_ready(rec.merchant_id, order_id)
        except Refused as exc:
            self._refused(exc)

    # -- dispatch and sampling ------------------------------------------------------------
    def _dispatch_tick(self) -> None:
        self.actions.dispatch(tuple(r.id for r in self.city.regions))
        for run in self.log.couriers.values():
            if run.phase == "idle" and not run.ending:
                offer = self.actions.current_offer(run.spec.id)
                if offer is not None:
                    run.phase = "deciding"
                    run.gen += 1
                    accept, after = self._answer(run, offer)
                    self.at(self.now() + after, self.couriers.decide, run, offer, run.gen,
                            accept)
        self.at(self.now() + self.cfg.dispatch_every_s, self._dispatch_tick)

    def _answer(self, run: CourierRun, offer: OfferView) -> tuple[bool | None, float]:
        """(accept or None = draw accept_p at the decision, seconds until the answer)."""
        if self.traits is None:
            return None, self.rng.uniform(*self.cfg.respond_s)
        recs = [self.log.orders[i] for i in offer.order_ids if i in self.log.orders]
        if not recs:
            return False, 0.0
        seen = features_seen(courier_at=run.where(self.now()),
                             merchant_at=self._merchants[recs[0].merchant_id].location,
                             dropoffs=[r.dropoff for r in recs], at_s=self.now())
        expires_in = None if offer.expires_at is None else offer.expires_at - self.now()
        rng = offer_rng(self.seed, run.spec.id, offer.order_ids)
        return answer(self.traits[run.spec.id], seen, rng, expires_in_s=expires_in)

    def _sample(self) -> None:
        runs = self.log.couriers.values()
        orders = self.log.orders.values()
        self.log.samples.append(Sample(
            t=self.now(), on_shift=sum(1 for r in runs if r.phase != "off"),
            busy=sum(1 for r in runs if r.busy_since is not None),
            open_orders=sum(1 for o in orders if o.open),
            delivered=sum(1 for o in orders if o.delivered_at is not None)))
        self.at(self.now() + self.cfg.sample_every_s, self._sample)
