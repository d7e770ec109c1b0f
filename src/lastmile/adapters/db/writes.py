"""Writes that two transactions may race on, made safe by the database itself."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from lastmile.adapters.db.prepared import insert_or_skip_into


def insert_or_skip(conn: Connection, table: sa.Table, values: Mapping[str, Any]) -> bool:
    """Insert one row; False when a unique key already holds it (``ON CONFLICT DO NOTHING``).

    One statement instead of select-then-insert: of two transactions inserting the same
    key, exactly one inserts and the other waits for it and gets False, never an
    IntegrityError (which on PostgreSQL would also abort the whole transaction).
    """
    # RETURNING, not rowcount: psycopg reports no rowcount for INSERT .. ON CONFLICT (-1).
    stmt = insert_or_skip_into(table, conn.dialect.name)
    return conn.execute(stmt, dict(values)).first() is not None


def insert_or_update(conn: Connection, table: sa.Table, values: Mapping[str, Any], *,
                     keys: Sequence[str]) -> None:
    """Insert one row, or update the row holding its ``keys`` (``ON CONFLICT DO UPDATE``)."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(table).values(**values)
    changes = {k: stmt.excluded[k] for k in values if k not in keys}
    conn.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=changes))
