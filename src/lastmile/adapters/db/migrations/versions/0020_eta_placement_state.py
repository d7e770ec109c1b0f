"""eta history: couriers and open work near the merchant at placement

Revision ID: 0020
Revises: 0019

``eta_history.placement_state``: the features added after 0019 (``core.eta.features``
``EXTRA_COLUMNS``: nearest idle courier, courier reach, open orders, the merchant's open
orders) as one JSON object, a null value for a feature not known; rows written before this
revision have none (all unknown).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.add_column("eta_history", sa.Column("placement_state", JSON, nullable=True))


def downgrade() -> None:
    op.drop_column("eta_history", "placement_state")
