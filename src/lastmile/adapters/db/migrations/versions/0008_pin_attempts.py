"""wrong drop-off PIN attempts per order

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pin_attempts",
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failed_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_pin_attempts")),
    )


def downgrade() -> None:
    op.drop_table("pin_attempts")
