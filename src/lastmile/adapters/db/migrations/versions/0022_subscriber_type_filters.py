"""event subscribers: a subscriber may name several event types

Revision ID: 0022
Revises: 0021

``event_subscribers.event_type`` holds a subscriber's ``app.events.type_filter``: ``*``, one
type, or several types sorted and comma-joined (the ledger's four types take 64 characters
and more), so it widens from 64 to 1,000 characters. The relay queues a subscriber only the
types it names.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("event_subscribers") as batch:
        batch.alter_column("event_type", type_=sa.String(1000), existing_type=sa.String(64),
                           existing_nullable=False)


def downgrade() -> None:
    # A row naming several types would not fit back: it becomes '*' (it receives every type
    # again, and its handler keeps ignoring the rest, as before 0021).
    op.execute(sa.text("UPDATE event_subscribers SET event_type = '*' "
                       "WHERE length(event_type) > 64"))
    with op.batch_alter_table("event_subscribers") as batch:
        batch.alter_column("event_type", type_=sa.String(64), existing_type=sa.String(1000),
                           existing_nullable=False)
