"""Fixtures of the fault tests: a database of their own, proxies and processes that are
always stopped (helpers in rig.py)."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from proxy import FaultProxy  # noqa: E402
from rig import PG_TARGET, REDIS_TARGET, Processes, redis_available  # noqa: E402

from databases import PG_URL, postgres_available  # noqa: E402


@pytest.fixture
def fault_database() -> Iterator[str]:
    """A fresh PostgreSQL database ``lastmile_fault_<hex>`` (a server-wide resource such as
    an advisory lock or a region lease cannot collide with another test's), dropped after,
    its connections closed by force (a killed process leaves some)."""
    reason = postgres_available()
    if reason:
        pytest.skip(reason)
    name = f"lastmile_fault_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


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
    import redis

    prefix = f"lmfault:{uuid.uuid4().hex[:10]}:"
    yield prefix
    client = redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(tmp_path)
    try:
        yield procs
    finally:
        procs.stop_all()
