"""A bounded surge against real `lastmile serve` processes on loopback (bench/overload.py at
a small size: 2 s phases, 16 browse clients against 2 order placers and 2 pinging couriers;
the full bench runs 50 browse clients against the baseline's 1, the x50): browse is shed first
while order placement keeps succeeding, faster than in the same surge without shedding.
Latencies are compared with each other, never with fixed ms."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))  # for its ``harness`` import
# Loaded by path under its own name: a test package called ``overload`` must not shadow it.
_spec = importlib.util.spec_from_file_location("bench_overload", BENCH / "overload.py")
assert _spec is not None and _spec.loader is not None
overload = importlib.util.module_from_spec(_spec)
sys.modules["bench_overload"] = overload  # dataclasses look their module up there
_spec.loader.exec_module(overload)

# It compares latencies of two surges: in the parallel run it shares the one worker of the
# other tests that time real work (the "realtime" group, README's Tests).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("realtime")]


def test_in_a_surge_browse_is_shed_while_orders_and_pings_succeed_with_bounded_latency():
    out = overload.bench(seconds=2.0, placers=2, browsers=16, shed_browse=3, shed_normal=6,
                         baseline=False, announce=False)
    unshed, shed = out["surge_unshed"], out["surge_shed"]
    assert unshed["browse"]["shed"] == 0  # today's behaviour: everything queues
    # with shedding: browse refused with 429, every order placed
    assert shed["browse"]["shed"] > 0
    assert shed["orders"]["shed"] == 0 and shed["orders"]["errors"] == 0
    assert shed["pings"]["admitted"] > 0  # courier updates are critical too: never shed
    assert shed["pings"]["shed"] == 0 and shed["pings"]["errors"] == 0
    assert shed["orders"]["admitted"] >= unshed["orders"]["admitted"] > 0
    assert shed["orders"]["p50_ms"] < unshed["orders"]["p50_ms"], out["order_p50_ms"]
