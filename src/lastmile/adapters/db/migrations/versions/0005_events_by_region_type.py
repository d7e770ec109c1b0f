"""index events by region, type and time (dashboards read them that way)

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_events_region_type_time", "events",
                    ["region_id", "type", "occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_events_region_type_time", table_name="events")
