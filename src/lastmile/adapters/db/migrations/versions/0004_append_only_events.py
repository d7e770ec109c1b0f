"""events are append-only: the database refuses UPDATE and DELETE on them

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_SQLITE = [
    "CREATE TRIGGER events_no_update BEFORE UPDATE ON events "
    "BEGIN SELECT RAISE(ABORT, 'events are append-only'); END",
    "CREATE TRIGGER events_no_delete BEFORE DELETE ON events "
    "BEGIN SELECT RAISE(ABORT, 'events are append-only'); END",
]
_POSTGRES = [
    "CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'events are append-only'; END $$",
    "CREATE TRIGGER events_no_change BEFORE UPDATE OR DELETE ON events "
    "FOR EACH ROW EXECUTE FUNCTION events_append_only()",
]


def upgrade() -> None:
    name = op.get_bind().dialect.name
    for statement in _SQLITE if name == "sqlite" else _POSTGRES if name == "postgresql" else []:
        op.execute(statement)


def downgrade() -> None:
    name = op.get_bind().dialect.name
    if name == "sqlite":
        op.execute("DROP TRIGGER events_no_update")
        op.execute("DROP TRIGGER events_no_delete")
    elif name == "postgresql":
        op.execute("DROP TRIGGER events_no_change ON events")
        op.execute("DROP FUNCTION events_append_only()")
