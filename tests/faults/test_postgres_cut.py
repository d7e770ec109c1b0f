"""Cut PostgreSQL's connections under order load and restore them: the API answers 503 with
Retry-After naming the database, fast, never 500 and never hanging; once restored it serves
again without a restart; every order acknowledged with 201 exists, whole."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from commands import env_for, serve_cmd
from invariants import violations, wait_drained
from load import Answer, OrderLoad, statuses
from rig import Processes, make_city, via

from fault_proxy import FaultProxy

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(120),
              pytest.mark.xdist_group("realtime")]

FAIL_FAST_S = 3.0  # docs/faults.md: connect timeout 2 s, plus the request's own work
RECOVER_S = 6.0  # restored -> orders answered 201 again (pre-ping replaces dead connections)


def _readyz(base: str) -> tuple[int, dict[str, object]]:
    r = httpx.get(f"{base}/readyz", timeout=10)
    return r.status_code, r.json()




def test_a_database_cut_answers_503_fast_and_the_server_recovers_without_restart(
        fault_database: str, pg_proxy: FaultProxy, processes: Processes, tmp_path: Path):
    city = make_city(fault_database, tmp_path / "data", consumers=4, couriers=2)
    env = env_for(data_dir=tmp_path / "data", database_url=via(fault_database, pg_proxy))
    api = processes.start("api", serve_cmd, env)
    assert _readyz(api.base)[0] == 200
    load = OrderLoad(api.base, city, clients=4).start()
    try:
        time.sleep(2)
        windows, recovered = {}, {}
        for mode in ("refuse", "blackhole"):
            pg_proxy.cut(mode)  # type: ignore[arg-type]
            start = time.monotonic()
            time.sleep(1.0)
            code, report = _readyz(api.base)
            assert code == 503, report
            assert report["dependency"] == "database", report
            time.sleep(3.0)
            windows[mode] = (start + 0.5, time.monotonic())  # in-flight requests settle first
            pg_proxy.restore()
            restored = time.monotonic()
            time.sleep(RECOVER_S)
            after = [a for a in load.between(restored, time.monotonic()) if a.status == 201]
            assert after, f"no order placed within {RECOVER_S} s after restoring ({mode})"
            assert after[0].sent_at - restored < RECOVER_S
            recovered[mode] = round(after[0].sent_at + after[0].latency_s - restored, 2)
            assert _readyz(api.base)[0] == 200
    finally:
        load.stop()

    assert api.proc is not None and api.proc.poll() is None, "the server died"
    figures: dict[str, dict[str, float]] = {}
    for mode, (start, end) in windows.items():
        during = [a for a in load.between(start, end) if a.sent_at + a.latency_s < end]
        assert len(during) >= 4, (mode, statuses(during))
        bad = [a for a in during if not (a.status == 503 and a.code == "dependency_unavailable"
                                         and a.dependency == "database" and a.retry_after)]
        assert not bad, (mode, statuses(during), api.tail())
        slowest = max(a.latency_s for a in during)
        figures[mode] = _figures(during)
        assert slowest < FAIL_FAST_S, (mode, slowest)
    assert not [a for a in load.answers if a.status >= 500 and a.status != 503], \
        statuses(load.answers)
    assert len(load.acknowledged) > 10
    assert wait_drained(fault_database, within_s=15) == {}
    print(json.dumps({"postgres_cut_503_s": figures, "recovered_s": recovered}))  # pytest -s shows it
    assert violations(fault_database, load.acknowledged) == {}


def _figures(answers: list[Answer]) -> dict[str, float]:
    """How long the 503s took, in seconds (docs/faults.md quotes them)."""
    took = sorted(a.latency_s for a in answers)
    return {"n": len(took), "p50": round(took[len(took) // 2], 3), "max": round(took[-1], 3)}
