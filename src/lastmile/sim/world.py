"""The discrete-event city: consumers, merchants and couriers acting on the platform.

One ``simpy.Environment`` owns the simulated clock; the world steps it and a
``Driver`` moves (``lastmile simulate``: a ``ManualClock``) or waits for
(``lastmile demo``: an accelerated wall clock) each step's time before it runs.
Everyone is a SimPy process and acts through an ``Actions`` adapter (in-process
use cases or the HTTP API), never by writing platform state directly:

- consumers of a region arrive as a Poisson process (thinning on the
  scenario's hourly rate), quote, convert with a probability that falls with
  fees and ETA, and place; each order's consumer then waits, and cancels when
  the food has not left the merchant well past the quoted window (interrupting
  the merchant's kitchen and the courier holding the order);
- each order's merchant confirms after a short delay and finishes the food
  after the estimate times a log-normal factor, slower when the kitchen is busy;
- couriers (``couriers.py``) start and end shifts, take offers, travel, pick up
  and deliver;
- the dispatch tick runs the dispatcher and interrupts idle couriers that have
  an offer; a courier accepting a move (reassignment) has the world interrupt the
  courier who held the orders (``Withdrawn``), which re-plans its route.

Same-time events run in SimPy's order: interrupts and process starts first
(URGENT), then timeouts in the order they were scheduled (FIFO); so same seed ->
same run (docs/simulator.md, "Architecture").
"""

from __future__ import annotations

import math
import random
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Protocol

import simpy

from lastmile.core.geo import Point, haversine_m
from lastmile.sim.actions import Actions, OrderAsk, Refused
from lastmile.sim.city import City, SimMerchant
from lastmile.sim.couriers import (
    Cancelled,
    Crew,
    FixedPropensity,
    OfferDecision,
    Offered,
    Steps,
    Withdrawn,
)
from lastmile.sim.couriers import courier as courier_process
from lastmile.sim.model import (
    CourierRun,
    OrderRecord,
    Phase,
    Sample,
    WorldConfig,
    WorldLog,
)
from lastmile.sim.propensity import HiddenPropensities, draw_city_traits
from lastmile.sim.scenarios import Scenario

__all__ = ["CourierRun", "Driver", "OrderRecord", "Sample", "World", "WorldConfig", "WorldLog"]

_M_PER_DEG = 111_195.0
_GRID_FROM = 64  # merchants in a region before picking one goes through a grid
_DELIVERING = (Phase.TO_DROPOFF, Phase.AT_DROPOFF)  # may answer offers (offers_on_the_go)


class Driver(Protocol):
    """The platform's clock as the world sees it: read it, and move (or wait) to a time."""

    def now(self) -> float: ...
    def advance_to(self, t: float) -> None: ...


class _MerchantGrid:
    """Merchants of a region in square cells of half the pick radius: the candidates within
    the radius of a point (the 5 x 5 cells around it), in the region's order (the order the
    weighted pick draws in)."""

    _REACH = (-2, -1, 0, 1, 2)

    def __init__(self, merchants: list[SimMerchant], radius_m: float):
        lat0 = sum(m.location.lat for m in merchants) / len(merchants)
        self.dlat = radius_m * 0.55 / _M_PER_DEG  # 10 % margin: 2 cells always span the radius
        self.dlng = self.dlat / max(0.1, math.cos(math.radians(lat0)))
        self.cells: dict[tuple[int, int], list[int]] = defaultdict(list)
        for i, m in enumerate(merchants):
            self.cells[self._cell(m.location)].append(i)

    def _cell(self, p: Point) -> tuple[int, int]:
        return math.floor(p.lat / self.dlat), math.floor(p.lng / self.dlng)

    def around(self, p: Point) -> list[int]:
        ci, cj = self._cell(p)
        cells = self.cells
        out = [i for di in self._REACH for dj in self._REACH
               for i in cells.get((ci + di, cj + dj), ())]
        out.sort()
        return out


