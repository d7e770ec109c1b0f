"""The migrations build exactly the schema the tables declare, and go down again."""

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from lastmile.adapters.db.engine import alembic_config
from lastmile.adapters.db.tables import metadata


def test_migrated_schema_matches_the_declared_tables(platform):
    engine = platform.container.engine
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_every_migration_downgrades_and_upgrades_again(platform):
    engine = platform.container.engine
    cfg = alembic_config(engine)
    command.downgrade(cfg, "base")
    command.upgrade(cfg, "head")
    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == "0008"


def test_the_database_refuses_to_rewrite_or_delete_history(platform):
    import pytest
    import sqlalchemy as sa

    engine = platform.container.engine
    for statement in ("update events set type = 'forged'", "delete from events"):
        with engine.connect() as conn, pytest.raises(sa.exc.DBAPIError, match="append-only"):
            conn.execute(sa.text(statement))
