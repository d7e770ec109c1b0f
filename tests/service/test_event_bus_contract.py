"""The event bus contract, held by both engines: the in-process bus with the outbox relay
(embedded profile) and NATS JetStream (scale-out profile, on SQLite and PostgreSQL)."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from eventlog_harness import (
    Harness,
    close_harness,
    effect_handler,
    effects,
    make_harness,
    nats_available,
    unique_config,
)

from fault_proxy import FaultProxy
from lastmile.adapters.bus.jetstream import EventLogUnavailable, JetStreamBus
from lastmile.adapters.bus.jetstream_consumer import consumer_name
from lastmile.adapters.bus.jetstream_relay import JetStreamRelay
from lastmile.adapters.bus.jetstream_wire import JetStreamConfig, subject_token
from lastmile.app import dead_letters
from lastmile.app.context import new_event
from lastmile.app.events import Event
from lastmile.app.ports import OutboxEntry
from lastmile.settings import Settings


@pytest.fixture(params=[
    "memory",
    pytest.param("nats", marks=pytest.mark.nats),
    pytest.param("nats-postgresql", marks=[pytest.mark.nats, pytest.mark.postgres]),
])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    from databases import drop_schema, pg_schema_url, postgres_available

    kind, _, database = request.param.partition("-")
    if kind == "nats" and (reason := nats_available()):
        pytest.skip(reason)
    url = schema = None
    if database == "postgresql":
        if reason := postgres_available():
            pytest.skip(reason)
        url, schema = pg_schema_url()
    h = make_harness(kind, tmp_path, url)
    try:
        yield h
    finally:
        close_harness(h)
        if schema:
            drop_schema(schema)


def test_every_durable_subscriber_gets_every_event_with_its_effect_once(harness: Harness):
    h = harness
    seen_by_type: list[Event] = []
    h.bus.subscribe("test.happened", effect_handler(h.services, "by-type", seen=seen_by_type),
                    durable="by-type")
    h.bus.subscribe("*", effect_handler(h.services, "all"), durable="all")
    h.start()
    ids = h.record(["a", "b", "c"], 10)
    other = h.record(["a"], 2, type="test.other")
    h.pump(lambda: all(effects(h.services, "all", ids + other).values())
           and all(effects(h.services, "by-type", ids).values()))
    h.relay.drain()
    assert set(effects(h.services, "all", ids + other).values()) == {1}
    assert set(effects(h.services, "by-type", ids).values()) == {1}
    assert effects(h.services, "by-type", other) == {i: 0 for i in other}  # not its type
    assert {e.headers["traceparent"] for e in seen_by_type} == {
        f"00-{n:032x}-1-01" for n in range(10)}  # headers travel with the event


def test_a_failing_handler_is_retried_then_parked_and_a_replay_delivers_it(harness: Harness):
    h = harness
    broken = threading.Event()
    broken.set()
    calls: list[Event] = []
    poisoned: set[str] = set()
    handler = effect_handler(h.services, "flaky",
                             fail=lambda e: broken.is_set() and e.event_id in poisoned,
                             seen=calls)
    h.bus.subscribe("*", handler, durable="flaky")
    h.start()
    ids = h.record(["a", "b"], 2)  # a0 b0 a1 b1
    poisoned.add(ids[0])

    def parked() -> list[dead_letters.DeadLetter]:
        return dead_letters.list_dead_letters(h.services, subscriber="flaky")

    h.pump(lambda: bool(parked()) and all(effects(h.services, "flaky", ids[1:]).values()))
    [letter] = parked()
    assert (letter.event.event_id, letter.attempts) == (ids[0], 3)
    assert "cannot handle" in letter.last_error
    assert sum(1 for e in calls if e.event_id == ids[0]) == 3
    assert effects(h.services, "flaky", ids) == {ids[0]: 0, ids[1]: 1, ids[2]: 1, ids[3]: 1}

    broken.clear()
    replay = dead_letters.replay_dead_letter(h.services, letter.id, requeue=h.requeue)
    assert replay.queued
    again = dead_letters.replay_dead_letter(h.services, letter.id, requeue=h.requeue)
    assert not again.queued  # idempotent
    h.pump(lambda: effects(h.services, "flaky", ids)[ids[0]] == 1)
    assert parked() == []
    assert set(effects(h.services, "flaky", ids).values()) == {1}


def test_live_subscribers_get_recorded_and_live_only_events(harness: Harness):
    h = harness
    got: list[Event] = []
    moves: list[Event] = []
    h.bus.subscribe("*", got.append)
    h.bus.subscribe("courier.moved", moves.append)
    ids = h.record(["a", "b"], 3)
    h.pump(lambda: len(got) >= len(ids))
    move = new_event(h.services, type="courier.moved", region_id="reg.t 1", subject_id="c1",
                     actor_kind="courier", actor_id="c1", data={"lat": 1.0})
    h.bus.publish(move)
    h.pump(lambda: len(moves) >= 1)
    h.relay.drain()
    assert [e.event_id for e in got] == ids + [move.event_id]  # each once, in order
    assert [e.event_id for e in moves] == [move.event_id]


def test_events_of_one_subject_are_handled_in_order_even_around_a_retry(harness: Harness):
    h = harness
    order: dict[str, list[int]] = defaultdict(list)
    failures: Counter[str] = Counter()
    lock = threading.Lock()
    first_of_a: list[str] = []

    def fail(event: Event) -> bool:
        with lock:
            if first_of_a and event.event_id == first_of_a[0] and failures[event.event_id] < 2:
                failures[event.event_id] += 1
                return True
            order[event.subject_id].append(event.data["n"])
            return False

    h.bus.subscribe("*", effect_handler(h.services, "ordered", fail=fail), durable="ordered")
    h.start()
    ids = h.record(["a", "b", "c"], 6)
    first_of_a.append(ids[0])
    h.pump(lambda: all(effects(h.services, "ordered", ids).values()))
    assert failures[ids[0]] == 2  # retried twice, then handled
    assert dict(order) == {s: list(range(6)) for s in "abc"}


@pytest.mark.nats
def test_events_written_in_one_process_reach_live_subscribers_of_another(tmp_path: Path):
    if reason := nats_available():
        pytest.skip(reason)
    h = make_harness("nats", tmp_path)
    assert isinstance(h.bus, JetStreamBus)
    other = JetStreamBus(h.bus.config)  # another API process: its own connection
    try:
        theirs: list[Event] = []
        ours: list[Event] = []
        other.subscribe("*", theirs.append)
        h.bus.subscribe("*", ours.append)
        ids = h.record(["a"], 3)
        move = new_event(h.services, type="courier.moved", region_id="r1", subject_id="c1",
                         actor_kind="courier", actor_id="c1")
        h.bus.publish(move)
        h.pump(lambda: len(theirs) >= 4 and len(ours) >= 4)
        time.sleep(0.3)  # a duplicate would arrive by now
        assert sorted(e.event_id for e in theirs) == sorted(ids + [move.event_id])
        assert sorted(e.event_id for e in ours) == sorted(ids + [move.event_id])  # once each
    finally:
        other.close()
        close_harness(h)


def test_subject_tokens_keep_ids_apart_and_subjects_valid():
    assert subject_token("reg_1-a") == "reg_1-a"
    assert subject_token("reg.1") == "reg~2E1" != subject_token("reg_1")
    assert subject_token("a b*>") == "a~20b~2A~3E"
    config = unique_config()
    event = Event(event_id="e", type="order.placed", occurred_at=0.0, region_id="ber.mitte",
                  subject_id="o", actor_kind="system", actor_id="s")
    assert config.event_subject(event) == f"{config.prefix}.ev.ber~2Emitte.order.placed"
    assert config.filter_subject("order.placed") == f"{config.prefix}.ev.*.order.placed"
    assert config.filter_subject("*") == f"{config.prefix}.ev.>"
    names = {consumer_name(n, replay=r) for n in ("x", "x~replay", "x-replay", "x.y", "x_2Ey")
             for r in (False, True)}
    assert len(names) == 10  # no subscriber's consumer is another's replay consumer


@pytest.mark.nats
def test_with_nats_down_the_relay_fails_fast_and_loses_nothing(tmp_path: Path):
    if reason := nats_available():
        pytest.skip(reason)
    h = make_harness("nats", tmp_path)
    assert isinstance(h.bus, JetStreamBus)
    with socket.socket() as s:  # a port nobody listens on: NATS is "down"
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = JetStreamBus(replace(h.bus.config, url=f"nats://127.0.0.1:{port}", op_timeout_s=1.0,
                                connect_timeout_s=0.5))
    try:
        h.bus.subscribe("*", effect_handler(h.services, "after-outage"), durable="after-outage")
        h.start()
        ids = h.record(["a", "b"], 3)
        started = time.monotonic()
        with pytest.raises(EventLogUnavailable):
            JetStreamRelay(h.services, down).run_once()
        assert time.monotonic() - started < 5  # fails fast: no hang
        with h.services.uow(read_only=True) as uow:
            assert [e.event.event_id for e in uow.outbox.pending(100)] == ids  # kept unsent
        h.pump(lambda: all(effects(h.services, "after-outage", ids).values()))  # NATS is back
        assert set(effects(h.services, "after-outage", ids).values()) == {1}
    finally:
        down.close()
        close_harness(h)


def test_settings_choose_the_stream_and_subject_prefix():
    s = Settings.from_env({"LASTMILE_NATS_URL": "nats://n:4222", "LASTMILE_NATS_STREAM": "S1",
                           "LASTMILE_NATS_PREFIX": "lm.eu"})
    assert (s.nats_url, s.nats_stream, s.nats_prefix) == ("nats://n:4222", "S1", "lm.eu")
    defaults = Settings.from_env({})
    assert (defaults.nats_url, defaults.nats_stream, defaults.nats_prefix) == (
        None, "LASTMILE", "lastmile")
    with pytest.raises(ValueError, match="prefix"):
        JetStreamConfig(url="nats://n", prefix="lm.*")


@pytest.mark.nats
@pytest.mark.slow
def test_a_cut_connection_to_nats_fails_fast_then_reconnects_and_delivers_everything_once(
        tmp_path: Path):
    if reason := nats_available():
        pytest.skip(reason)
    proxy = FaultProxy(("127.0.0.1", 4222))  # stopped in the finally below
    h = make_harness("nats", tmp_path)
    assert isinstance(h.bus, JetStreamBus)
    h.bus.close()
    direct = h.bus.config
    h.bus = bus = JetStreamBus(replace(direct, url=f"nats://127.0.0.1:{proxy.port}",
                                       op_timeout_s=1.0, connect_timeout_s=0.5))
    h.relay = JetStreamRelay(h.services, bus)
    try:
        live: list[str] = []
        bus.subscribe("*", lambda e: live.append(e.event_id))
        bus.subscribe("*", effect_handler(h.services, "cut"), durable="cut")
        h.start()
        before = h.record(["a"], 3)
        h.pump(lambda: all(effects(h.services, "cut", before).values()))

        proxy.cut("refuse")
        during = h.record(["a", "b"], 3)
        started = time.monotonic()
        with pytest.raises(EventLogUnavailable):
            h.relay.run_once()
        assert time.monotonic() - started < 5  # fails fast, no hang
        with pytest.raises(EventLogUnavailable):
            bus.publish(new_event(h.services, type="courier.moved", region_id="r",
                                  subject_id="c", actor_kind="courier", actor_id="c"))

        proxy.restore()
        h.pump(lambda: all(effects(h.services, "cut", before + during).values()), 30)
        assert set(effects(h.services, "cut", before + during).values()) == {1}
        h.pump(lambda: set(during) <= set(live), 10)  # live subscriptions came back too
    finally:
        bus.close()
        h.bus = JetStreamBus(direct)  # deletes the stream without the proxy
        close_harness(h)
        proxy.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def nats_harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    from databases import drop_schema, pg_schema_url, postgres_available

    if reason := nats_available():
        pytest.skip(reason)
    url = schema = None
    if request.param == "postgresql":
        if reason := postgres_available():
            pytest.skip(reason)
        url, schema = pg_schema_url()
    h = make_harness("nats", tmp_path, url)
    try:
        yield h
    finally:
        close_harness(h)
        if schema:
            drop_schema(schema)


@pytest.mark.nats
def test_several_relays_publish_each_event_once_in_outbox_order(nats_harness: Harness):
    h = nats_harness
    assert isinstance(h.bus, JetStreamBus)
    handled: list[str] = []
    h.bus.subscribe("*", lambda e: handled.append(e.event_id), durable="in-order")
    h.start()
    ids = h.record([f"s{i}" for i in range(5)], 40)  # 200 events
    buses = [h.bus] + [JetStreamBus(h.bus.config) for _ in range(2)]  # three processes
    relays = [JetStreamRelay(h.services, bus, batch=7) for bus in buses]
    errors: list[BaseException] = []

    def drain(relay: JetStreamRelay) -> None:
        try:
            for _ in range(200):
                relay.drain()
        except BaseException as exc:  # reported below
            errors.append(exc)

    try:
        threads = [threading.Thread(target=drain, args=(r,)) for r in relays]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors
        assert sum(r.stats.published for r in relays) == len(ids)  # no row published twice
        h.pump(lambda: len(handled) >= len(ids))
        stream_order = [_stored_event_id(h.bus, seq) for seq in range(1, len(ids) + 1)]
        assert stream_order == ids  # the stream holds the outbox's order
        assert handled == ids  # one consumer process: stream order is outbox order
        first = h.bus.call(lambda js: js.get_msg(h.bus.config.stream, 1))  # type: ignore[union-attr]
        assert first.subject == f"{h.bus.config.prefix}.ev.reg~2Et~201.test.happened"
        assert first.headers is not None
        assert first.headers["Nats-Msg-Id"] == ids[0]  # de-duplication key
        assert first.headers["traceparent"] == f"00-{0:032x}-1-01"  # the event's headers
        assert int(first.headers["Lastmile-Seq"]) >= 1  # the outbox seq

        # A relay that died after the PubAck, before marking its rows sent: the next one
        # publishes them again and JetStream drops the copies (same Nats-Msg-Id).
        with h.services.uow(read_only=True) as uow:
            assert uow.outbox.pending(1) == []
        again = [OutboxEntry(seq=n + 1, event=e) for n, e in enumerate(_events(h, ids[:10]))]
        assert h.bus.publish_stored(again) == 10
        stored = h.bus.call(lambda js: js.stream_info(h.bus.config.stream))  # type: ignore[union-attr]
        assert stored.state.messages == len(ids)
        time.sleep(0.5)
        assert handled == ids
    finally:
        for bus in buses[1:]:
            bus.close()


def _stored_event_id(bus: JetStreamBus, seq: int) -> str:
    raw = bus.call(lambda js: js.get_msg(bus.config.stream, seq))
    assert raw.headers is not None
    return str(raw.headers["Nats-Msg-Id"])


def _events(h: Harness, event_ids: list[str]) -> list[Event]:
    with h.services.uow(read_only=True) as uow:
        by_id = {}
        for subject in {f"s{i}" for i in range(5)}:
            by_id.update({e.event_id: e for e in uow.events.for_subject(subject)})
    return [by_id[i] for i in event_ids]
