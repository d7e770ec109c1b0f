"""Statements built once and executed with parameters.

Building a Core statement per call (``select(t).where(c == value)``, ``insert().values(**row)``)
and computing its cache key cost about four times the Python time of executing it
(measured: ~190 us against ~45-50 us per statement on SQLite, docs/capacity.md). A
statement built once keeps its cache key memoized, so only the execution is left.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite


@cache
def select_where(table: sa.Table, *columns: str) -> sa.Select[Any]:
    """``SELECT * FROM table WHERE col = :col AND ...`` (parameters named after columns)."""
    return sa.select(table).where(*(table.c[c] == sa.bindparam(c) for c in columns))


WHERE = "where_"  # prefix of an ``update_where`` condition's parameters


@cache
def update_where(table: sa.Table, *columns: str) -> sa.Update:
    """``UPDATE table SET .. WHERE col = :where_col AND ...``: the executed row's column
    values give the SET clause, ``where_<col>`` parameters the condition (a bind parameter
    named after a column would be taken for its new value)."""
    return table.update().where(*(table.c[c] == sa.bindparam(WHERE + c) for c in columns))


@cache
def insert_into(table: sa.Table) -> sa.Insert:
    """``INSERT INTO table``; the row's dict gives the columns and values."""
    return table.insert()


@cache
def insert_or_skip_into(table: sa.Table, dialect: str) -> sa.Insert:
    """``INSERT .. ON CONFLICT DO NOTHING RETURNING 1`` (see ``writes.insert_or_skip``)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(table).on_conflict_do_nothing().returning(sa.literal(1))
