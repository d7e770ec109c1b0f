"""Smoke runs of the HTTP benches at a tiny size against a real `lastmile serve` on SQLite:
the scripts still talk to the API as it is (strict JSON types, routes, codes), the dispatcher
works beside the order load, and the summaries carry their keys."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import api_orders  # noqa: E402
import pings  # noqa: E402
from harness import database  # noqa: E402

pytestmark = pytest.mark.slow


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
