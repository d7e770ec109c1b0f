"""The real PostgreSQL and Redis the marked tests use: one fresh schema (or database) and one
key prefix per test, so helpers and parallel runs never collide."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis
import sqlalchemy as sa

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_available() -> str | None:
    """None when the server answers, else the reason to skip."""
    try:
        engine = sa.create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any failure to connect means: no server to test against
        return f"no PostgreSQL answers on 127.0.0.1:5432 (database test): {exc.__class__.__name__}"


def pg_schema_url() -> tuple[str, str]:
    schema = f"lm_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f"create schema {schema}"))
    engine.dispose()
    return f"{PG_URL}?options=-csearch_path%3D{schema}", schema


def drop_schema(schema: str) -> None:
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f"drop schema {schema} cascade"))
    engine.dispose()


@contextmanager
def fresh_database(tag: str) -> Iterator[str]:
    """A database of its own, ``lastmile_<tag>_<hex>``, for tests whose server processes own
    their connections (or take server-wide resources such as leases), dropped after with its
    connections closed by force (a killed process leaves some)."""
    name = f"lastmile_{tag}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def redis_or_skip() -> redis.Redis:
    """A client of the Redis on 127.0.0.1:6379, or the test skips, saying so."""
    client = redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=0.5)
    try:
        client.ping()
    except (redis.ConnectionError, redis.TimeoutError):
        client.close()
        pytest.skip("no Redis server answers on 127.0.0.1:6379")
    return client


@contextmanager
def redis_prefix(tag: str) -> Iterator[tuple[redis.Redis, str]]:
    """A client and a key prefix of this test's own (``test:<tag>:<hex>:``); every key
    under it is deleted after."""
    client = redis_or_skip()
    prefix = f"test:{tag}:{uuid.uuid4().hex}:"
    try:
        yield client, prefix
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()
