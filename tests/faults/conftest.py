"""Fixtures of the fault tests: a database of their own, proxies and processes that are
always stopped (helpers in rig.py). The tests that cut a server assert bounds in real time:
they carry ``xdist_group("realtime")``, so the parallel run (scripts/test) gives them to one
worker, one after another, never beside each other or the benches."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from rig import PG_TARGET, REDIS_TARGET, Processes, redis_available  # noqa: E402

import databases  # noqa: E402
from databases import fresh_database, postgres_available  # noqa: E402
from fault_proxy import FaultProxy  # noqa: E402


@pytest.fixture
def fault_database() -> Iterator[str]:
    """A fresh PostgreSQL database ``lastmile_fault_<hex>`` (a server-wide resource such as
    an advisory lock or a region lease cannot collide with another test's), dropped after,
    its connections closed by force (a killed process leaves some)."""
    reason = postgres_available()
    if reason:
        pytest.skip(reason)
    with fresh_database("fault") as url:
        yield url


@pytest.fixture
def pg_proxy() -> Iterator[FaultProxy]:
    with FaultProxy(PG_TARGET) as proxy:
        yield proxy


@pytest.fixture
def redis_proxy() -> Iterator[FaultProxy]:
    reason = redis_available()
    if reason:
        pytest.skip(reason)
    with FaultProxy(REDIS_TARGET) as proxy:
        yield proxy


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A unique key prefix, its keys deleted after the test."""
    with databases.redis_prefix("fault") as (_, prefix):
        yield prefix


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(tmp_path)
    try:
        yield procs
    finally:
        procs.stop_all()
