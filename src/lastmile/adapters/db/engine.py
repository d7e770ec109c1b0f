"""Engines for SQLite (WAL, embedded) and PostgreSQL, and schema migration."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from lastmile.adapters.db import tenant_scope

MIGRATIONS = Path(__file__).parent / "migrations"
READ_ONLY = "lastmile_read_only"  # connection info key set by the unit of work

# PostgreSQL bounds, sized for API requests (docs/faults.md): an unreachable server fails a
# request in about CONNECT_TIMEOUT_S (libpq's minimum is 2 s), a busy pool in POOL_TIMEOUT_S;
# the server cancels a statement after STATEMENT_TIMEOUT_MS and a lock wait after
# LOCK_TIMEOUT_MS (both become 503 dependency_unavailable, never a hang).
CONNECT_TIMEOUT_S = 2
POOL_TIMEOUT_S = 2.0
STATEMENT_TIMEOUT_MS = 5000
LOCK_TIMEOUT_MS = 2000


def sqlite_url(data_dir: Path) -> str:
    data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(data_dir / 'lastmile.sqlite').resolve()}"


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and write-first transactions."""
    if url.startswith("sqlite"):
        # No reset on return: a Connection's close() already rolls back the transaction it
        # began (every unit of work ends its own), so the pool's second rollback, once per
        # unit of work, only cost its Python path.
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                                  pool_reset_on_return=None)
        sa.event.listen(engine, "connect", _sqlite_connect)
        sa.event.listen(engine, "begin", _sqlite_begin)
        tenant_scope.install(engine)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    # pre-ping: a connection the server (or a cut) closed is replaced at checkout instead of
    # failing a request; recycle: none lives past 30 min (a proxy's idle timeout).
    engine = sa.create_engine(url, pool_size=pool_size, max_overflow=pool_size,
                              pool_pre_ping=True, pool_timeout=POOL_TIMEOUT_S,
                              pool_recycle=1800,
                              connect_args={"connect_timeout": CONNECT_TIMEOUT_S})
    sa.event.listen(engine, "connect", _postgres_connect)
    sa.event.listen(engine, "begin", _postgres_begin)
    tenant_scope.install(engine)
    return engine


def _postgres_connect(dbapi_conn: Any, _record: Any) -> None:
    # Session settings, once per new connection (the URL's own ``options`` keep search_path).
    autocommit = dbapi_conn.autocommit
    dbapi_conn.autocommit = True
    with dbapi_conn.cursor() as cur:
        cur.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
        cur.execute(f"SET lock_timeout = {LOCK_TIMEOUT_MS}")
    dbapi_conn.autocommit = autocommit


def _postgres_begin(conn: sa.Connection) -> None:
    if conn.info.get(READ_ONLY) and not conn.get_execution_options().get("postgresql_readonly"):
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the driver, issue BEGIN (the pysqlite recipe).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    for pragma in ("journal_mode=WAL", "busy_timeout=30000", "foreign_keys=ON",
                   "synchronous=NORMAL"):
        cur.execute(f"PRAGMA {pragma}")
    cur.close()


def _sqlite_begin(conn: sa.Connection) -> None:
    # IMMEDIATE takes the write lock up front: two writers queue on busy_timeout
    # instead of deadlocking when both try to upgrade a read lock. Read-only units
    # of work begin deferred: in WAL mode they read a snapshot beside the writer.
    # Sent on the driver's connection: through ``exec_driver_sql`` SQLAlchemy's whole
    # execution path (context, result, events) cost more than the BEGIN itself, once per
    # unit of work. An error still reaches the caller as SQLAlchemy's (``as_outage``).
    sql = "BEGIN" if conn.info.get(READ_ONLY) else "BEGIN IMMEDIATE"
    try:
        conn.connection.driver_connection.execute(sql)  # type: ignore[union-attr]
    except sqlite3.Error as exc:
        raise sa.exc.DBAPIError.instance(sql, (), exc, sqlite3.Error) from exc


def alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the schema to ``revision`` (idempotent)."""
    from alembic import command

    command.upgrade(alembic_config(engine), revision)
