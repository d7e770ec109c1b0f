"""Event delivery never stalls: every durable subscriber has its own queue, retries and dead
letters; two relays over one database deliver every event once; a dead relay's lease lapses
and another relay takes its events over."""

import threading
import time
from collections import Counter, defaultdict

import pytest

from lastmile.adapters.bus.memory import InProcessBus
from lastmile.adapters.bus.outbox import Relay, RelayPolicy
from lastmile.app import dead_letters
from lastmile.app.context import new_event, record
from lastmile.core.errors import NotFound
from lastmile.core.webhooks import RetryPolicy

# Waits of 1, 2, 4, then 4 s (the cap); parked at the 5th failed attempt.
POLICY = RelayPolicy(retry=RetryPolicy(base_s=1.0, cap_s=4.0, max_attempts=5), lease_s=30.0)


class Recorder:
    """A durable subscriber that fails on the event ids in ``fail_on``."""

    def __init__(self, fail_on=()):
        self.fail_on = set(fail_on)
        self.calls: Counter[str] = Counter()
        self.got: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, event):
        with self.lock:
            self.calls[event.event_id] += 1
            if event.event_id in self.fail_on:
                raise RuntimeError(f"cannot handle {event.event_id}")
            self.got.append(event.event_id)


def _skip_seed_events(p):
    Relay(p.services, InProcessBus()).drain()  # no durable subscriber yet: the seed's go nowhere


def _record(p, subjects, per_subject):
    """``per_subject`` events for each subject, interleaved: s0#0, s1#0, ..., s0#1, ..."""
    ids = []
    with p.services.uow() as uow:
        for n in range(per_subject):
            for subject in subjects:
                event = new_event(p.services, type="test.happened", region_id="reg_t",
                                  subject_id=subject, actor_kind="system", actor_id="system",
                                  data={"n": n})
                record(uow, p.services, event)
                ids.append(event.event_id)
        uow.commit()
    return ids


def _states(p):
    return {s.name: s for s in dead_letters.subscriber_states(p.services)}


def test_a_poisoned_subscriber_is_retried_then_parked_while_a_healthy_one_gets_every_event(
        platform):
    p = platform
    _skip_seed_events(p)
    ids = _record(p, ["a", "b"], 3)  # a0 b0 a1 b1 a2 b2
    poison = ids[0]
    healthy, poisoned = Recorder(), Recorder(fail_on={poison})
    bus = InProcessBus()
    bus.subscribe("*", healthy, durable="healthy")
    bus.subscribe("*", poisoned, durable="poisoned")
    relay = Relay(p.services, bus, policy=POLICY)

    relay.drain()
    assert healthy.got == ids
    assert poisoned.got == [ids[1], ids[3], ids[5]]  # subject b goes on; a waits behind a0
    state = _states(p)["poisoned"]
    assert (state.pending, state.retrying, state.parked) == (3, 1, 0)
    for wait in (1.0, 2.0, 4.0, 4.0):  # exponential, capped at 4 s
        attempts = poisoned.calls[poison]
        p.clock.advance(wait - 0.5)
        relay.drain()
        assert poisoned.calls[poison] == attempts  # not before its backoff
        p.clock.advance(0.5)
        relay.drain()
        assert poisoned.calls[poison] == attempts + 1

    assert poisoned.calls[poison] == 5
    assert poisoned.got == [ids[1], ids[3], ids[5], ids[2], ids[4]]  # a1, a2 once a0 is parked
    [letter] = dead_letters.list_dead_letters(p.services)
    assert (letter.subscriber, letter.event.event_id, letter.attempts) == ("poisoned", poison, 5)
    assert "cannot handle" in letter.last_error and letter.replayed_at is None
    assert relay.stats.as_dict() | {"fanned_out": 0} == {
        "fanned_out": 0, "delivered": 11, "retried": 4, "parked": 1, "lease_lost": 0}

    poisoned.fail_on.clear()  # the fault is fixed
    assert dead_letters.replay_dead_letter(p.services, letter.id).queued
    assert not dead_letters.replay_dead_letter(p.services, letter.id).queued  # idempotent
    relay.drain()
    assert poisoned.got[-1] == poison and poisoned.calls[poison] == 6
    assert set(healthy.calls.values()) == {1}  # the replay went to that subscriber only
    assert dead_letters.list_dead_letters(p.services) == []
    [shown] = dead_letters.list_dead_letters(p.services, include_replayed=True)
    assert shown.replays == 1 and shown.replayed_at is not None
    assert not dead_letters.replay_dead_letter(p.services, letter.id).queued
    relay.drain()
    assert poisoned.calls[poison] == 6
    assert _states(p)["poisoned"].pending == 0


