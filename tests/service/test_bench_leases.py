"""Smoke run of bench/leases.py at a tiny size: both mechanisms still acquire, renew and
hand a dead holder's lease over after its TTL, and the summaries carry their keys."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from databases import postgres_available

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import leases as bench  # noqa: E402

pytestmark = pytest.mark.slow


def _check(out: dict[str, object], ttl_s: float) -> None:
    assert {"acquire", "renew", "takeover_s", "cpu_ms_per_op"} <= set(out)
    assert ttl_s * 0.9 <= float(out["takeover_s"]) <= ttl_s + 5.0  # type: ignore[arg-type]
    for op in ("acquire", "renew"):
        summary = out[op]
        assert isinstance(summary, dict) and 0 < summary["median_ms"] <= summary["p99_ms"]


@pytest.mark.postgres
def test_the_postgres_lease_is_measured_and_taken_over_after_its_ttl():
    reason = postgres_available()
    if reason:
        pytest.skip(reason)
    _check(bench.bench_postgres(5, 0.5, 0.05), 0.5)


@pytest.mark.nats
def test_the_nats_kv_lease_is_measured_and_taken_over_after_its_ttl():
    try:
        socket.create_connection(("127.0.0.1", 4222), timeout=2).close()
    except OSError as exc:
        pytest.skip(f"no NATS answers on 127.0.0.1:4222: {exc}")
    _check(bench.bench_nats(5, 0.5, 0.05), 0.5)
