"""The fault tests' own tools, held to what they claim: the proxy forwards, cuts (refusing or
blackholing), restores and delays; the invariant checks catch what they name."""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from invariants import assigned_twice, violations, wait_drained

from fault_proxy import FaultProxy


@pytest.fixture
def echo() -> Iterator[tuple[str, int]]:
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            try:
                while data := conn.recv(1024):
                    conn.sendall(data)
            except OSError:  # the proxy reset it: what the tests do on purpose
                return

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield server.getsockname()
    stop.set()
    t.join(timeout=2)
    server.close()


def _roundtrip(proxy: FaultProxy, payload: bytes = b"ping", timeout: float = 2.0) -> bytes:
    with socket.create_connection((proxy.host, proxy.port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(payload)
        return s.recv(1024)


def test_the_proxy_forwards_both_ways(echo: tuple[str, int]) -> None:
    with FaultProxy(echo) as proxy:
        assert _roundtrip(proxy) == b"ping"


def test_a_cut_drops_live_connections_and_refuses_new_ones_until_restored(
        echo: tuple[str, int]) -> None:
    with FaultProxy(echo) as proxy:
        live = socket.create_connection((proxy.host, proxy.port), timeout=2)
        live.sendall(b"a")
        assert live.recv(10) == b"a"
        proxy.cut()
        with pytest.raises(OSError):  # reset by the proxy (or closed: recv gives b"")
            live.sendall(b"b")
            if live.recv(10) == b"":
                raise ConnectionResetError("closed")
        live.close()
        started = time.monotonic()
        with pytest.raises(OSError):
            if _roundtrip(proxy) == b"":
                raise ConnectionResetError("closed")
        assert time.monotonic() - started < 1.0  # refused at once, not timed out
        proxy.restore()
        assert _roundtrip(proxy) == b"ping"


def test_a_blackhole_accepts_and_never_answers(echo: tuple[str, int]) -> None:
    with FaultProxy(echo) as proxy:
        proxy.cut(mode="blackhole")
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            _roundtrip(proxy, timeout=0.5)
        assert time.monotonic() - started >= 0.5
        proxy.restore()
        assert _roundtrip(proxy) == b"ping"


def test_latency_delays_each_direction(echo: tuple[str, int]) -> None:
    with FaultProxy(echo) as proxy:
        proxy.set_latency(0.2)
        started = time.monotonic()
        assert _roundtrip(proxy) == b"ping"
        assert time.monotonic() - started >= 0.4
        with pytest.raises(ValueError):
            proxy.set_latency(-1)


def test_assigned_twice_needs_a_second_courier_while_the_first_holds_the_order() -> None:
    history = [("o1", "order.assigned", {"courier_id": "c1"}),
               ("o2", "order.assigned", {"courier_id": "c1"}),
               ("o2", "order.unassigned", {}),
               ("o2", "order.assigned", {"courier_id": "c2"}),
               ("o1", "order.assigned", {"courier_id": "c2"})]
    assert assigned_twice(history) == ["o1"]


def test_the_invariants_name_a_lost_order_a_lost_update_and_an_undrained_outbox(
        tmp_path: Path) -> None:
    from lastmile.adapters.bus.outbox import Relay
    from lastmile.adapters.clock import ManualClock, SequentialIds
    from lastmile.bootstrap import build
    from lastmile.settings import Settings
    from lastmile.sim.seed import seed_demo

    container = build(Settings(data_dir=tmp_path), clock=ManualClock(), ids=SequentialIds(),
                      rng=random.Random(1))
    seed_demo(container.services, seed=1, merchants=1, consumers=1, couriers=1)
    container.outbox_relay = Relay(container.services, container.bus)
    container.outbox_relay.drain()
    container.close()
    url = f"sqlite:///{tmp_path / 'lastmile.sqlite'}"
    assert violations(url, []) == {}
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        courier = conn.execute(sa.text("select id, region_id from couriers")).first()
        assert courier is not None
        conn.execute(sa.text(
            "insert into orders (id, region_id, merchant_id, consumer_id, courier_id, status, "
            "version, placed_at, doc) values ('ord_x', :r, 'm', 'c', :c, 'assigned', 1, 0, '{}')"
        ), {"r": courier.region_id, "c": courier.id})
        conn.execute(sa.text("insert into outbox (event_id, payload, created_at) "
                             "values ('evt_x', '{}', 0)"))
    engine.dispose()
    found = violations(url, ["ord_x", "ord_gone"])
    assert found["lost_orders"] == ["ord_gone"]
    assert found["held_not_listed"] == ["ord_x"]
    assert found["outbox_not_drained"] == {"outbox_unsent": 1}


def test_waiting_for_the_drain_gives_up_on_a_stuck_outbox_not_on_a_slow_one(tmp_path: Path):
    from lastmile.bootstrap import build
    from lastmile.settings import Settings

    build(Settings(data_dir=tmp_path)).close()  # the migrated schema, nothing in the outbox
    url = f"sqlite:///{tmp_path / 'lastmile.sqlite'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for i in range(10):
            conn.execute(sa.text("insert into outbox (event_id, payload, created_at) "
                                 "values (:e, '{}', 0)"), {"e": f"evt_{i}"})
    started = time.monotonic()
    assert wait_drained(url, within_s=1.0) == {"outbox_unsent": 10}  # nothing moves: stuck
    assert 1.0 <= time.monotonic() - started < 5.0

    def relay() -> None:  # one event every 0.3 s: 3 s in all, never 2 s without progress
        for i in range(10):
            time.sleep(0.3)
            with engine.begin() as conn:
                conn.execute(sa.text("update outbox set sent_at = 1 where event_id = :e"),
                             {"e": f"evt_{i}"})

    slow = threading.Thread(target=relay)
    slow.start()
    started = time.monotonic()
    try:
        assert wait_drained(url, within_s=2.0) == {}
        assert time.monotonic() - started > 2.0
    finally:
        slow.join()
        engine.dispose()
