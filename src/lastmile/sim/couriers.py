"""Simulated couriers as SimPy processes: a shift, offers, travel, pickup and drop-off.

``courier(crew, run)`` is one courier's whole shift as a generator; where it is
in the generator is where it is in its day, and ``run.phase`` (a ``Phase``)
mirrors that for whoever watches (the dispatch tick, the samples, the demo).
It is told things by interrupts:

- ``Offered(offer)``: the dispatch tick saw an offer for this idle courier. The
  courier calls its ``OfferDecision`` once, which answers (accept?, respond after
  s); it waits that long (or until its shift ends) and accepts or declines;
- ``Cancelled(order_id)``: a consumer cancelled an order this courier holds; it
  drops the order on the spot (turning back, or no longer waiting for that food)
  and goes idle if nothing is left.

Every step acts through ``crew.actions``; a refusal (an offer expired, an
order was cancelled meanwhile) is counted and drops that order from the plan.
This module knows nothing of the world: ``Crew`` carries what a courier needs.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import simpy

from lastmile.core.geo import Point, haversine_m
from lastmile.sim.actions import Actions, OfferView, Refused
from lastmile.sim.city import SimCourierSpec, SimMerchant
from lastmile.sim.model import CourierRun, OrderRecord, Phase, WorldConfig, WorldLog

Steps = Generator[simpy.Event, Any, Any]


class Offered(NamedTuple):
    """Interrupt cause: a new offer for an idle courier."""

    offer: OfferView


class Cancelled(NamedTuple):
    """Interrupt cause: the consumer cancelled an order this courier holds."""

    order_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferSeen:
    """What a courier knows when it looks at an offer (input of an ``OfferDecision``)."""

    courier: SimCourierSpec
    at: Point  # where the courier is
    offer: OfferView
    orders: tuple[OrderRecord, ...]  # the offer's orders (pickup, drop-off, fees, ETAs)
    now: float


class OfferDecision(Protocol):
    """The courier's answer to an offer: (accept?, seconds until it answers). One call
    per offer seen, so a model of individual propensities plugs in here."""

    def __call__(self, seen: OfferSeen) -> tuple[bool, float]: ...


@dataclass(frozen=True, slots=True)
class FixedPropensity:
    """Everyone alike: answers after uniform ``respond_s``, accepts with ``accept_p``.

    Draws the answer time then the acceptance from ``rng`` (the couriers' stream)."""

    accept_p: float
    respond_s: tuple[float, float]
    rng: random.Random

    def __call__(self, seen: OfferSeen) -> tuple[bool, float]:
        respond = self.rng.uniform(*self.respond_s)
        return self.rng.random() < self.accept_p, respond


@dataclass(frozen=True, slots=True, kw_only=True)
class Crew:
    """What courier processes share: the environment, the platform, the world's records."""

    env: simpy.Environment
    actions: Actions
    cfg: WorldConfig
    rng: random.Random  # the couriers' stream (travel noise; FixedPropensity's draws)
    decide: OfferDecision
    log: WorldLog
    merchants: dict[str, SimMerchant]
    now: Callable[[], float]  # the platform's clock (env.now, or the demo's wall-paced clock)

    def until(self, t: float) -> simpy.Timeout:
        return self.env.timeout(max(0.0, t - self.env.now))


def courier(crew: Crew, run: CourierRun) -> Steps:
    """One courier's shift, from its start to going home."""
    spec, log = run.spec, crew.log
    if spec.shift_start > crew.env.now:
        yield crew.until(spec.shift_start)
    duration = int(spec.shift_end - crew.now())
    if duration < 600:
        return
    try:
        crew.actions.start_shift(spec.id, f"dev-{spec.id}", duration)
    except Refused as exc:
        log.refused(exc.code)
        return
    run.pos = spec.home
    log.move(run, Phase.IDLE, crew.now())
    _ping(crew, run)
    end = crew.until(spec.shift_end)
    crew.env.process(_pinger(crew, run))
    while True:
        try:
            yield end  # idle until an offer comes, or the shift ends
            break
        except simpy.Interrupt as wake:
            if not isinstance(wake.cause, Offered):
                continue  # a stale cancellation: nothing held
            offer = wake.cause.offer
        log.move(run, Phase.DECIDING, crew.now())
        known = tuple(log.orders[i] for i in offer.order_ids if i in log.orders)
        accept, respond_s = crew.decide(OfferSeen(courier=spec, at=run.where(crew.now()),
                                                  offer=offer, orders=known, now=crew.now()))
        answered = yield crew.env.timeout(respond_s) | end
        if end in answered:
            break  # the shift ended while deciding: go home, the offer lapses
        if not (accept and known):
            _decline(crew, run, offer)
            _become_idle(crew, run)
            continue
        if not _accept(crew, run, offer, known):
            _become_idle(crew, run)
            continue
        yield from _trip(crew, run)
        _become_idle(crew, run)
        if end.processed:
            break  # the shift ended during the trip: home now
    _go_home(crew, run)


def _accept(crew: Crew, run: CourierRun, offer: OfferView,
            known: Sequence[OrderRecord]) -> bool:
    try:
        crew.actions.accept(run.spec.id, offer.id)
    except Refused as exc:
        crew.log.refused(exc.code)
        return False
    crew.log.move(run, Phase.TO_PICKUP, crew.now())
    run.orders = [o.id for o in known]
    for rec in known:
        rec.courier_id = run.spec.id
    return True


def _decline(crew: Crew, run: CourierRun, offer: OfferView) -> None:
    try:
        crew.actions.decline(run.spec.id, offer.id)
    except Refused as exc:
        crew.log.refused(exc.code)


def _become_idle(crew: Crew, run: CourierRun) -> None:
    now = crew.now()
    run.orders, run.pos, run.leg = [], run.where(now), None
    crew.log.move(run, Phase.IDLE, now)


def _go_home(crew: Crew, run: CourierRun) -> None:
    try:
        crew.actions.end_shift(run.spec.id)
    except Refused as exc:
        crew.log.refused(exc.code)
        return  # still on shift as far as the platform knows; offered nothing more
    crew.log.move(run, Phase.OFF, crew.now())


def _ping(crew: Crew, run: CourierRun) -> None:
    try:
        crew.actions.ping(run.spec.id, f"dev-{run.spec.id}", run.where(crew.now()))
    except Refused as exc:
        crew.log.refused(exc.code)


def _pinger(crew: Crew, run: CourierRun) -> Steps:
    """The courier's app: its position every ``ping_every_s`` while on shift."""
    while True:
        yield crew.env.timeout(crew.cfg.ping_every_s)
        if not run.phase.on_shift:
            return
        _ping(crew, run)


# -- a trip: to the merchant, wait for the food, deliver in sequence -------------------
def _trip(crew: Crew, run: CourierRun) -> Steps:
    log = crew.log
    merchant = crew.merchants[log.orders[run.orders[0]].merchant_id]
    if not (yield from _travel(crew, run, merchant.location)):
        return  # every order was cancelled on the way
    log.move(run, Phase.AT_PICKUP, crew.now())
    run.leg = None
    for order_id in list(run.orders):
        try:
            crew.actions.arrive(run.spec.id, order_id)
        except Refused as exc:
            _drop(crew, run, order_id, exc)
    if not run.orders or not (yield from _collect(crew, run)):
        return
    while run.orders:
        log.move(run, Phase.TO_DROPOFF, crew.now())
        yield from _travel(crew, run, log.orders[run.orders[0]].dropoff)
        order_id = run.orders[0]
        try:
            crew.actions.arrive(run.spec.id, order_id)
        except Refused as exc:
            _drop(crew, run, order_id, exc)
            continue
        log.move(run, Phase.AT_DROPOFF, crew.now())
        yield crew.env.timeout(crew.cfg.dropoff_service_s)
        run.orders.pop(0)
        try:
            crew.actions.deliver(run.spec.id, order_id)
            log.delivered_order(log.orders[order_id], crew.now())
            run.delivered += 1
        except Refused as exc:
            log.refused(exc.code)


def _travel(crew: Crew, run: CourierRun, to: Point) -> Steps:
    """Move to ``to`` in a straight line x road factor with log-normal noise. A cancellation
    on the way drops its order; True when arrived, False if nothing is left to carry."""
    now = crew.now()
    start = run.where(now)
    noise = math.exp(crew.rng.gauss(0, crew.cfg.travel_noise))
    travel = haversine_m(start, to) * crew.cfg.road_factor / run.spec.speed_mps * noise
    run.pos, run.leg = to, (start, to, now, now + travel)
    wait = crew.env.timeout(travel)
    while True:
        try:
            yield wait
            return True
        except simpy.Interrupt as wake:
            _cancelled(run, wake)
            if not run.orders or run.leg is None:
                return False
            wait = crew.until(run.leg[3])


def _collect(crew: Crew, run: CourierRun) -> Steps:
    """Wait for the food (taking extra orders of this merchant offered meanwhile) and pick
    everything up; False if every order was cancelled or refused meanwhile."""
    log = crew.log
    while True:
        readies = [log.orders[i].ready_at for i in run.orders]
        ready = max((r for r in readies if r is not None), default=crew.now() + 60)
        try:
            yield crew.until(max(crew.now(), ready) + crew.cfg.pickup_service_s)
        except simpy.Interrupt as wake:
            _cancelled(run, wake)
            if not run.orders:
                return False
            continue
        if _extend(crew, run):
            continue
        for order_id in list(run.orders):
            rec = log.orders[order_id]
            if rec.picked_up_at is not None:
                continue
            if rec.ready_at is None or rec.ready_at > crew.now():
                continue  # not ready (not even confirmed): wait for it
            try:
                crew.actions.pick_up(run.spec.id, order_id)
                log.picked_up(rec, crew.now())
            except Refused as exc:
                _drop(crew, run, order_id, exc)
        if not run.orders:
            return False
        if all(log.orders[i].picked_up_at is not None for i in run.orders):
            return True


def _extend(crew: Crew, run: CourierRun) -> bool:
    """Take extra orders of this merchant offered while waiting; True if any joined."""
    log = crew.log
    offer = crew.actions.current_offer(run.spec.id)
    if offer is None:
        return False
    merchant_id = log.orders[run.orders[0]].merchant_id
    same = all(i in log.orders and log.orders[i].merchant_id == merchant_id
               for i in offer.order_ids)
    try:
        if not same:
            crew.actions.decline(run.spec.id, offer.id)
            return False
        crew.actions.accept(run.spec.id, offer.id)
    except Refused as exc:
        log.refused(exc.code)
        return False
    for order_id in offer.order_ids:
        log.orders[order_id].courier_id = run.spec.id
        try:
            crew.actions.arrive(run.spec.id, order_id)
            run.orders.append(order_id)
        except Refused as exc:
            log.refused(exc.code)
    return True


def _drop(crew: Crew, run: CourierRun, order_id: str, exc: Refused) -> None:
    crew.log.refused(exc.code)
    if order_id in run.orders:
        run.orders.remove(order_id)


def _cancelled(run: CourierRun, wake: simpy.Interrupt) -> None:
    if isinstance(wake.cause, Cancelled) and wake.cause.order_id in run.orders:
        run.orders.remove(wake.cause.order_id)
