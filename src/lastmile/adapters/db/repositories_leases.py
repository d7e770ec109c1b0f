"""Leases with fencing tokens and dispatcher heartbeats (``ports.LeaseRepo``) in SQL."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from lastmile.adapters.db import tables as t
from lastmile.core.errors import Conflict
from lastmile.core.leases import Lease


class SqlLeases:
    def __init__(self, conn: Connection):
        self.conn = conn

    def get(self, name: str, *, lock: bool = False) -> Lease | None:
        stmt = sa.select(t.leases).where(t.leases.c.name == name)
        if lock:  # FOR SHARE on PostgreSQL; SQLite's write transaction already excludes others
            stmt = stmt.with_for_update(read=True)
        row = self.conn.execute(stmt).mappings().first()
        if row is None:
            return None
        return Lease(name=row["name"], owner=row["owner"], token=int(row["token"]),
                     expires_at=float(row["expires_at"]), acquired_at=float(row["acquired_at"]))

    def put(self, lease: Lease, *, expected_token: int | None) -> None:
        values = {"owner": lease.owner, "token": lease.token, "expires_at": lease.expires_at,
                  "acquired_at": lease.acquired_at}
        c = t.leases.c
        if expected_token is None:
            # A unique violation here is a concurrent first claim: the unit of work turns it
            # into Conflict("concurrent_update").
            self.conn.execute(t.leases.insert().values(name=lease.name, **values))
            return
        done = self.conn.execute(t.leases.update().where(
            c.name == lease.name, c.token == expected_token).values(**values))
        if done.rowcount != 1:
            raise Conflict("concurrent_update",
                           f"lease {lease.name} changed meanwhile (expected token "
                           f"{expected_token})", current_state="changed")

    def heartbeat(self, worker_id: str, now: float, *, forget_before: float) -> None:
        c = t.dispatcher_workers.c
        self.conn.execute(t.dispatcher_workers.delete().where(c.seen_at < forget_before))
        insert: Any = (postgresql.insert if self.conn.dialect.name == "postgresql"
                       else sqlite.insert)
        self.conn.execute(insert(t.dispatcher_workers).values(worker_id=worker_id, seen_at=now)
                          .on_conflict_do_update(index_elements=[c.worker_id],
                                                 set_={"seen_at": now}))

    def live_workers(self, since: float) -> list[str]:
        c = t.dispatcher_workers.c
        stmt = sa.select(c.worker_id).where(c.seen_at >= since).order_by(c.worker_id)
        return list(self.conn.execute(stmt).scalars())

    def forget_worker(self, worker_id: str) -> None:
        self.conn.execute(t.dispatcher_workers.delete().where(
            t.dispatcher_workers.c.worker_id == worker_id))
