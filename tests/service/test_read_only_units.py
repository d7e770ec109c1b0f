"""A read-only unit of work on PostgreSQL begins READ ONLY (one round trip) and the pooled
connection it used writes again afterwards."""

import pytest
import sqlalchemy as sa

from databases import drop_schema, pg_schema_url, postgres_available
from lastmile.adapters.db.engine import make_engine, migrate
from lastmile.adapters.db.tables import inbox
from lastmile.adapters.db.uow import SqlUnitOfWorkFactory

_COUNT = sa.select(sa.func.count()).select_from(inbox)  # Core: units refuse raw SQL

pytestmark = pytest.mark.postgres


@pytest.fixture
def factory():
    reason = postgres_available()
    if reason:
        pytest.skip(reason)
    url, schema = pg_schema_url()
    engine = make_engine(url, pool_size=1)
    migrate(engine)
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute",
                    lambda _c, _cur, stmt, *_: statements.append(stmt))
    try:
        yield SqlUnitOfWorkFactory(engine), statements
    finally:
        engine.dispose()
        drop_schema(schema)


def test_a_read_only_unit_refuses_writes_and_sends_no_set_transaction(factory):
    uows, statements = factory
    with pytest.raises(sa.exc.InternalError, match="read-only transaction"), \
            uows(read_only=True) as uow:
        uow.inbox.seen("t", "e1")
    assert not any("SET TRANSACTION" in s.upper() for s in statements)


def test_the_pooled_connection_writes_again_after_a_read_only_unit(factory):
    uows, _ = factory
    with uows(read_only=True) as uow:
        assert uow.inbox.conn.execute(_COUNT).scalar() == 0
    with uows() as uow:  # pool_size=1: the very connection the read-only unit used
        uow.inbox.conn.execute(inbox.insert().values(consumer="t", event_id="e2"))
        uow.commit()
    with uows(read_only=True) as uow:
        assert uow.inbox.conn.execute(_COUNT).scalar() == 1
