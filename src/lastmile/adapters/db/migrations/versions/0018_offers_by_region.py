"""offers by region and status

Revision ID: 0018
Revises: 0017

Every dispatch round reads its region's pending offers (``SqlOffers.pending_in_region``);
without an index that is a scan of every offer ever made, which grows all day (a big
city's day makes ~60,000).
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_offers_region_status", "offers", ["region_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_offers_region_status", table_name="offers")
