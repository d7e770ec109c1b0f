"""A small in-memory stand-in for the platform behind ``Actions`` (unit tests of the world's
processes without SQLite): it records every call, quotes a fixed fee and ETA, and its
dispatch offers each waiting order to the next courier on shift without a live offer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lastmile.core.geo import Point
from lastmile.sim.actions import OfferView, OrderAsk, PlacedView, QuoteView, Refused


class FakePlatform:
    def __init__(self, clock: Callable[[], float], *, knows_offers: bool = True):
        self.clock = clock
        self.knows_offers = knows_offers  # False: dispatch says None (like the demo's server)
        self.calls: list[tuple[Any, ...]] = []
        self.on_shift: list[str] = []
        self.waiting: list[str] = []  # orders placed, not offered/assigned
        self.cancelled: set[str] = set()
        self.offers: dict[str, OfferView] = {}  # courier -> pending offer
        self.polled: list[str] = []
        self._n = 0

    def _log(self, *call: Any) -> None:
        self.calls.append((round(self.clock(), 6), *call))

    def quote(self, ask: OrderAsk) -> QuoteView:
        self._log("quote", ask.consumer_id)
        return QuoteView(fees_minor=600, eta_expected_at=self.clock() + 1_800)

    def place(self, ask: OrderAsk, *, key: str) -> PlacedView:
        self._n += 1
        oid = f"o{self._n}"
        self._log("place", oid)
        self.waiting.append(oid)
        now = self.clock()
        return PlacedView(order_id=oid, placed_at=now, eta_expected_at=now + 1_800,
                          eta_high_at=now + 2_400, fees_minor=600, currency="USD")

    def confirm(self, merchant_id: str, order_id: str, prep_s: int) -> None:
        self._log("confirm", order_id)

    def mark_ready(self, merchant_id: str, order_id: str) -> None:
        self._log("ready", order_id)

    def cancel(self, consumer_id: str, order_id: str, reason: str) -> None:
        self._log("cancel", order_id)
        self.cancelled.add(order_id)
        if order_id in self.waiting:
            self.waiting.remove(order_id)

    def start_shift(self, courier_id: str, device_id: str, duration_s: int) -> None:
        self._log("start_shift", courier_id)
        self.on_shift.append(courier_id)

    def end_shift(self, courier_id: str) -> None:
        self._log("end_shift", courier_id)
        self.on_shift.remove(courier_id)

    def ping(self, courier_id: str, device_id: str, at: Point) -> None:
        self._log("ping", courier_id)

    def current_offer(self, courier_id: str) -> OfferView | None:
        self.polled.append(courier_id)
        return self.offers.get(courier_id)

    def accept(self, courier_id: str, offer_id: str) -> None:
        self._log("accept", courier_id, offer_id)
        offer = self.offers.pop(courier_id)
        if any(o in self.cancelled for o in offer.order_ids):
            raise Refused("order_cancelled")

    def decline(self, courier_id: str, offer_id: str) -> None:
        self._log("decline", courier_id, offer_id)
        self.waiting.extend(self.offers.pop(courier_id).order_ids)

    def _check(self, order_id: str) -> None:
        if order_id in self.cancelled:
            raise Refused("order_cancelled")

    def arrive(self, courier_id: str, order_id: str) -> None:
        self._log("arrive", courier_id, order_id)
        self._check(order_id)

    def pick_up(self, courier_id: str, order_id: str) -> None:
        self._log("pick_up", courier_id, order_id)
        self._check(order_id)

    def deliver(self, courier_id: str, order_id: str) -> None:
        self._log("deliver", courier_id, order_id)

    def dispatch(self, region_ids: tuple[str, ...]) -> tuple[str, ...] | None:
        free = [c for c in sorted(self.on_shift) if c not in self.offers]
        offered = []
        for courier_id, order_id in zip(free, list(self.waiting), strict=False):
            self.waiting.remove(order_id)
            self.offers[courier_id] = OfferView(id=f"of-{order_id}", order_ids=(order_id,))
            offered.append(courier_id)
        self._log("dispatch", tuple(offered))
        return tuple(offered) if self.knows_offers else None
