"""The stream hub: bounded per-connection queues fed from bus threads, never blocking the bus."""

from __future__ import annotations

import asyncio
import threading

import pytest

from lastmile.adapters.bus.memory import InProcessBus
from lastmile.api.streams import StreamClosed, StreamHub, order_feed, region_feed
from lastmile.app.events import Event
from lastmile.app.tenancy import acting_as
from lastmile.core.tenancy import DEFAULT_TENANT


def an_event(n: int = 0, **overrides: object) -> Event:
    fields: dict[str, object] = dict(event_id=f"evt_{n}", type="courier.moved", occurred_at=float(n),
                                     region_id="reg_a", subject_id="cou_1", actor_kind="courier",
                                     actor_id="cou_1", data={"lat": 1.0, "lng": 2.0})
    fields.update(overrides)
    return Event(**fields)  # type: ignore[arg-type]


def publish_from_a_thread(bus: InProcessBus, events: list[Event]) -> None:
    t = threading.Thread(target=lambda: [bus.publish(e) for e in events])
    t.start()
    t.join(timeout=5)


def test_a_full_queue_drops_the_oldest_events_and_counts_them() -> None:
    async def scenario() -> None:
        bus = InProcessBus()
        hub = StreamHub(bus)
        hub.start()
        sub = hub.open(lambda e: True, tenant=DEFAULT_TENANT, maxsize=3)
        publish_from_a_thread(bus, [an_event(i) for i in range(5)])
        batch = await asyncio.wait_for(sub.next_batch(), 5)
        assert [e.event_id for e in batch.events] == ["evt_2", "evt_3", "evt_4"]
        assert (batch.dropped, sub.dropped_total) == (2, 2)
        hub.stop()

    asyncio.run(scenario())


def test_publishing_never_waits_for_a_connection_that_does_not_read() -> None:
    async def scenario() -> None:
        bus = InProcessBus()
        hub = StreamHub(bus)
        hub.start()
        sub = hub.open(lambda e: True, tenant=DEFAULT_TENANT, maxsize=10)
        publish_from_a_thread(bus, [an_event(i) for i in range(10_000)])  # join() returns
        assert sub.pending() == 10
        assert sub.dropped_total == 9_990
        hub.stop()

    asyncio.run(scenario())


def test_a_failing_filter_does_not_raise_to_the_publisher() -> None:
    async def scenario() -> None:
        bus = InProcessBus()
        hub = StreamHub(bus)
        hub.start()

        def broken(event: Event) -> bool:
            raise KeyError("boom")

        hub.open(broken, tenant=DEFAULT_TENANT)
        good = hub.open(lambda e: True, tenant=DEFAULT_TENANT)
        bus.publish(an_event())  # would raise into the outbox relay if not contained
        assert hub.errors == 1
        assert len((await asyncio.wait_for(good.next_batch(), 5)).events) == 1
        hub.stop()

    asyncio.run(scenario())


def test_stopping_the_hub_ends_waiting_subscriptions_and_unsubscribes() -> None:
    async def scenario() -> None:
        bus = InProcessBus()
        hub = StreamHub(bus)
        hub.start()
        sub = hub.open(lambda e: True, tenant=DEFAULT_TENANT)
        waiter = asyncio.create_task(sub.next_batch())
        await asyncio.sleep(0)
        hub.stop()
        with pytest.raises(StreamClosed):
            await asyncio.wait_for(waiter, 5)
        bus.publish(an_event())
        assert hub.connections() == 0 and not hub.running

    asyncio.run(scenario())


def test_region_feed_keeps_only_the_regions_marketplace_events() -> None:
    match = region_feed("reg_a")
    assert match(an_event(type="courier.moved"))
    assert match(an_event(type="order.placed"))
    assert match(an_event(type="offer.made"))
    assert match(an_event(type="courier.shift_started"))
    assert not match(an_event(region_id="reg_b"))
    assert not match(an_event(type="menu.item_updated"))


def test_order_feed_keeps_the_orders_changes_and_moves_of_couriers_carrying_it() -> None:
    match = order_feed("ord_1")
    assert match(an_event(type="order.confirmed", subject_id="ord_1"))
    assert not match(an_event(type="order.confirmed", subject_id="ord_2"))
    assert match(an_event(data={"lat": 1, "lng": 2, "active_order_ids": ["ord_9", "ord_1"]}))
    assert not match(an_event(data={"lat": 1, "lng": 2, "active_order_ids": ["ord_9"]}))
    assert not match(an_event(data={"lat": 1, "lng": 2}))
    assert not match(an_event(type="offer.made", subject_id="ord_1"))


def test_a_subscription_gets_only_its_tenants_events_whatever_its_filter() -> None:
    """Issue 9: a socket never receives another tenant's events, even with a filter that
    would take them (the same region id, courier or order id in the event)."""
    async def scenario() -> None:
        bus = InProcessBus()
        hub = StreamHub(bus)
        hub.start()
        acme = hub.open(region_feed("reg_a"), tenant="acme:live")
        bravo = hub.open(lambda e: True, tenant="bravo:live")
        with acting_as("acme:live"):
            mine = an_event(1)
        with acting_as("bravo:live"):
            theirs = an_event(2)
        publish_from_a_thread(bus, [theirs, mine])
        assert [e.event_id for e in (await asyncio.wait_for(acme.next_batch(), 5)).events] == [
            "evt_1"]
        assert [e.event_id for e in (await asyncio.wait_for(bravo.next_batch(), 5)).events] == [
            "evt_2"]
        assert acme.pending() == 0 and bravo.pending() == 0
        hub.stop()

    asyncio.run(scenario())
