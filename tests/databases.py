"""The real PostgreSQL the marked tests use: one fresh schema per test, so helpers and
parallel runs never collide."""

from __future__ import annotations

import uuid

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
