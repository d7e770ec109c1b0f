"""experiments, their layers and exposures

Revision ID: 0021
Revises: 0020

``core.experiments``: an experiment's definition and state (names unique per tenant), the
layers whose experiments never share a unit (with their holdout share), and the first
exposure of each randomised unit (one row per experiment and unit).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

DEFAULT_TENANT = "lastmile:default"
JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def _tenant() -> sa.Column[str]:
    return sa.Column("tenant_id", sa.String(length=65), nullable=False,
                     server_default=DEFAULT_TENANT)


def upgrade() -> None:
    op.create_table(
        "experiments",
        _tenant(),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("lever", sa.String(length=16), nullable=False),
        sa.Column("design", sa.String(length=16), nullable=False),
        sa.Column("unit_kind", sa.String(length=16), nullable=False),
        sa.Column("variants", JSON, nullable=False),
        sa.Column("salt", sa.String(length=100), nullable=False),
        sa.Column("layer", sa.String(length=64), nullable=False),
        sa.Column("span_low", sa.Double(), nullable=False),
        sa.Column("span_high", sa.Double(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("window_s", sa.Double(), nullable=False),
        sa.Column("burn_in_s", sa.Double(), nullable=False),
        sa.Column("wash_out_s", sa.Double(), nullable=False),
        sa.Column("allocation", JSON, nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("started_at", sa.Double(), nullable=True),
        sa.Column("stopped_at", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiments")),
        sa.UniqueConstraint("tenant_id", "name", name="uq_experiments_name"),
    )
    op.create_index("ix_experiments_state", "experiments", ["tenant_id", "state"])
    op.create_index("ix_experiments_layer", "experiments", ["tenant_id", "layer"])
    op.create_table(
        "experiment_layers",
        _tenant(),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holdout", sa.Double(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "name", name=op.f("pk_experiment_layers")),
    )
    op.create_table(
        "experiment_exposures",
        _tenant(),
        sa.Column("experiment_id", sa.String(length=64), nullable=False),
        sa.Column("unit", sa.String(length=100), nullable=False),
        sa.Column("variant", sa.String(length=64), nullable=False),
        sa.Column("counts", sa.Boolean(), nullable=False),
        sa.Column("first_at", sa.Double(), nullable=False),
        sa.Column("region_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "experiment_id", "unit",
                                name=op.f("pk_experiment_exposures")),
    )
    op.create_index("ix_experiment_exposures_first", "experiment_exposures",
                    ["tenant_id", "experiment_id", "first_at"])


def downgrade() -> None:
    op.drop_table("experiment_exposures")
    op.drop_table("experiment_layers")
    op.drop_table("experiments")
