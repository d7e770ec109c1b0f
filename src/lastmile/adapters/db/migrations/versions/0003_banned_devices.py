"""banned devices

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "banned_devices",
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("banned_at", sa.Double(), nullable=False),
        sa.Column("banned_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("device_id", name=op.f("pk_banned_devices")),
    )


def downgrade() -> None:
    op.drop_table("banned_devices")
