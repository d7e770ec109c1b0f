"""Cut NATS (the JetStream event log) under order load and restore it. Orders do not wait
for NATS: their events are in the PostgreSQL outbox, in the order's own transaction, and
the relay publishes them when NATS is back. So during the cut orders answer 201 (or 503
naming NATS where a request needs it, fast, never 500); /readyz reports NATS down while the
process stays in service ("degraded"); after the restore the outbox drains and every
acknowledged order and its events are there, each effect once.

Needs the JetStream bus (``lastmile.adapters.bus.jetstream``, selected by
LASTMILE_NATS_URL); skipped until it is merged."""

from __future__ import annotations

import importlib.util
import socket
import time
import uuid
from pathlib import Path

import httpx
import pytest
from commands import env_for, serve_cmd
from invariants import violations, wait_drained
from load import OrderLoad, statuses
from rig import NATS_TARGET, Processes, make_city, via

from fault_proxy import FaultProxy

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.nats,
              pytest.mark.timeout(120), pytest.mark.xdist_group("realtime")]

FAIL_FAST_S = 3.0
NO_BUS = importlib.util.find_spec("lastmile.adapters.bus.jetstream") is None


def _nats_available() -> str | None:
    try:
        with socket.create_connection(NATS_TARGET, timeout=1) as sock:
            sock.settimeout(1)
            if sock.recv(4) == b"INFO":
                return None
    except OSError as exc:
        return f"no NATS answers on 127.0.0.1:4222: {exc.__class__.__name__}"
    return "the server on 127.0.0.1:4222 is not NATS"


@pytest.mark.skipif(NO_BUS, reason="the NATS JetStream bus (lastmile.adapters.bus.jetstream) "
                    "is not in this tree yet: with no bus on NATS there is nothing to cut")
def test_a_nats_cut_keeps_orders_flowing_and_the_outbox_drains_after_restore(
        fault_database: str, processes: Processes, tmp_path: Path):
    reason = _nats_available()
    if reason:
        pytest.skip(reason)
    city = make_city(fault_database, tmp_path / "data", consumers=2, couriers=2)
    with FaultProxy(NATS_TARGET) as proxy:
        env = env_for(data_dir=tmp_path / "data", database_url=fault_database,
                      nats_url=via("nats://127.0.0.1:4222", proxy))
        # One stream and subject prefix of this test's own (deleted with the server's own
        # teardown of a per-test stream, see the bus's settings).
        env["LASTMILE_NATS_STREAM"] = f"lmfault_{uuid.uuid4().hex[:10]}"
        api = processes.start("api", serve_cmd, env)
        load = OrderLoad(api.base, city, clients=2, pause_s=0.1).start()
        windows = {}
        try:
            time.sleep(2)
            for mode in ("refuse", "blackhole"):
                proxy.cut(mode)  # type: ignore[arg-type]
                start = time.monotonic()
                time.sleep(1.5)
                ready = httpx.get(f"{api.base}/readyz", timeout=10).json()
                assert ready["dependencies"]["nats"]["ok"] is False, ready
                time.sleep(2.5)
                windows[mode] = (start + 0.5, time.monotonic())
                proxy.restore()
                time.sleep(4)
        finally:
            load.stop()
        for mode, (start, end) in windows.items():
            during = [a for a in load.between(start, end) if a.sent_at + a.latency_s < end]
            assert during, mode
            bad = [a for a in during if a.status != 201 and not (
                a.status == 503 and a.dependency == "nats" and a.retry_after)]
            assert not bad, (mode, statuses(during))
            assert max(a.latency_s for a in during) < FAIL_FAST_S, (mode, statuses(during))
        assert httpx.get(f"{api.base}/readyz", timeout=10).status_code == 200
        assert wait_drained(fault_database, within_s=20) == {}
        assert violations(fault_database, load.acknowledged) == {}
