"""Test doubles for the ports and builders for values (no mocks of our own ports)."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

from lastmile.adapters.clock import ManualClock, SequentialIds
from lastmile.app.events import Event
from lastmile.core.geo import Point
from lastmile.core.money import Money
from lastmile.core.orders import EtaWindow, Order, OrderLine, PriceBreakdown


class RecordingPublisher:
    def __init__(self, fail_times: int = 0) -> None:
        self.events: list[Event] = []
        self.fail_times = fail_times

    def publish(self, event: Event) -> None:
        if self.fail_times > 0:
            self.fail_times -= 1
            raise RuntimeError("subscriber down")
        self.events.append(event)


def usd(minor: int) -> Money:
    return Money(amount_minor=minor, currency="USD")


def an_order(**overrides: Any) -> Order:
    base = Order(
        id="ord_1", region_id="reg_1", merchant_id="mer_1", consumer_id="con_1",
        lines=(OrderLine(item_id="itm_1", name="Pad thai", quantity=2, unit_price=usd(1200)),),
        prices=PriceBreakdown(subtotal=usd(2400), delivery_fee=usd(299), service_fee=usd(240),
                              small_order_fee=usd(0), tax=usd(200), tip=usd(300)),
        pickup=Point(lat=37.44, lng=-122.16), dropoff=Point(lat=37.45, lng=-122.14),
        placed_at=1000.0, eta=EtaWindow(low_at=2000.0, expected_at=2500.0, high_at=3000.0),
    )
    return replace(base, **overrides)


def fixed_clock(at: float = 1_767_225_600.0) -> ManualClock:
    return ManualClock(at)


def seeded(seed: int = 1) -> tuple[SequentialIds, random.Random]:
    return SequentialIds(), random.Random(seed)
