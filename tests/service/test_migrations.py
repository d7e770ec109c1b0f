"""The migrations build exactly the schema the tables declare, and go down again."""

import re

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from lastmile.adapters.db.engine import alembic_config
from lastmile.adapters.db.tables import metadata


def _not_a_partition(name, type_, parent_names):  # type: ignore[no-untyped-def]
    """On PostgreSQL orders and events are partitioned (0009): their partitions
    (orders_p0...) are storage, not tables the metadata declares."""
    return not (type_ == "table" and re.fullmatch(r"(orders|events)_p\d+", name or ""))


def _same_key(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
    """A partitioned table's unique key includes the partition key: on PostgreSQL the event
    id is unique with its region (tests/service/test_partitions.py checks that key)."""
    return not (type_ == "unique_constraint" and name == "uq_events_event_id")


def test_migrated_schema_matches_the_declared_tables(platform):
    engine = platform.container.engine
    with engine.connect() as conn:
        opts = ({"include_name": _not_a_partition, "include_object": _same_key}
                if conn.dialect.name == "postgresql" else {})
        context = MigrationContext.configure(conn, opts=opts)
        diff = compare_metadata(context, metadata)
    assert diff == []


def test_every_migration_downgrades_and_upgrades_again(platform):
    engine = platform.container.engine
    cfg = alembic_config(engine)
    command.downgrade(cfg, "base")
    command.upgrade(cfg, "head")
    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == "0022"


def test_the_database_refuses_to_rewrite_or_delete_history(platform):
    import pytest
    import sqlalchemy as sa

    engine = platform.container.engine
    for statement in ("update events set type = 'forged'", "delete from events"):
        with engine.connect() as conn, pytest.raises(sa.exc.DBAPIError, match="append-only"):
            conn.execute(sa.text(statement))


def test_the_database_refuses_to_rewrite_or_delete_the_ledger(platform):
    import pytest
    import sqlalchemy as sa

    engine = platform.container.engine
    with engine.begin() as conn:
        conn.execute(sa.text(
            "insert into ledger_transactions (tenant_id, id, idempotency_key, kind, currency, "
            "memo, created_at) values ('lastmile:default', 'ltx_1', 'k', 'payout', 'USD', '', "
            "1.0)"))
        conn.execute(sa.text(
            "insert into ledger_postings (tenant_id, id, transaction_id, seq, kind, account, "
            "currency, amount_minor, created_at) values ('lastmile:default', 'ltx_1:0', "
            "'ltx_1', 0, 'payout', 'processor_clearing', 'USD', -5, 1.0)"))
    for statement in ("update ledger_postings set amount_minor = 0",
                      "delete from ledger_postings", "delete from ledger_transactions",
                      "update ledger_transactions set kind = 'forged'"):
        with engine.connect() as conn, pytest.raises(sa.exc.DBAPIError, match="append-only"):
            conn.execute(sa.text(statement))
