"""Is the schema current? Processes that must not migrate (the API workers of the scale
profile) check it at start, so a forgotten ``lastmile db upgrade`` is one clear message,
not a 500 on the first query of a missing table."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from lastmile.adapters.db.engine import alembic_config


class SchemaNotCurrent(RuntimeError):
    pass


def require_current_schema(engine: Engine) -> None:
    """Raise ``SchemaNotCurrent`` unless the database is at the code's head revision."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    heads = set(ScriptDirectory.from_config(alembic_config(engine)).get_heads())
    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    if current != heads:
        raise SchemaNotCurrent(
            f"the database schema is at {sorted(current) or 'no revision'}, the code needs "
            f"{sorted(heads)}: run `lastmile db upgrade` (or `lastmile serve`, which migrates "
            "before starting its workers)")
