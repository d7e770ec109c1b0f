"""A surge of orders with merchants confirming and couriers accepting, while PostgreSQL is
cut for a few seconds under both processes, then the dispatcher process and the API process
are killed with SIGKILL and restarted: the dispatcher survives the cut and offers again
after it, and afterwards no
acknowledged order is lost, none was assigned twice, no courier holds two offers, every
event's effect was applied once and the outbox drains (tests/faults/invariants.py)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from api_orders import Side, _courier, _merchant_desk
from commands import dispatcher_cmd, env_for, scale_cmd
from invariants import violations, wait_drained
from load import OrderLoad, statuses
from rig import Processes, make_city, via

from fault_proxy import FaultProxy

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis, pytest.mark.nats,
              pytest.mark.timeout(150), pytest.mark.xdist_group("realtime")]

RELAY_LEASE_S = 3.0  # a killed relay's claimed events come back after this


def test_kill_9_of_the_dispatcher_and_the_api_mid_surge_loses_and_doubles_nothing(
        fault_database: str, pg_proxy: FaultProxy, redis_prefix: str, processes: Processes,
        tmp_path: Path):
    city = make_city(fault_database, tmp_path / "data", consumers=6, couriers=6, merchants=8)
    # Live positions in Redis: the dispatcher process sees the couriers the API tracks.
    env = env_for(data_dir=tmp_path / "data", database_url=via(fault_database, pg_proxy),
                  redis_url="redis://127.0.0.1:6379/0", redis_prefix=redis_prefix,
                  nats_url="nats://127.0.0.1:4222", relay_lease_s=RELAY_LEASE_S)
    api = processes.start("api", scale_cmd, env)  # two API processes, the JetStream log
    dispatcher = processes.start("dispatcher", dispatcher_cmd, env)

    side = Side()
    helpers = [threading.Thread(target=_merchant_desk, args=(api.base, city.merchants, side),
                                daemon=True)]
    helpers += [threading.Thread(target=_courier, args=(api.base, key, i, side), daemon=True)
                for i, key in enumerate(city.courier_keys)]
    for t in helpers:
        t.start()
    orders = OrderLoad(api.base, city, clients=4, pause_s=0.1).start()
    try:
        time.sleep(4)
        pg_proxy.cut()
        time.sleep(3)
        pg_proxy.restore()
        restored_at = time.time()  # offers carry wall-clock epoch seconds
        time.sleep(5)
        assert dispatcher.proc is not None and dispatcher.proc.poll() is None
        killed_at = time.time()
        dispatcher.kill9()
        time.sleep(1)
        dispatcher.start()
        time.sleep(3)
        api.kill9()  # mid-surge: requests in flight are cut, clients retry their keys
        api.start()
        time.sleep(6)
    finally:
        orders.stop()
    time.sleep(6)  # merchants and couriers finish what was placed
    side.stop.set()
    for t in helpers:
        t.join(timeout=30)

    placed, accepted = len(orders.acknowledged), side.counts["offers_accepted"]
    assert placed >= 20, statuses(orders.answers)
    assert _offers_between(fault_database, restored_at, killed_at) > 0, \
        "the dispatcher made no offer between the end of the cut and its kill"
    assert accepted >= 1 and side.counts["confirmed"] >= 1, dict(side.counts)
    # During the API's restart clients see refused connections; never a 500.
    assert not [a for a in orders.answers if a.status >= 500 and a.status != 503], \
        statuses(orders.answers)
    left = wait_drained(fault_database, within_s=RELAY_LEASE_S + 20)
    assert left == {}, (left, api.tail(), dispatcher.tail())
    print(json.dumps({"surge_kill": {"orders_acknowledged": placed, **dict(side.counts),
                                     "order_answers": statuses(orders.answers)}}))
    assert violations(fault_database, orders.acknowledged) == {}


def _offers_between(url: str, start: float, end: float) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(
                "select count(*) from offers where created_at >= :s and created_at < :e"),
                {"s": start, "e": end}).scalar_one())
    finally:
        engine.dispose()
