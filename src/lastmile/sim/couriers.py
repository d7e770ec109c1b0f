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
  and goes idle if nothing is left;
- ``Withdrawn(order_ids)``: orders it holds and has not picked up went to another
  courier (reassignment: what its app hears as ``courier.assignment_withdrawn``); it
  stops going to their merchant and rides on to the rest of its route, or goes idle.

An accepted offer is a route (``_trip``): a stacked offer's stops in order (each
pickup merchant, then each door), a plain offer's merchant then its doors. While
holding a stack the courier declines any extension it is offered. A courier that
accepts a move (an offer naming ``from_courier_id``) has the world tell the giver
(``Crew.withdraw``), as the platform's stream tells the giver's app.

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
from lastmile.core.offers import OfferStop
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


class Withdrawn(NamedTuple):
    """Interrupt cause: orders this courier held (not picked up) were moved to another
    courier, who accepted them (``courier.assignment_withdrawn``)."""

    order_ids: tuple[str, ...]


def _nobody(courier_id: str, cause: Withdrawn) -> None:
    """A crew without a world to tell: the giver learns at the merchant's counter."""


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
    # Tell courier ``courier_id`` (the giver of a move) its orders were withdrawn.
    withdraw: Callable[[str, Withdrawn], None] = _nobody

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
        yield from _trip(crew, run, offer.stops)
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
    if offer.from_courier_id is not None:  # a move: the giver's app hears of it
        run.moved_in += len(known)
        crew.withdraw(offer.from_courier_id, Withdrawn(tuple(o.id for o in known)))
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


# -- a trip: every pickup stop in order, then every drop-off in order ----------------
def _trip(crew: Crew, run: CourierRun, stops: tuple[OfferStop, ...]) -> Steps:
    """Follow the accepted offer's route. A stacked offer (``stops``): ride to each pickup
    merchant in turn (arrive, wait for that merchant's food, pick it up), then to each door
    in the route's order. A plain offer: its one merchant, then its doors in the offer's
    order (orders joining at the merchant go last). The route is re-planned whenever a stop
    loses its orders (a cancellation, a withdrawal, a refusal): its merchant is skipped, the
    courier rides on to the next stop it still has orders for, from where it is."""
    log = crew.log
    stacked = any(s.kind == "pickup" for s in stops)
    if stacked:
        run.orders = _dropoff_order(run.orders, stops)
    merchants = [s.merchant_id for s in stops if s.kind == "pickup"] if stacked else [
        log.orders[run.orders[0]].merchant_id]
    while (merchant_id := _next_pickup(log, run, merchants)) is not None:
        yield from _pick_up_at(crew, run, merchant_id, stacked=stacked)
    while run.orders:
        order_id = run.orders[0]
        log.move(run, Phase.TO_DROPOFF, crew.now())
        if not (yield from _travel(crew, run, log.orders[order_id].dropoff,
                                   needed=lambda o=order_id: o in run.orders)):
            continue  # re-plan: that order is gone
        try:
            crew.actions.arrive(run.spec.id, order_id)
        except Refused as exc:
            _drop(crew, run, order_id, exc)
            continue
        log.move(run, Phase.AT_DROPOFF, crew.now())
        yield from _wait(crew, run, crew.cfg.dropoff_service_s)
        if order_id in run.orders:
            run.orders.remove(order_id)
        try:
            crew.actions.deliver(run.spec.id, order_id)
            log.delivered_order(log.orders[order_id], crew.now())
            run.delivered += 1
        except Refused as exc:
            log.refused(exc.code)


def _dropoff_order(orders: list[str], stops: tuple[OfferStop, ...]) -> list[str]:
    """The held orders in the route's drop-off order (any the route omits go last)."""
    ranked = [i for s in stops if s.kind == "dropoff" for i in s.order_ids if i in orders]
    return ranked + [i for i in orders if i not in ranked]


def _still_to_pick_up(log: WorldLog, run: CourierRun, merchant_id: str) -> list[str]:
    return [i for i in run.orders
            if log.orders[i].merchant_id == merchant_id and log.orders[i].picked_up_at is None]


def _next_pickup(log: WorldLog, run: CourierRun, merchants: list[str]) -> str | None:
    """The first merchant of the route with an order still to pick up (any held order of a
    merchant off the route comes after the route's merchants)."""
    for order_id in run.orders:
        rec = log.orders[order_id]
        if rec.picked_up_at is None and rec.merchant_id not in merchants:
            merchants.append(rec.merchant_id)
    return next((m for m in merchants if _still_to_pick_up(log, run, m)), None)