def test_a_replay_that_fails_again_is_parked_again_under_the_same_letter(platform):
    p = platform
    _skip_seed_events(p)
    [event_id] = _record(p, ["a"], 1)
    bus, broken = InProcessBus(), Recorder(fail_on={event_id})
    bus.subscribe("*", broken, durable="broken")
    relay = Relay(p.services, bus, policy=RelayPolicy(
        retry=RetryPolicy(base_s=1.0, cap_s=1.0, max_attempts=1)))
    relay.drain()
    [letter] = dead_letters.list_dead_letters(p.services)
    assert dead_letters.replay_dead_letter(p.services, letter.id).queued
    relay.drain()
    [again] = dead_letters.list_dead_letters(p.services)
    assert again.id == letter.id and again.replays == 1 and again.replayed_at is None
    assert broken.calls[event_id] == 2


def test_replaying_an_unknown_dead_letter_is_not_found(platform):
    with pytest.raises(NotFound) as err:
        dead_letters.replay_dead_letter(platform.services, "dlt_nope")
    assert err.value.code == "dead_letter_not_found"


def test_two_relays_over_one_database_deliver_every_event_to_every_subscriber_exactly_once(
        platform):
    p = platform
    _skip_seed_events(p)
    subjects = [f"s{i}" for i in range(30)]
    ids = _record(p, subjects, 10)  # 300 events
    seen: dict[str, list] = {"a": [], "b": []}
    live: list[str] = []
    lock = threading.Lock()

    def recorder(name):
        def handle(event):
            with lock:
                seen[name].append(event)
        return handle

    relays = []
    for _ in range(2):  # two API processes: their own bus, the same durable names
        bus = InProcessBus()
        for name in seen:
            bus.subscribe("*", recorder(name), durable=name)
        bus.subscribe("*", lambda e: live.append(e.event_id))  # a live feed, like the hub
        relays.append(Relay(p.services, bus, policy=RelayPolicy(batch=25)))

    def served():
        with lock:
            return all(len(got) >= len(ids) for got in seen.values())

    barrier, errors = threading.Barrier(len(relays)), []
    deadline = time.monotonic() + 120

    def run(relay):
        barrier.wait()
        try:
            while not served() and time.monotonic() < deadline:
                relay.run_once()
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(r,)) for r in relays]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for relay in relays:  # settle anything still in flight, then check nothing more comes
        relay.drain()

    assert errors == []
    for name, got in seen.items():
        counts = Counter(e.event_id for e in got)
        assert set(counts) == set(ids) and set(counts.values()) == {1}, name
        by_subject = defaultdict(list)
        for e in got:
            by_subject[e.subject_id].append(e.data["n"])
        assert all(ns == list(range(10)) for ns in by_subject.values()), name
    assert sorted(live) == sorted(ids)  # the live feed: once, from whichever relay fanned out
    assert sum(r.stats.delivered for r in relays) == 2 * len(ids)
    assert sum(r.stats.lease_lost for r in relays) == 0


class Killed(BaseException):
    """The process died: nothing after this line of the relay runs."""


