"""A unit of work on SQLite sends BEGIN on the driver's connection: a writer that finds the
database locked by another process still gets the 503 outage, not a raw driver error."""

import sqlite3

import pytest
import sqlalchemy as sa

from lastmile.adapters.db.engine import make_engine, migrate, sqlite_url
from lastmile.adapters.db.uow import SqlUnitOfWorkFactory
from lastmile.core.errors import DependencyUnavailable


def test_a_locked_database_at_begin_is_an_outage_and_reads_still_begin(tmp_path):
    url = sqlite_url(tmp_path)
    engine = make_engine(url)
    migrate(engine)
    # Another process holds the write lock; this engine waits 50 ms, not 30 s.
    sa.event.listen(engine, "connect",
                    lambda dbapi_conn, _r: dbapi_conn.execute("PRAGMA busy_timeout=50"))
    engine.dispose()
    other = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    uows = SqlUnitOfWorkFactory(engine)
    try:
        with pytest.raises(DependencyUnavailable, match="locked"), uows():
            pass
        with uows(read_only=True) as uow:  # deferred BEGIN: reads beside the writer (WAL)
            assert uow.couriers.get("cou_x") is None
    finally:
        other.execute("ROLLBACK")
        other.close()
    with uows() as uow:  # the lock gone, a writer begins again on the pooled connection
        assert uow.couriers.get("cou_x") is None
        uow.commit()
    engine.dispose()
