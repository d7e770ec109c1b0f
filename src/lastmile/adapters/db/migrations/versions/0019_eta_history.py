"""eta history: the features each order was placed with, and its realised stages

Revision ID: 0019
Revises: 0018

``core.eta.history``: ``eta_history`` holds one row per order, written with the order and
completed when it is delivered or cancelled; ``eta_supply_minutes`` counts orders and idle
couriers per region and minute (the supply and demand series). Orders placed before this
revision have no row: the history starts empty.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

DEFAULT_TENANT = "lastmile:default"
JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def _tenant() -> sa.Column[str]:
    return sa.Column("tenant_id", sa.String(length=65), nullable=False,
                     server_default=DEFAULT_TENANT)


def upgrade() -> None:
    op.create_table(
        "eta_history",
        _tenant(),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("region_id", sa.String(length=64), nullable=False),
        sa.Column("merchant_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("placed_at", sa.Double(), nullable=False),
        sa.Column("hour", sa.SmallInteger(), nullable=False),
        sa.Column("weekday", sa.SmallInteger(), nullable=False),
        sa.Column("distance_m", sa.Double(), nullable=False),
        sa.Column("travel_s", sa.Double(), nullable=False),
        sa.Column("prep_mean_s", sa.Double(), nullable=False),
        sa.Column("prep_p90_s", sa.Double(), nullable=False),
        sa.Column("orders_per_min", JSON, nullable=False),
        sa.Column("idle_couriers", JSON, nullable=False),
        sa.Column("items", sa.Integer(), nullable=True),
        sa.Column("subtotal_minor", sa.BigInteger(), nullable=True),
        sa.Column("quoted_low_s", sa.Double(), nullable=False),
        sa.Column("quoted_s", sa.Double(), nullable=False),
        sa.Column("quoted_high_s", sa.Double(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("finished_at", sa.Double(), nullable=True),
        sa.Column("cancelled_from", sa.String(length=16), nullable=True),
        sa.Column("prep_s", sa.Double(), nullable=True),
        sa.Column("assign_s", sa.Double(), nullable=True),
        sa.Column("to_merchant_s", sa.Double(), nullable=True),
        sa.Column("wait_s", sa.Double(), nullable=True),
        sa.Column("to_consumer_s", sa.Double(), nullable=True),
        sa.Column("total_s", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_eta_history")),
    )
    op.create_index("ix_eta_history_merchant", "eta_history",
                    ["tenant_id", "merchant_id", "finished_at"])
    op.create_index("ix_eta_history_placed", "eta_history", ["tenant_id", "placed_at"])
    op.create_table(
        "eta_supply_minutes",
        _tenant(),
        sa.Column("region_id", sa.String(length=64), nullable=False),
        sa.Column("minute", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("idle_sum", sa.Double(), nullable=False),
        sa.Column("idle_samples", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("region_id", "minute", name=op.f("pk_eta_supply_minutes")),
    )


def downgrade() -> None:
    op.drop_table("eta_supply_minutes")
    op.drop_table("eta_history")
