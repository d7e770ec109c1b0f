"""Alembic environment: the engine comes from the caller (``engine.migrate``)."""

from __future__ import annotations

from alembic import context

from lastmile.adapters.db.tables import metadata

config = context.config
engine = config.attributes["engine"]

with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # The API's statement and lock timeouts (engine.py) are too short for a schema
            # change on a big table; for this transaction only, wait as long as it takes.
            connection.exec_driver_sql("SET LOCAL statement_timeout = 0")
            connection.exec_driver_sql("SET LOCAL lock_timeout = 0")
        context.run_migrations()
    connection.commit()
