"""Cut Redis (live positions, tracking state) under pings and orders, then restore it: pings
answer 503 naming Redis, fast, never 500; after the restore they are accepted again by the
same server; the live store holds the newest position; acknowledged orders all exist."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
import redis
from commands import env_for, serve_cmd
from invariants import violations, wait_drained
from load import Answer, OrderLoad, PingLoad, statuses
from rig import Processes, make_city, via

from fault_proxy import FaultProxy

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis,
              pytest.mark.timeout(120), pytest.mark.xdist_group("realtime")]

FAIL_FAST_S = 3.0  # docs/faults.md: 0.5 s socket and connect timeouts, one retry
RECOVER_S = 5.0
# How long each cut lasts after /readyz is checked: long enough for every courier to get at
# least two complete answers while a blackholed Redis holds each ping for up to FAIL_FAST_S.
HOLD_S = 4.5


def test_a_redis_cut_answers_503_for_pings_and_the_server_recovers_without_restart(
        fault_database: str, redis_proxy: FaultProxy, redis_prefix: str,
        processes: Processes, tmp_path: Path):
    city = make_city(fault_database, tmp_path / "data", consumers=2, couriers=2)
    env = env_for(data_dir=tmp_path / "data", database_url=fault_database,
                  redis_url=via("redis://127.0.0.1:6379/0", redis_proxy),
                  redis_prefix=redis_prefix)
    api = processes.start("api", serve_cmd, env)
    pings = PingLoad(api.base, city.courier_keys).start()
    orders = OrderLoad(api.base, city, clients=2, pause_s=0.2).start()
    windows = {}
    try:
        time.sleep(2)
        for mode in ("refuse", "blackhole"):
            redis_proxy.cut(mode)  # type: ignore[arg-type]
            start = time.monotonic()
            time.sleep(1.0)
            ready = httpx.get(f"{api.base}/readyz", timeout=10)
            assert ready.status_code == 503 and ready.json()["dependency"] == "redis", ready.text
            time.sleep(HOLD_S)
            windows[mode] = (start + 0.5, time.monotonic())
            redis_proxy.restore()
            restored = time.monotonic()
            time.sleep(RECOVER_S)
            ok = [a for a in pings.between(restored, time.monotonic()) if a.status == 200]
            assert ok and ok[0].sent_at - restored < RECOVER_S, statuses(
                pings.between(restored, time.monotonic()))
            assert httpx.get(f"{api.base}/readyz", timeout=10).status_code == 200
    finally:
        pings.stop()
        orders.stop()

    assert api.proc is not None and api.proc.poll() is None, "the server died"
    figures: dict[str, dict[str, float]] = {}
    for mode, (start, end) in windows.items():
        during = [a for a in pings.between(start, end) if a.sent_at + a.latency_s < end]
        assert len(during) >= 4, (mode, statuses(during))
        bad = [a for a in during if not (a.status == 503 and a.dependency == "redis"
                                         and a.retry_after)]
        assert not bad, (mode, bad, statuses(during), api.tail())
        assert max(a.latency_s for a in during) < FAIL_FAST_S, (mode, statuses(during))
        figures[mode] = _figures(during)
        for a in orders.between(start, end):  # orders may or may not need Redis: never 500
            assert a.status in (200, 201, 503), (mode, statuses(orders.between(start, end)))
    everything = pings.answers + orders.answers
    assert not [a for a in everything if a.status >= 500 and a.status != 503], \
        statuses(everything)
    _live_positions_are_the_newest(pings, redis_prefix)
    assert wait_drained(fault_database, within_s=15) == {}
    print(json.dumps({"redis_cut_503_s": figures}))  # pytest -s shows it
    assert violations(fault_database, orders.acknowledged) == {}


def _live_positions_are_the_newest(pings: PingLoad, prefix: str) -> None:
    """Each courier's live position is its last acknowledged ping or one sent after it (a
    ping whose answer was lost may still have been applied): nothing acknowledged is lost."""
    client = redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1)
    try:
        for courier_id, sent in pings.sent.items():
            last_ok = max(i for i, (_, _, status) in enumerate(sent) if status == 200)
            held = client.hget(f"{prefix}:courier:{courier_id}", "lat")
            assert held is not None, f"no live position for {courier_id}"
            candidates = {round(lat, 7) for lat, _, _ in sent[last_ok:]}
            assert round(float(held), 7) in candidates, (courier_id, float(held), sent[-3:])
    finally:
        client.close()


def _figures(answers: list[Answer]) -> dict[str, float]:
    """How long the 503s took, in seconds (docs/faults.md quotes them)."""
    took = sorted(a.latency_s for a in answers)
    return {"n": len(took), "p50": round(took[len(took) // 2], 3), "max": round(took[-1], 3)}
