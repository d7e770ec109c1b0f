"""The exposition: several workers summed, the bus's lag, a database outage survived."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from lastmile.adapters.clock import ManualClock
from lastmile.adapters.telemetry.metrics import (
    MULTIPROC_ENV,
    Exposition,
    exposition_for,
    prepare_multiprocess_dir,
    worker_exit,
)

SRC = str(Path(__file__).resolve().parents[3] / "src")
WORKER = """
from lastmile.adapters.telemetry import metrics as m
m.HTTP_REQUESTS.labels("GET", "/v1/x/{id}", "2xx", "acme:live").inc(3)
m.HTTP_IN_FLIGHT.inc()
"""


def _values(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def test_every_workers_counts_are_summed_and_a_dead_workers_gauge_leaves(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MULTIPROC_ENV, "")  # restored after: prepare sets it for the workers
    folder = tmp_path / "prom"
    folder.mkdir()
    (folder / "counter_99999.db").write_bytes(b"a previous run's file")
    prepare_multiprocess_dir(folder)
    assert os.environ[MULTIPROC_ENV] == str(folder)
    assert not list(folder.glob("*.db"))

    env = {**os.environ, "PYTHONPATH": SRC}
    for _ in range(2):  # two processes, as two uvicorn workers
        worker = subprocess.run([sys.executable, "-c", WORKER], env=env, timeout=60,
                                capture_output=True, text=True)
        assert worker.returncode == 0, worker.stderr
    live = sorted(int(p.stem.rsplit("_", 1)[1]) for p in folder.glob("gauge_livesum_*.db"))
    assert len(live) == 2

    exposition = Exposition(CollectorRegistry(), multiprocess_dir=str(folder))
    values = _values(exposition.render().decode())
    labels = frozenset({"method": "GET", "route": "/v1/x/{id}", "status_class": "2xx",
                        "tenant": "acme:live"}.items())
    assert values[("lastmile_http_requests_total", labels)] == 6
    assert values[("lastmile_http_requests_in_flight", frozenset())] == 2

    worker_exit(live[0])
    values = _values(exposition.render().decode())
    assert values[("lastmile_http_requests_in_flight", frozenset())] == 1
    assert values[("lastmile_http_requests_total", labels)] == 6  # counters outlive workers


class LaggingBus:
    def lag(self) -> dict[str, int]:
        return {"dispatcher-reg_a": 5, "drive-webhooks": 0}


def test_a_database_that_does_not_answer_is_reported_not_raised(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path}/missing/dir/x.sqlite")
    try:
        text = exposition_for(engine, ManualClock(), LaggingBus()).render().decode()
    finally:
        engine.dispose()
    values = _values(text)
    assert values[("lastmile_event_lag_up", frozenset())] == 0
    assert values[("lastmile_event_bus_pending",
                   frozenset({("consumer", "dispatcher-reg_a")}))] == 5
    assert values[("lastmile_event_bus_pending", frozenset({("consumer", "drive-webhooks")}))] == 0
    assert "lastmile_http_requests_in_flight" in text  # the process's metrics still come


def test_a_bus_without_lag_adds_no_bus_family(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path}/missing/dir/x.sqlite")
    try:
        text = exposition_for(engine, ManualClock(), object()).render().decode()
    finally:
        engine.dispose()
    assert "lastmile_event_bus_pending" not in text


def test_a_failed_worker_tick_is_counted_by_worker_name() -> None:
    from prometheus_client import REGISTRY

    from lastmile.adapters.loop import LoopWorker

    def errors() -> float:
        return REGISTRY.get_sample_value("lastmile_worker_tick_errors_total",
                                         {"worker": "obs-test-tick"}) or 0.0

    before = errors()
    failed = threading.Event()

    def tick() -> None:
        failed.set()
        raise ConnectionError("database is down")

    worker = LoopWorker("obs-test-tick", tick, 0.01)
    worker.start()
    try:
        assert failed.wait(10)
    finally:
        worker.stop()
    assert worker.errors >= 1
    assert errors() - before == worker.errors
