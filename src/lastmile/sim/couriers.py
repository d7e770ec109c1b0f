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
from dataclasses import dataclass, field
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
        yield from _trip(crew, run, offer)
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
    _take(crew, run, offer, known)
    return True


def _take(crew: Crew, run: CourierRun, offer: OfferView, known: Sequence[OrderRecord]) -> None:
    """The accepted orders are this courier's; a move's giver is told (its app hears of it)."""
    for rec in known:
        rec.courier_id = run.spec.id
    if offer.from_courier_id is not None:
        run.moved_in += len(known)
        crew.withdraw(offer.from_courier_id, Withdrawn(tuple(o.id for o in known)))


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
@dataclass(slots=True, kw_only=True)
class _Batch:
    """The work of one accepted offer: its orders in drop-off order (extensions taken at
    the merchant join them) and its pickup merchants in the route's order."""

    orders: list[str]
    merchants: list[str]
    stacked: bool  # a stack: extensions are declined until it is done

    @staticmethod
    def of(offer: OfferView, known: Sequence[OrderRecord]) -> _Batch:
        ids = [o.id for o in known]
        pickups = [s.merchant_id for s in offer.stops if s.kind == "pickup"]
        if pickups:
            return _Batch(orders=_dropoff_order(ids, offer.stops), merchants=pickups,
                          stacked=True)
        return _Batch(orders=ids, merchants=[known[0].merchant_id], stacked=False)


@dataclass(slots=True, kw_only=True)
class _Route:
    """A courier's trip: batches of work in the order accepted (an offer answered while
    delivering queues after the current one), and that answer while it is being given."""

    batches: list[_Batch] = field(default_factory=list)
    answering: simpy.Process | None = None


def _trip(crew: Crew, run: CourierRun, offer: OfferView) -> Steps:
    """Follow the accepted offer's route. A stacked offer (``stops``): ride to each pickup
    merchant in turn (arrive, wait for that merchant's food, pick it up), then to each door
    in the route's order. A plain offer: its one merchant, then its doors in the offer's
    order (orders joining at the merchant go last). The route is re-planned whenever a stop
    loses its orders (a cancellation, a withdrawal, a refusal): its merchant is skipped, the
    courier rides on to the next stop it still has orders for, from where it is. An offer
    accepted while delivering (``WorldConfig.offers_on_the_go``) is ridden after the last
    door; a trip ends once nothing is held and no answer is pending."""
    log = crew.log
    known = [log.orders[i] for i in run.orders]
    route = _Route(batches=[_Batch.of(offer, known)])
    run.orders = list(route.batches[0].orders)
    while route.batches:
        batch = route.batches[0]
        while (merchant_id := _next_pickup(log, run, batch)) is not None:
            yield from _pick_up_at(crew, run, route, batch, merchant_id)
        while (order_id := next((i for i in batch.orders if i in run.orders), None)):
            yield from _drop_off(crew, run, route, order_id)
        route.batches.pop(0)
        if not route.batches and route.answering is not None and route.answering.is_alive:
            yield from _await_answer(crew, run, route)


def _drop_off(crew: Crew, run: CourierRun, route: _Route, order_id: str) -> Steps:
    """Ride to the order's door, arrive, hand over, deliver."""
    log = crew.log
    log.move(run, Phase.TO_DROPOFF, crew.now())
    if not (yield from _travel(crew, run, route, log.orders[order_id].dropoff,
                               needed=lambda: order_id in run.orders)):
        return  # re-plan: that order is gone
    try:
        crew.actions.arrive(run.spec.id, order_id)
    except Refused as exc:
        _drop(crew, run, order_id, exc)
        return
    log.move(run, Phase.AT_DROPOFF, crew.now())
    yield from _wait(crew, run, route, crew.cfg.dropoff_service_s)
    if order_id in run.orders:
        run.orders.remove(order_id)
    try:
        crew.actions.deliver(run.spec.id, order_id)
        log.delivered_order(log.orders[order_id], crew.now())
        run.delivered += 1
    except Refused as exc:
        log.refused(exc.code)


def _answer(crew: Crew, run: CourierRun, route: _Route, offer: OfferView) -> Steps:
    """An offer seen while delivering: decided as any offer (the courier keeps riding
    meanwhile); accepted, its work queues after the current batch."""
    log = crew.log
    known = tuple(log.orders[i] for i in offer.order_ids if i in log.orders)
    accept, respond_s = crew.decide(OfferSeen(courier=run.spec, at=run.where(crew.now()),
                                              offer=offer, orders=known, now=crew.now()))
    yield crew.env.timeout(respond_s)
    if not (accept and known):
        _decline(crew, run, offer)
        return
    try:
        crew.actions.accept(run.spec.id, offer.id)
    except Refused as exc:
        log.refused(exc.code)
        return
    batch = _Batch.of(offer, known)
    route.batches.append(batch)
    run.orders.extend(batch.orders)
    _take(crew, run, offer, known)


def _await_answer(crew: Crew, run: CourierRun, route: _Route) -> Steps:
    """At the last door with an offer still on its screen: wait for its own answer."""
    answering = route.answering
    while answering is not None and answering.is_alive:
        try:
            yield answering
        except simpy.Interrupt as wake:
            _told(crew, run, route, wake)


