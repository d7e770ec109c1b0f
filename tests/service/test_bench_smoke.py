"""Smoke runs of the HTTP benches at a tiny size against a real `lastmile serve` on SQLite:
the scripts still talk to the API as it is (strict JSON types, routes, codes), the dispatcher
works beside the order load, and the summaries carry their keys."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import api_orders  # noqa: E402
import pings  # noqa: E402
from harness import database  # noqa: E402

from databases import postgres_available  # noqa: E402

# The benches drive a server to saturation: in the parallel run they share one worker with
# the other tests that time real work (the "realtime" group, README's Tests).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("realtime")]


def test_the_orders_bench_places_orders_while_the_dispatcher_offers_and_couriers_deliver():
    args = argparse.Namespace(seconds=5.0, clients=2, couriers=2, merchant_desks=1,
                              max_orders=100_000)
    out = api_orders.bench("sqlite", args)
    assert out["orders"] > 0 and out["errors"] == sum(out["errors_by"].values())
    assert sum(out["offers_by_status"].values()) > 0, "the dispatcher made no offer"
    assert out["offers_seen"] > 0
    assert out["integrity"] == {"held_not_listed": 0, "listed_not_held": 0}
    assert {"orders_per_s", "p50_ms", "p99_ms"} <= set(api_orders.final_line({"s": out})["s"])


def test_the_pings_bench_sends_its_mix_through_the_batched_path():
    with tempfile.TemporaryDirectory() as tmp, database("sqlite", tmp) as env:
        out = pings._run(env, couriers=1, batch=20, seconds=1.0)
    assert out["requests"] > 0 and out["accepted"] > 0
    assert out["p99_ms_per_ping"] is not None
    assert "accepted" in out["by_reason"]


def _load(tmp_path: Path, profile: str) -> dict[str, object]:
    plot = tmp_path / "p99.png"
    out = subprocess.run(
        [sys.executable, str(BENCH / "load.py"), "--quick", "--profiles", profile,
         "--plot", str(plot)], capture_output=True, text=True, timeout=240, check=True)
    lines = out.stdout.strip().splitlines()
    detail, last = json.loads(lines[0]), json.loads(lines[-1])
    assert list(last) == [profile] and set(last[profile]) == {"orders_per_s", "pings_per_s",
                                                            "p99_ms"}
    assert plot.exists() and f"plot: {plot}" in out.stdout
    return {**detail, "last": last[profile]}


def test_the_load_bench_offers_rising_steps_and_ends_with_its_json_line(tmp_path):
    out = _load(tmp_path, "embedded")
    offered = [s["offered_per_s"] for s in out["steps"]]
    assert offered in ([10.0], [10.0, 20.0])  # a busy machine may saturate at the first step
    assert all(s["orders"] > 0 and s["errors"] == 0 for s in out["steps"])
    assert out["last"]["orders_per_s"] > 0 and out["last"]["pings_per_s"] > 0
    assert out["cpu_ms_per_order"] > 0 and out["pings"]["upload_errors"] == 0


@pytest.mark.postgres
@pytest.mark.redis
def test_the_load_bench_runs_the_scale_profile_on_postgresql_and_redis(tmp_path):
    reason = postgres_available()
    if reason:
        pytest.skip(reason)
    out = _load(tmp_path, "scale")
    assert out["last"]["orders_per_s"] > 0 and out["last"]["pings_per_s"] > 0