def test_a_relay_that_dies_mid_batch_loses_its_lease_and_another_takes_over(platform):
    p = platform
    _skip_seed_events(p)
    ids = _record(p, ["x", "y"], 5)
    dying_bus, delivered_before_death = InProcessBus(), []

    def dies_at_the_fourth(event):
        if len(delivered_before_death) == 3:
            raise Killed()
        delivered_before_death.append(event.event_id)

    dying_bus.subscribe("*", dies_at_the_fourth, durable="sub")
    with pytest.raises(Killed):
        Relay(p.services, dying_bus, policy=POLICY).run_once()

    bus, survivor = InProcessBus(), Recorder()
    bus.subscribe("*", survivor, durable="sub")
    relay = Relay(p.services, bus, policy=POLICY)
    relay.drain()
    assert survivor.got == []  # the dead relay's lease still holds
    p.clock.advance(POLICY.lease_s)
    relay.drain()
    # At least once: the 3 the dead relay handled before it could settle come again.
    assert survivor.got == ids and delivered_before_death == ids[:3]


def test_a_relay_whose_lease_was_taken_over_cannot_settle(platform):
    p = platform
    _skip_seed_events(p)
    bus = InProcessBus()
    bus.subscribe("*", lambda e: None, durable="sub")
    Relay(p.services, bus).run_once()  # registers "sub"
    _record(p, ["x"], 1)
    Relay(p.services, InProcessBus()).fan_out()
    now = p.clock.now()
    with p.services.uow() as uow:
        [old] = uow.event_deliveries.claim("sub", relay_id="rly_old", now=now, lease_s=30,
                                           limit=10)
        uow.commit()
    with p.services.uow() as uow:
        assert uow.event_deliveries.claim("sub", relay_id="rly_new", now=now + 29, lease_s=30,
                                          limit=10) == []
        [new] = uow.event_deliveries.claim("sub", relay_id="rly_new", now=now + 30, lease_s=30,
                                           limit=10)
        uow.commit()
    assert new.seq == old.seq
    with p.services.uow() as uow:
        assert uow.event_deliveries.delivered("sub", [old.seq], relay_id="rly_old") == 0
        assert not uow.event_deliveries.retry(old, relay_id="rly_old", error="x", at=now,
                                              next_attempt_at=now + 1)
        assert uow.event_deliveries.delivered("sub", [new.seq], relay_id="rly_new") == 1
        uow.commit()


def test_the_relay_worker_keeps_delivering_past_a_failing_subscriber(platform):
    p = platform
    _skip_seed_events(p)
    [event_id] = _record(p, ["a"], 1)
    flaky = Recorder(fail_on={event_id})
    bus = InProcessBus()
    bus.subscribe("*", flaky, durable="flaky")
    relay = Relay(p.services, bus, policy=POLICY)
    worker = relay.worker(interval_s=0.01)
    worker.start()
    try:
        deadline = time.monotonic() + 20
        while flaky.calls[event_id] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        flaky.fail_on.clear()
        while not flaky.got and time.monotonic() < deadline:
            p.clock.advance(1.0)  # the retry comes due
            time.sleep(0.02)
    finally:
        worker.stop()
    assert flaky.got == [event_id] and worker.errors == 0
    assert relay.stats.retried == 1 and relay.stats.delivered == 1


def test_a_subscriber_registered_later_gets_the_events_recorded_after_it(platform):
    p = platform
    _skip_seed_events(p)
    first = _record(p, ["a"], 2)
    bus, early = InProcessBus(), Recorder()
    bus.subscribe("*", early, durable="early")
    Relay(p.services, bus).drain()
    late = Recorder()
    bus.subscribe("*", late, durable="late")
    second = _record(p, ["a"], 2)
    Relay(p.services, bus).drain()
    assert early.got == first + second and late.got == second


@pytest.mark.postgres
def test_fan_out_waits_behind_a_relay_holding_older_rows(platform):
    import sqlalchemy as sa

    p = platform
    if p.container.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer: no relay holds rows while another fans out")
    _skip_seed_events(p)
    ids = _record(p, ["x"], 4)
    bus, got = InProcessBus(), Recorder()
    bus.subscribe("*", got, durable="sub")
    relay = Relay(p.services, bus, policy=RelayPolicy(batch=2))
    with p.container.engine.connect() as other:  # another relay is fanning out the oldest row
        other.execute(sa.text(
            "select seq from outbox where sent_at is null order by seq limit 1 for update"))
        assert relay.run_once() == 0  # newer rows of x must not be queued ahead of it
        other.rollback()
    relay.drain()
    assert got.got == ids