def _pick_up_at(crew: Crew, run: CourierRun, merchant_id: str, *, stacked: bool) -> Steps:
    """Ride to the merchant, arrive for its orders, wait for the food and pick it up; back
    early (to re-plan) when the merchant has nothing left for this courier."""
    log = crew.log
    log.move(run, Phase.TO_PICKUP, crew.now())
    if not (yield from _travel(crew, run, crew.merchants[merchant_id].location,
                               needed=lambda: bool(_still_to_pick_up(log, run, merchant_id)))):
        return  # every order of this merchant was cancelled or withdrawn on the way
    log.move(run, Phase.AT_PICKUP, crew.now())
    run.leg = None
    for order_id in _still_to_pick_up(log, run, merchant_id):
        try:
            crew.actions.arrive(run.spec.id, order_id)
        except Refused as exc:
            _drop(crew, run, order_id, exc)
    if _still_to_pick_up(log, run, merchant_id):
        yield from _collect(crew, run, merchant_id, stacked=stacked)


def _travel(crew: Crew, run: CourierRun, to: Point, *, needed: Callable[[], bool]) -> Steps:
    """Move to ``to`` in a straight line x road factor with log-normal noise. An order lost
    on the way (cancelled or withdrawn) leaves the plan; True when arrived, False as soon as
    the ride is no longer ``needed`` (the courier stops where it is and re-plans)."""
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
            _lost(run, wake)
            if not run.orders or run.leg is None or not needed():
                return False
            wait = crew.until(run.leg[3])


def _wait(crew: Crew, run: CourierRun, seconds: float) -> Steps:
    """Wait ``seconds`` whatever the courier is told meanwhile (a handover at the door)."""
    wait = crew.env.timeout(seconds)
    while True:
        try:
            yield wait
            return
        except simpy.Interrupt as wake:
            _lost(run, wake)


def _collect(crew: Crew, run: CourierRun, merchant_id: str, *, stacked: bool) -> Steps:
    """Wait for this merchant's food (taking extra orders of it offered meanwhile, unless
    holding a stack) and pick it all up; False if every order of the merchant was
    cancelled, withdrawn or refused meanwhile."""
    log = crew.log
    while True:
        here = _still_to_pick_up(log, run, merchant_id)
        readies = [log.orders[i].ready_at for i in here]
        ready = max((r for r in readies if r is not None), default=crew.now() + 60)
        try:
            yield crew.until(max(crew.now(), ready) + crew.cfg.pickup_service_s)
        except simpy.Interrupt as wake:
            _lost(run, wake)
            if not _still_to_pick_up(log, run, merchant_id):
                return False
            continue
        if _extend(crew, run, merchant_id, stacked=stacked):
            continue
        for order_id in _still_to_pick_up(log, run, merchant_id):
            rec = log.orders[order_id]
            if rec.ready_at is None or rec.ready_at > crew.now():
                continue  # not ready (not even confirmed): wait for it
            try:
                crew.actions.pick_up(run.spec.id, order_id)
                log.picked_up(rec, crew.now())
            except Refused as exc:
                _drop(crew, run, order_id, exc)
        if not any(log.orders[i].merchant_id == merchant_id for i in run.orders):
            return False
        if not _still_to_pick_up(log, run, merchant_id):
            return True


def _extend(crew: Crew, run: CourierRun, merchant_id: str, *, stacked: bool) -> bool:
    """Take extra orders of this merchant offered while waiting; True if any joined. A
    courier holding a stack declines whatever it is offered until the stack is done."""
    log = crew.log
    offer = crew.actions.current_offer(run.spec.id)
    if offer is None:
        return False
    same = all(i in log.orders and log.orders[i].merchant_id == merchant_id
               for i in offer.order_ids)
    try:
        if stacked or offer.stops or not same:
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


def _lost(run: CourierRun, wake: simpy.Interrupt) -> None:
    """Orders the courier was told it no longer holds leave its plan."""
    cause = wake.cause
    if isinstance(cause, Cancelled):
        gone: tuple[str, ...] = (cause.order_id,)
    elif isinstance(cause, Withdrawn):
        gone = cause.order_ids
        run.withdrawn += sum(1 for i in gone if i in run.orders)
    else:
        return
    run.orders[:] = [i for i in run.orders if i not in gone]