def _dropoff_order(orders: list[str], stops: tuple[OfferStop, ...]) -> list[str]:
    """The orders in the route's drop-off order (any the route omits go last)."""
    ranked = [i for s in stops if s.kind == "dropoff" for i in s.order_ids if i in orders]
    return ranked + [i for i in orders if i not in ranked]


def _still_to_pick_up(log: WorldLog, run: CourierRun, batch: _Batch, merchant_id: str
                      ) -> list[str]:
    return [i for i in batch.orders if i in run.orders
            and log.orders[i].merchant_id == merchant_id and log.orders[i].picked_up_at is None]


def _next_pickup(log: WorldLog, run: CourierRun, batch: _Batch) -> str | None:
    """The first merchant of the batch's route with an order still to pick up."""
    return next((m for m in batch.merchants if _still_to_pick_up(log, run, batch, m)), None)


def _pick_up_at(crew: Crew, run: CourierRun, route: _Route, batch: _Batch,
                merchant_id: str) -> Steps:
    """Ride to the merchant, arrive for its orders, wait for the food and pick it up; back
    early (to re-plan) when the merchant has nothing left for this courier."""
    log = crew.log

    def here() -> list[str]:
        return _still_to_pick_up(log, run, batch, merchant_id)

    log.move(run, Phase.TO_PICKUP, crew.now())
    if not (yield from _travel(crew, run, route, crew.merchants[merchant_id].location,
                               needed=lambda: bool(here()))):
        return  # every order of this merchant was cancelled or withdrawn on the way
    log.move(run, Phase.AT_PICKUP, crew.now())
    run.leg = None
    for order_id in here():
        try:
            crew.actions.arrive(run.spec.id, order_id)
        except Refused as exc:
            _drop(crew, run, order_id, exc)
    while here():  # wait for the food, taking extensions meanwhile; pick up what is ready
        try:
            yield crew.until(max(crew.now(), _ready(crew, here())) + crew.cfg.pickup_service_s)
        except simpy.Interrupt as wake:
            _told(crew, run, route, wake)
            continue
        if _extend(crew, run, batch, merchant_id):
            continue
        for order_id in here():
            rec = log.orders[order_id]
            if rec.ready_at is None or rec.ready_at > crew.now():
                continue  # not ready (not even confirmed): wait for it
            try:
                crew.actions.pick_up(run.spec.id, order_id)
                log.picked_up(rec, crew.now())
            except Refused as exc:
                _drop(crew, run, order_id, exc)


def _ready(crew: Crew, order_ids: list[str]) -> float:
    """When the last of these orders' food is ready (a minute from now if none knows)."""
    readies = [r for i in order_ids if (r := crew.log.orders[i].ready_at) is not None]
    return max(readies, default=crew.now() + 60)


def _travel(crew: Crew, run: CourierRun, route: _Route, to: Point, *,
            needed: Callable[[], bool]) -> Steps:
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
            _told(crew, run, route, wake)
            if not run.orders or run.leg is None or not needed():
                return False
            wait = crew.until(run.leg[3])


def _wait(crew: Crew, run: CourierRun, route: _Route, seconds: float) -> Steps:
    """Wait ``seconds`` whatever the courier is told meanwhile (a handover at the door)."""
    wait = crew.env.timeout(seconds)
    while True:
        try:
            yield wait
            return
        except simpy.Interrupt as wake:
            _told(crew, run, route, wake)


def _extend(crew: Crew, run: CourierRun, batch: _Batch, merchant_id: str) -> bool:
    """Take extra orders of this merchant offered while waiting; True if any joined. A
    courier holding a stack declines whatever it is offered until the stack is done."""
    log = crew.log
    offer = crew.actions.current_offer(run.spec.id)
    if offer is None:
        return False
    same = all(i in log.orders and log.orders[i].merchant_id == merchant_id
               for i in offer.order_ids)
    try:
        if batch.stacked or offer.stops or not same:
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
            batch.orders.append(order_id)
        except Refused as exc:
            log.refused(exc.code)
    return True


def _drop(crew: Crew, run: CourierRun, order_id: str, exc: Refused) -> None:
    crew.log.refused(exc.code)
    if order_id in run.orders:
        run.orders.remove(order_id)


def _told(crew: Crew, run: CourierRun, route: _Route, wake: simpy.Interrupt) -> None:
    """What the courier is told on a trip: orders it no longer holds (a cancellation, a
    withdrawal) leave its plan; an offer seen while delivering is answered on the go."""
    cause = wake.cause
    if isinstance(cause, Offered):
        if route.answering is None or not route.answering.is_alive:
            route.answering = crew.env.process(_answer(crew, run, route, cause.offer))
        return
    if isinstance(cause, Cancelled):
        gone: tuple[str, ...] = (cause.order_id,)
    elif isinstance(cause, Withdrawn):
        gone = cause.order_ids
        run.withdrawn += sum(1 for i in gone if i in run.orders)
    else:
        return
    run.orders[:] = [i for i in run.orders if i not in gone]
