"""Wrong drop-off PIN attempts per order, counted atomically (one upsert, row locked)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from lastmile.adapters.db import tables as t


class SqlPinAttempts:
    def __init__(self, conn: Connection):
        self.conn = conn

    def count_attempt(self, order_id: str, at: float) -> int:
        """One more attempt on ``order_id``; the new count. Locks the row until commit or
        rollback, so two attempts at one order are judged one after the other."""
        c = t.pin_attempts.c
        insert: Any = (postgresql.insert if self.conn.dialect.name == "postgresql"
                       else sqlite.insert)
        stmt = (insert(t.pin_attempts)
                .values(order_id=order_id, failures=1, last_failed_at=at)
                .on_conflict_do_update(index_elements=[c.order_id],
                                       set_={"failures": c.failures + 1, "last_failed_at": at})
                .returning(c.failures))
        return int(self.conn.execute(stmt).scalar_one())

    def failures(self, order_id: str) -> int:
        got = self.conn.execute(sa.select(t.pin_attempts.c.failures).where(
            t.pin_attempts.c.order_id == order_id)).scalar()
        return int(got or 0)

    def reset(self, order_id: str) -> int:
        """Forget the order's wrong attempts; how many there were."""
        had = self.failures(order_id)
        self.conn.execute(t.pin_attempts.delete().where(t.pin_attempts.c.order_id == order_id))
        return had
