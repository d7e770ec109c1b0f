"""stacked offers: a stack id and the planned route of an offer

Revision ID: 0017
Revises: 0016

``core.dispatch.stacking``: an offer of orders of two merchants carries its stack id and its
stops (pickups, then drop-offs) so the courier's app shows them in order. Both nullable: an
ordinary offer has neither.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.add_column("offers", sa.Column("stack_id", sa.String(length=64), nullable=True))
    op.add_column("offers", sa.Column("stops", JSON, nullable=True))


def downgrade() -> None:
    op.drop_column("offers", "stops")
    op.drop_column("offers", "stack_id")