def test_a_poisoned_subject_with_a_long_backlog_does_not_starve_the_other_subjects(platform):
    p = platform
    _skip_seed_events(p)
    stuck = _record(p, ["a"], 6)  # more than a claim holds
    other = _record(p, ["b"], 2)
    bus, sub = InProcessBus(), Recorder(fail_on={stuck[0]})
    bus.subscribe("*", sub, durable="sub")
    relay = Relay(p.services, bus, policy=RelayPolicy(batch=3))
    relay.drain()
    assert sub.got == other


def test_a_failing_webhook_producer_does_not_hold_back_the_notices(platform, monkeypatch):
    from lastmile.adapters.webhooks.worker import install_drive
    from lastmile.app import fulfilment, queries, webhooks
    from lastmile.app.ordering import LineRequest, OrderRequest, place_order
    from lastmile.core.geo import Point
    from lastmile.core.orders import Actor, ActorKind

    p = platform
    _skip_seed_events(p)
    install_drive(p.container)  # subscribes; its sender threads are not started

    def down(services, event):
        raise RuntimeError("webhook store unavailable")

    monkeypatch.setattr(webhooks, "on_event", down)
    m = queries.get_merchant(p.services, p.seed.merchant_ids[0])
    order = place_order(p.services, OrderRequest(
        consumer_id=p.seed.consumer_ids[0], merchant_id=m.id,
        lines=(LineRequest(item_id=m.menu[0].id, quantity=1),),
        dropoff=Point(lat=37.445, lng=-122.15)), idempotency_key="k").order
    fulfilment.confirm_order(p.services, order.id, prep_estimate_s=600,
                             actor=Actor(kind=ActorKind.MERCHANT, id=m.id))
    Relay(p.services, p.container.bus, policy=POLICY).drain()

    with p.services.uow(read_only=True) as uow:
        notices = uow.notifications.list(recipient_id=p.seed.consumer_ids[0])
    assert [n.kind.value for n in notices] == ["order_confirmed"]
    states = _states(p)
    assert (states["drive-webhooks"].pending, states["drive-webhooks"].retrying) == (2, 1)
    assert states["drive-notifications"].pending == 0


def _record_types(p, types):
    ids = {}
    with p.services.uow() as uow:
        for n, event_type in enumerate(types):
            event = new_event(p.services, type=event_type, region_id="reg_t",
                              subject_id=f"s{n}", actor_kind="system", actor_id="system")
            record(uow, p.services, event)
            ids.setdefault(event_type, []).append(event.event_id)
        uow.commit()
    return ids


def test_a_subscriber_naming_several_types_is_queued_and_handed_only_those(platform):
    p = platform
    _skip_seed_events(p)
    ids = _record_types(p, ["a.one", "b.two", "c.three", "a.one", "d.four"])
    named = [ids["a.one"][0], ids["c.three"][0], ids["a.one"][1]]
    failing, few, every = Recorder(fail_on=named), Recorder(), Recorder()
    bus = InProcessBus()
    stop = bus.subscribe(["c.three", "a.one"], failing, durable="few")
    bus.subscribe("*", every, durable="every")
    assert bus.durable() == {"few": "a.one,c.three", "every": "*"}
    relay = Relay(p.services, bus, policy=POLICY)

    relay.run_once()  # every attempt of "few" fails: its queue shows what it was given
    # Queued: the named types only (before, a '*' subscriber that ignored the rest in its
    # handler was queued, claimed and settled every event of the platform).
    state = _states(p)["few"]
    assert (state.event_type, state.pending, state.retrying) == ("a.one,c.three", 3, 3)
    assert sorted(failing.calls) == sorted(named) and len(every.got) == 5
    stop()
    bus.subscribe(["a.one", "c.three"], few, durable="few")
    p.clock.advance(1.0)
    relay.drain()
    assert few.got == named and _states(p)["few"].pending == 0
