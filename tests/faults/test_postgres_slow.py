"""PostgreSQL that answers, but seconds late (latency on every round trip): requests still
get an answer within the request deadline (503 with Retry-After, never a hang or a 500);
once the latency is gone the same server serves at full speed; nothing acknowledged is
lost. A little latency is no outage: requests slow down and still succeed."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from commands import env_for, serve_cmd
from invariants import violations, wait_drained
from load import OrderLoad, statuses
from rig import Processes, make_city, via

from fault_proxy import FaultProxy
from lastmile.api.readiness import REQUEST_DEADLINE_S

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(120),
              pytest.mark.xdist_group("realtime")]

ANSWER_WITHIN_S = REQUEST_DEADLINE_S + 1.5  # the deadline, and the way back to the client


def test_a_database_seconds_late_gets_503_within_the_deadline_and_recovers(
        fault_database: str, pg_proxy: FaultProxy, processes: Processes, tmp_path: Path):
    city = make_city(fault_database, tmp_path / "data", consumers=3, couriers=1)
    env = env_for(data_dir=tmp_path / "data", database_url=via(fault_database, pg_proxy))
    api = processes.start("api", serve_cmd, env)
    load = OrderLoad(api.base, city, clients=3, pause_s=0.1).start()
    try:
        time.sleep(2)
        pg_proxy.set_latency(0.02)  # a far-away database: slower, still fine
        mild_start = time.monotonic()
        time.sleep(3)
        mild_end = time.monotonic()
        pg_proxy.set_latency(3.0)  # every round trip 6 s: hopeless for a request
        slow_start = time.monotonic()
        time.sleep(REQUEST_DEADLINE_S + 3)
        slow_end = time.monotonic()
        pg_proxy.set_latency(0)
        restored = time.monotonic()
        time.sleep(5)
    finally:
        load.stop()

    mild = [a for a in load.between(mild_start, mild_end) if a.sent_at + a.latency_s < mild_end]
    assert mild and all(a.status == 201 for a in mild), statuses(mild)
    slow = load.finished_between(slow_start + 0.1, slow_end)  # answered while it was slow
    assert slow, "no answer at all while the database was slow"
    assert all(a.status == 503 and a.retry_after for a in slow), statuses(slow)
    assert max(a.latency_s for a in slow) < ANSWER_WITHIN_S, statuses(slow)
    back = [a for a in load.between(restored + 1, time.monotonic()) if a.status == 201]
    assert back, statuses(load.between(restored, time.monotonic()))
    assert not [a for a in load.answers if a.status >= 500 and a.status != 503], \
        statuses(load.answers)
    print(json.dumps({"postgres_slow": {"503_max_s": round(max(a.latency_s for a in slow), 2),
                                        "answers": statuses(slow)}}))
    assert wait_drained(fault_database, within_s=20) == {}
    assert violations(fault_database, load.acknowledged) == {}
