"""offers that move held orders from one courier to another

Revision ID: 0016
Revises: 0015

``app.reassignment``: a move is an offer to the new courier naming the courier who holds
the orders until it is accepted (``from_courier_id``) and the click-to-door each order
saves (``gain_s``); both null for an ordinary offer. How often an order moved lives in the
order's document (``moves``), which needs no column.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("offers", sa.Column("from_courier_id", sa.String(length=64), nullable=True))
    op.add_column("offers", sa.Column("gain_s", sa.Double(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("offers") as batch:
        batch.drop_column("gain_s")
        batch.drop_column("from_courier_id")
