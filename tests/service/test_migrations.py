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
        assert MigrationContext.configure(conn).get_current_revision() == "0003"
