import pytest

from lastmile.adapters.bus.memory import DeliveryFailed, InProcessBus
from lastmile.app.events import Event


def an_event(type_: str = "order.placed") -> Event:
    return Event(event_id="evt_1", type=type_, occurred_at=1.0, region_id="reg", subject_id="o",
                 actor_kind="system", actor_id="system")


def test_subscribers_of_the_type_and_of_star_receive_the_event():
    bus, got = InProcessBus(), []
    bus.subscribe("order.placed", lambda e: got.append(("typed", e.type)))
    bus.subscribe("*", lambda e: got.append(("all", e.type)))
    bus.subscribe("order.delivered", lambda e: got.append(("other", e.type)))
    bus.publish(an_event())
    assert got == [("typed", "order.placed"), ("all", "order.placed")]


def test_a_failing_subscriber_does_not_starve_the_others_but_is_reported():
    bus, got = InProcessBus(), []

    def broken(e):
        raise ValueError("boom")

    bus.subscribe("*", broken)
    bus.subscribe("*", got.append)
    with pytest.raises(DeliveryFailed, match="boom"):
        bus.publish(an_event())
    assert len(got) == 1


def test_unsubscribe_stops_delivery():
    bus, got = InProcessBus(), []
    stop = bus.subscribe("*", got.append)
    stop()
    bus.publish(an_event())
    assert got == []