class World:
    def __init__(self, *, city: City, scenario: Scenario, actions: Actions, driver: Driver,
                 seed: int, config: WorldConfig | None = None, hours: float | None = None,
                 decide: OfferDecision | None = None):
        self.city, self.scenario, self.actions, self.driver = city, scenario, actions, driver
        self.cfg = config or WorldConfig()
        # Separate streams: a change in courier behaviour or dispatch must not move demand.
        self.rng = random.Random(seed)  # couriers
        self.demand_rng = random.Random(seed * 1_000 + 1)  # consumers
        self.kitchen_rng = random.Random(seed * 1_000 + 2)  # merchants
        self._day_start = scenario.day_start
        start = self._day_start + scenario.start_h * 3600
        self.log = WorldLog(start=start, end=start + (hours or scenario.hours) * 3600)
        self.env = simpy.Environment(initial_time=start)
        self._regions = {r.id: r for r in city.regions}
        self._merchants = {m.id: m for m in city.merchants}
        self._by_region: dict[str, list[SimMerchant]] = defaultdict(list)
        for m in city.merchants:
            self._by_region[m.region_id].append(m)
        self._grids = {rid: _MerchantGrid(ms, self.cfg.merchant_radius_m)
                       for rid, ms in self._by_region.items() if len(ms) >= _GRID_FROM}
        self._kitchen: dict[str, int] = defaultdict(int)
        self._peak = scenario.peak_per_hour()
        self._keys = 0
        if decide is None and self.cfg.propensities:
            # Own stream: turning propensities on moves neither the city nor the demand.
            traits = draw_city_traits((c.id for c in city.couriers),
                                      random.Random(seed * 1_000 + 3))
            decide = HiddenPropensities(traits=traits, seed=seed, merchant_at={
                m.id: m.location for m in city.merchants}, pay=scenario.local_pay())
        self._crew = Crew(env=self.env, actions=actions, cfg=self.cfg, rng=self.rng,
                          decide=decide or FixedPropensity(self.cfg.accept_p, self.cfg.respond_s,
                                                           self.rng),
                          log=self.log, merchants=self._merchants, now=self.now,
                          withdraw=self._withdraw)
        self._couriers: dict[str, simpy.Process] = {}
        self._kitchens: dict[str, simpy.Process] = {}  # order id -> its kitchen, until ready
        self._offered: set[str] = set()  # couriers offered something they have not seen yet

    def now(self) -> float:
        return self.driver.now()

    # -- the run ----------------------------------------------------------------------
    def run(self, *, progress: Callable[[float, WorldLog], None] | None = None,
            stop: threading.Event | None = None, progress_every_s: float = 10.0) -> WorldLog:
        """Play the world until its end time (or ``stop``); returns the log for the KPIs.
        ``progress`` hears of it after the first step and then every ``progress_every_s``
        simulated seconds (a big day has millions of steps)."""
        self._start()
        env, end = self.env, self.log.end
        told = -math.inf
        while env.peek() <= end:
            if stop is not None and stop.is_set():
                self.log.end = self.now()
                break
            t = env.peek()
            self.driver.advance_to(t)
            env.step()
            if progress is not None and t - told >= progress_every_s:
                told = t
                progress(t, self.log)
        else:
            self.driver.advance_to(end)
        self.close_books(self.log.end)
        return self.log

    def _start(self) -> None:
        """Start every process, in this order (their first steps run in it too)."""
        start, env = self.log.start, self.env
        for region in self.city.regions:
            env.process(self._consumers(region.id))
        for spec in sorted(self.city.couriers, key=lambda c: c.id):
            run = CourierRun(spec=spec, pos=spec.home)
            self.log.enrol(run)
            if spec.shift_end > start and spec.shift_start < self.log.end:
                self._couriers[spec.id] = env.process(courier_process(self._crew, run))
        env.process(self._dispatcher())
        env.process(self._sampler())

    def close_books(self, end: float) -> None:
        self.log.close_books(end)

    def _refused(self, exc: Refused) -> None:
        self.log.refused(exc.code)

    # -- consumers ----------------------------------------------------------------------
    def _consumers(self, region_id: str) -> Steps:
        """A region's consumers: the next arrival is drawn before this one acts."""
        t = self._next_arrival(self.env.now)
        while t is not None:
            yield self.env.timeout(t - self.env.now)
            t = self._next_arrival(self.env.now)
            self._arrival(region_id)

    def _next_arrival(self, t: float) -> float | None:
        while True:
            t += self.demand_rng.expovariate(self._peak / 3600.0)
            if t > self.log.end:
                return None
            rate = self.scenario.orders_per_hour((t - self._day_start) / 3600)
            if self.demand_rng.random() * self._peak <= rate:
                return t

    def _pick_merchant(self, region_id: str, dropoff: Point) -> SimMerchant:
        merchants = self._by_region[region_id]
        grid = self._grids.get(region_id)
        pool = [merchants[i] for i in grid.around(dropoff)] if grid is not None else merchants
        near = [(m, d) for m in pool
                if (d := haversine_m(m.location, dropoff)) <= self.cfg.merchant_radius_m]
        if not near:
            dist = [haversine_m(m.location, dropoff) for m in merchants]
            return merchants[min(range(len(dist)), key=dist.__getitem__)]
        weights = [1 / (d + 300) for _, d in near]
        return self.demand_rng.choices([m for m, _ in near], weights)[0]

    def _converts(self, fees_minor: int, eta_s: float) -> bool:
        tolerance_min = self.scenario.eta_tolerance_min
        p = (self.cfg.base_conversion * math.exp(-max(0, fees_minor - 500) / 1500)
             * math.exp(-max(0.0, eta_s / 60 - tolerance_min) / 40))
        return self.demand_rng.random() < p

    def _arrival(self, region_id: str) -> None:
        dropoff = self._regions[region_id].random_point(self.demand_rng)
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
        except Refused as exc:
            self._refused(exc)
            return
        self.place(region_id, ask)

    def place(self, region_id: str, ask: OrderAsk) -> OrderRecord | None:
        """A consumer places ``ask`` now: the order is recorded, its kitchen starts and its
        consumer begins to wait (None when the platform refuses it). Arrivals come here
        after their quote; a scripted world (tests) may call it from a process of its own."""
        merchant = self._merchants[ask.merchant_id]
        try:
            self._keys += 1
            placed = self.actions.place(ask, key=f"sim-{self._keys}")
        except Refused as exc:
            self._refused(exc)
            return None
        rec = OrderRecord(
            id=placed.order_id, region_id=region_id, merchant_id=merchant.id,
            consumer_id=ask.consumer_id, dropoff=ask.dropoff, placed_at=placed.placed_at,
            eta_expected_at=placed.eta_expected_at, eta_high_at=placed.eta_high_at,
            eta_low_at=placed.eta_low_at,
            fees_minor=placed.fees_minor, pickup=merchant.location)
        self.log.placed(rec)
        confirm_in = self.kitchen_rng.uniform(*self.cfg.confirm_s)
        self._kitchens[rec.id] = self.env.process(self._kitchen_of(rec, confirm_in))
        self.env.process(self._patience(rec))
        return rec

    def _patience(self, rec: OrderRecord) -> Steps:
        """The consumer waits until ``patience_s`` past the quoted window, then cancels if the
        food has not left the merchant: the kitchen stops, the courier drops the order."""
        yield self._crew.until(rec.eta_high_at + self.cfg.patience_s)
        if not rec.open:
            return
        try:
            self.actions.cancel(rec.consumer_id, rec.id, "too late")
        except Refused as exc:
            self._refused(exc)
            return
        now = self.now()
        self.log.cancelled(rec, now)
        if rec.ready_at is None or rec.ready_at > now:
            self._kitchen[rec.merchant_id] = max(0, self._kitchen[rec.merchant_id] - 1)
        kitchen = self._kitchens.pop(rec.id, None)
        if kitchen is not None and kitchen.is_alive:
            kitchen.interrupt("cancelled")
        run = self.log.couriers.get(rec.courier_id) if rec.courier_id else None
        proc = self._couriers.get(rec.courier_id) if rec.courier_id else None
        if (run is not None and proc is not None and proc.is_alive and rec.id in run.orders
                and run.phase.holding):  # riding to a door too: its next batch (on the go)
            proc.interrupt(Cancelled(rec.id))

    def _withdraw(self, courier_id: str, cause: Withdrawn) -> None:
        """A move was accepted: the courier who held its orders is told (its app's
        ``courier.assignment_withdrawn``) if it still has any of them in its plan."""
        run = self.log.couriers.get(courier_id)
        proc = self._couriers.get(courier_id)
        if (run is not None and proc is not None and proc.is_alive and run.phase.holding
                and any(i in run.orders for i in cause.order_ids)):
            proc.interrupt(cause)

    # -- merchants ----------------------------------------------------------------------
    def _kitchen_of(self, rec: OrderRecord, confirm_in: float) -> Steps:
        """The merchant's side of one order: confirm, cook, hand over as ready. A
        cancellation (an interrupt) stops it."""
        merchant = self._merchants[rec.merchant_id]
        try:
            yield self.env.timeout(confirm_in)
            try:
                self.actions.confirm(merchant.id, rec.id, merchant.prep_time_s)
            except Refused as exc:
                self._refused(exc)
                return
            load = 1 + 0.08 * max(0, self._kitchen[merchant.id] - 2)
            self._kitchen[merchant.id] += 1
            spread = math.exp(self.kitchen_rng.gauss(0, self.scenario.prep_sigma))
            cook = max(120.0, merchant.prep_time_s * spread * load)
            rec.ready_at = self.now() + cook
            yield self.env.timeout(cook)
        except simpy.Interrupt:
            return  # cancelled: the consumer's side took it off the kitchen's load
        finally:
            self._kitchens.pop(rec.id, None)
        self._kitchen[merchant.id] = max(0, self._kitchen[merchant.id] - 1)
        try:
            self.actions.mark_ready(merchant.id, rec.id)
        except Refused as exc:
            self._refused(exc)

    # -- dispatch and sampling ------------------------------------------------------------
    def _dispatcher(self) -> Steps:
        """Every tick: a dispatch round, then each idle courier with an offer is interrupted
        (in courier id order; with ``offers_on_the_go`` a courier riding to a door too).
        Only couriers a round offered something are asked, unless the actions cannot say
        who (the demo's server dispatches on its own)."""
        regions = tuple(r.id for r in self.city.regions)
        idle = self.log.idle
        on_the_go = self.cfg.offers_on_the_go
        while True:
            yield self.env.timeout(self.cfg.dispatch_every_s)
            offered = self.actions.dispatch(regions)
            if offered is None:
                ask = sorted(idle)
            else:
                self._offered.update(offered)
                couriers = self.log.couriers
                self._offered -= {c for c in self._offered
                                  if c not in couriers or not couriers[c].phase.on_shift}
                ask = sorted(c for c in self._offered
                             if c in idle or (on_the_go and couriers[c].phase in _DELIVERING))
            for courier_id in ask:
                proc = self._couriers.get(courier_id)
                if proc is None or not proc.is_alive:
                    continue
                offer = self.actions.current_offer(courier_id)
                self._offered.discard(courier_id)
                if offer is not None:
                    proc.interrupt(Offered(offer))

    def _sampler(self) -> Steps:
        log = self.log
        while True:
            log.samples.append(Sample(t=self.now(), on_shift=log.on_shift(), busy=log.busy(),
                                      open_orders=log.open_orders, delivered=log.delivered))
            yield self.env.timeout(self.cfg.sample_every_s)
