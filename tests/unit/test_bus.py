import pytest

from lastmile.adapters.bus.memory import InProcessBus
from lastmile.app.events import (
    MAX_TYPE_FILTER_CHARS,
    Event,
    filter_types,
    matches,
    type_filter,
)


def an_event(type_: str = "order.placed") -> Event:
    return Event(event_id="evt_1", type=type_, occurred_at=1.0, region_id="reg", subject_id="o",
                 actor_kind="system", actor_id="system")


def test_live_subscribers_of_the_type_and_of_star_receive_the_event():
    bus, got = InProcessBus(), []
    bus.subscribe("order.placed", lambda e: got.append(("typed", e.type)))
    bus.subscribe("*", lambda e: got.append(("all", e.type)))
    bus.subscribe("order.delivered", lambda e: got.append(("other", e.type)))
    bus.publish(an_event())
    assert got == [("typed", "order.placed"), ("all", "order.placed")]


def test_a_failing_live_subscriber_is_counted_never_raised_and_the_others_still_receive():
    bus, got = InProcessBus(), []

    def broken(e):
        raise ValueError("boom")

    bus.subscribe("*", broken)
    bus.subscribe("*", got.append)
    bus.publish(an_event())  # a live feed has no retry: the publisher (a ping, the relay) goes on
    assert len(got) == 1 and bus.live_failures == 1


def test_unsubscribe_stops_delivery():
    bus, got = InProcessBus(), []
    stop = bus.subscribe("*", got.append)
    stop()
    bus.publish(an_event())
    assert got == []


def test_durable_subscribers_get_only_what_the_relay_delivers_and_their_errors_go_back():
    bus, got = InProcessBus(), []
    bus.subscribe("*", got.append, durable="recorder")

    def broken(e):
        raise ValueError("boom")

    bus.subscribe("order.placed", broken, durable="broken")
    bus.publish(an_event())
    assert got == []  # publish is the live fan-out; durable ones wait for the relay
    assert bus.durable() == {"recorder": "*", "broken": "order.placed"}
    bus.deliver("recorder", an_event())
    assert len(got) == 1
    with pytest.raises(ValueError, match="boom"):
        bus.deliver("broken", an_event())
    bus.deliver("broken", an_event("order.delivered"))  # not its type: nothing to do


def test_a_durable_name_is_unique_in_a_process_and_unknown_names_are_refused():
    bus = InProcessBus()
    stop = bus.subscribe("*", lambda e: None, durable="drive")
    with pytest.raises(ValueError, match="already subscribed"):
        bus.subscribe("*", lambda e: None, durable="drive")
    with pytest.raises(ValueError, match="1-64 characters"):
        bus.subscribe("*", lambda e: None, durable="")
    stop()
    assert bus.durable() == {}
    with pytest.raises(LookupError, match="drive"):
        bus.deliver("drive", an_event())


def test_a_relay_policy_needs_a_positive_lease_and_batch():
    from lastmile.adapters.bus.outbox import RelayPolicy
    from lastmile.core.errors import InvalidInput

    for bad in ({"lease_s": 0}, {"batch": 0}):
        with pytest.raises(InvalidInput, match="lease_s > 0 and batch >= 1"):
            RelayPolicy(**bad)
    assert RelayPolicy().retry.max_attempts == 10


def test_a_subscriber_may_name_several_types_and_receives_only_those():
    bus, live, durable = InProcessBus(), [], []
    stop = bus.subscribe({"order.placed", "order.delivered"}, lambda e: live.append(e.type))
    bus.subscribe(("order.delivered", "order.placed"), lambda e: durable.append(e.type),
                  durable="ledger")
    for t in ("order.placed", "order.confirmed", "order.delivered"):
        bus.publish(an_event(t))
        bus.deliver("ledger", an_event(t))
    assert live == durable == ["order.placed", "order.delivered"]
    assert bus.durable() == {"ledger": "order.delivered,order.placed"}
    stop()
    bus.publish(an_event())
    assert live == ["order.placed", "order.delivered"]


def test_a_type_filter_is_star_one_type_or_several_sorted_and_refuses_what_it_cannot_store():
    assert type_filter("*") == "*" and type_filter(["a", "*"]) == "*"
    assert type_filter("order.placed") == "order.placed"
    assert type_filter(["b", "a", "b"]) == "a,b"
    assert filter_types("a,b") == {"a", "b"} and filter_types("*") is None
    assert matches("a,b", "b") and not matches("a,b", "a,b") and not matches("ab", "a")
    assert matches("*", "anything") and matches("a", "a") and not matches("a", "b")
    for bad in ([], [""], ["a,b"], [" a"], ["x" * (MAX_TYPE_FILTER_CHARS + 1)]):
        with pytest.raises(ValueError):
            type_filter(bad)
