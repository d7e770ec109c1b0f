"""How simulated couriers behave: shifts, offers, travel, pickup and drop-off.

Every step acts through the world's ``Actions``; a refusal (the order was
cancelled, the offer expired) drops that order from the courier's plan. Events
carry the courier's plan generation, so a step scheduled before a change of
plan is ignored when it fires.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from lastmile.core.geo import Point, haversine_m
from lastmile.sim.actions import OfferView, Refused

if TYPE_CHECKING:
    from lastmile.sim.world import CourierRun, World


class CourierBehaviour:
    def __init__(self, world: World):
        self.w = world

    # -- shifts and pings -----------------------------------------------------------------
    def shift_start(self, run: CourierRun) -> None:
        w = self.w
        now = w.now()
        duration = int(run.spec.shift_end - now)
        if duration < 600:
            return
        try:
            w.actions.start_shift(run.spec.id, f"dev-{run.spec.id}", duration)
        except Refused as exc:
            w._refused(exc)
            return
        run.phase, run.shift_since, run.pos = "idle", now, run.spec.home
        self.ping(run)
        w.at(run.spec.shift_end, self.shift_end, run)

    def shift_end(self, run: CourierRun) -> None:
        run.ending = True
        if run.phase in ("idle", "deciding"):
            self._go_home(run)

    def _go_home(self, run: CourierRun) -> None:
        w = self.w
        try:
            w.actions.end_shift(run.spec.id)
        except Refused as exc:
            w._refused(exc)
            return
        run.phase, run.gen = "off", run.gen + 1
        if run.shift_since is not None:
            run.shift_s += w.now() - run.shift_since
            run.shift_since = None

    def ping(self, run: CourierRun) -> None:
        w = self.w
        if run.phase == "off":
            return
        try:
            w.actions.ping(run.spec.id, f"dev-{run.spec.id}", run.where(w.now()))
        except Refused as exc:
            w._refused(exc)
        w.at(w.now() + w.cfg.ping_every_s, self.ping, run)

    # -- offers ---------------------------------------------------------------------------
    def decide(self, run: CourierRun, offer: OfferView, gen: int,
               accept: bool | None = None) -> None:
        """Answer the offer: ``accept`` when the world decided (sim.propensity), else a
        draw of ``accept_p``."""
        w = self.w
        if gen != run.gen or run.phase != "deciding":
            return
        known = [i for i in offer.order_ids if i in w.log.orders]
        if run.ending or not known or not (
                w.rng.random() < w.cfg.accept_p if accept is None else accept):
            try:
                w.actions.decline(run.spec.id, offer.id)
            except Refused as exc:
                w._refused(exc)
            self.become_idle(run)
            return
        try:
            w.actions.accept(run.spec.id, offer.id)
        except Refused as exc:
            w._refused(exc)
            self.become_idle(run)
            return
        run.busy_since = w.now()
        run.orders = list(known)
        for order_id in known:
            w.log.orders[order_id].courier_id = run.spec.id
        merchant = w._merchants[w.log.orders[known[0]].merchant_id]
        run.phase = "to_pickup"
        self._go(run, merchant.location, self.at_merchant)

    def become_idle(self, run: CourierRun) -> None:
        w = self.w
        run.phase, run.orders, run.gen = "idle", [], run.gen + 1
        run.pos, run.leg = run.where(w.now()), None
        if run.busy_since is not None:
            run.busy_s += w.now() - run.busy_since
            run.busy_since = None
        if run.ending:
            self._go_home(run)

    # -- moving ---------------------------------------------------------------------------
    def _go(self, run: CourierRun, to: Point, then: Callable[[CourierRun, int], None]) -> None:
        w = self.w
        now = w.now()
        start = run.where(now)
        noise = math.exp(w.rng.gauss(0, w.cfg.travel_noise))
        travel = haversine_m(start, to) * w.cfg.road_factor / run.spec.speed_mps * noise
        run.pos, run.leg = to, (start, to, now, now + travel)
        run.gen += 1
        w.at(now + travel, then, run, run.gen)

    def _drop(self, run: CourierRun, order_id: str, exc: Refused) -> None:
        self.w._refused(exc)
        if order_id in run.orders:
            run.orders.remove(order_id)

    def at_merchant(self, run: CourierRun, gen: int) -> None:
        w = self.w
        if gen != run.gen:
            return
        run.phase, run.leg = "at_pickup", None
        for order_id in list(run.orders):
            try:
                w.actions.arrive(run.spec.id, order_id)
            except Refused as exc:
                self._drop(run, order_id, exc)
        if not run.orders:
            self.become_idle(run)
            return
        self._wait_for_food(run)

    def _wait_for_food(self, run: CourierRun) -> None:
        w = self.w
        readies = [w.log.orders[i].ready_at for i in run.orders]
        ready = max((r for r in readies if r is not None), default=w.now() + 60)
        run.gen += 1
        w.at(max(w.now(), ready) + w.cfg.pickup_service_s, self.pickup, run, run.gen)

    def _extend(self, run: CourierRun) -> bool:
        """Take extra orders of this merchant offered while waiting; True if any joined."""
        w = self.w
        offer = w.actions.current_offer(run.spec.id)
        if offer is None:
            return False
        merchant_id = w.log.orders[run.orders[0]].merchant_id
        same = all(i in w.log.orders and w.log.orders[i].merchant_id == merchant_id
                   for i in offer.order_ids)
        try:
            if not same:
                w.actions.decline(run.spec.id, offer.id)
                return False
            w.actions.accept(run.spec.id, offer.id)
        except Refused as exc:
            w._refused(exc)
            return False
        for order_id in offer.order_ids:
            w.log.orders[order_id].courier_id = run.spec.id
            try:
                w.actions.arrive(run.spec.id, order_id)
                run.orders.append(order_id)
            except Refused as exc:
                w._refused(exc)
        return True

    def pickup(self, run: CourierRun, gen: int) -> None:
        w = self.w
        if gen != run.gen:
            return
        if self._extend(run):
            self._wait_for_food(run)
            return
        for order_id in list(run.orders):
            rec = w.log.orders[order_id]
            if rec.picked_up_at is not None:
                continue
            if rec.ready_at is None or rec.ready_at > w.now():
                continue  # not ready (not even confirmed): wait for it below
            try:
                w.actions.pick_up(run.spec.id, order_id)
                rec.picked_up_at = w.now()
            except Refused as exc:
                self._drop(run, order_id, exc)
        if any(w.log.orders[i].picked_up_at is None for i in run.orders):
            self._wait_for_food(run)
            return
        self._next_drop(run)

    def _next_drop(self, run: CourierRun) -> None:
        w = self.w
        if not run.orders:
            self.become_idle(run)
            return
        run.phase = "to_dropoff"
        self._go(run, w.log.orders[run.orders[0]].dropoff, self.at_door)

    def at_door(self, run: CourierRun, gen: int) -> None:
        w = self.w
        if gen != run.gen:
            return
        order_id = run.orders[0]
        try:
            w.actions.arrive(run.spec.id, order_id)
        except Refused as exc:
            self._drop(run, order_id, exc)
            self._next_drop(run)
            return
        run.gen += 1
        w.at(w.now() + w.cfg.dropoff_service_s, self.handover, run, run.gen)

    def handover(self, run: CourierRun, gen: int) -> None:
        w = self.w
        if gen != run.gen:
            return
        order_id = run.orders.pop(0)
        try:
            w.actions.deliver(run.spec.id, order_id)
            w.log.orders[order_id].delivered_at = w.now()
            run.delivered += 1
        except Refused as exc:
            w._refused(exc)
        self._next_drop(run)
