"""Experiments (``core.experiments.definition``), their layers and exposures on the shared
``metadata``; migration 0021."""

from __future__ import annotations

import sqlalchemy as sa

from lastmile.adapters.db.tables import Epoch, Json, metadata, tenant_column

experiments = sa.Table(
    "experiments", metadata,
    tenant_column(),
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("lever", sa.String(16), nullable=False),
    sa.Column("design", sa.String(16), nullable=False),
    sa.Column("unit_kind", sa.String(16), nullable=False),
    sa.Column("variants", Json, nullable=False),  # [{"name", "weight", "params": {...}}]
    sa.Column("salt", sa.String(100), nullable=False),
    sa.Column("layer", sa.String(64), nullable=False),
    sa.Column("span_low", sa.Double, nullable=False),
    sa.Column("span_high", sa.Double, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("window_s", sa.Double, nullable=False),
    sa.Column("burn_in_s", sa.Double, nullable=False),
    sa.Column("wash_out_s", sa.Double, nullable=False),
    sa.Column("allocation", Json, nullable=False),  # [{"market", "variant", "stratum"}]
    sa.Column("description", sa.String(500), nullable=False),
    sa.Column("created_at", Epoch, nullable=False),
    sa.Column("started_at", Epoch, nullable=True),
    sa.Column("stopped_at", Epoch, nullable=True),
    sa.UniqueConstraint("tenant_id", "name", name="uq_experiments_name"),
    sa.Index("ix_experiments_state", "tenant_id", "state"),
    sa.Index("ix_experiments_layer", "tenant_id", "layer"),
)

experiment_layers = sa.Table(
    "experiment_layers", metadata,
    tenant_column(primary_key=True),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("holdout", sa.Double, nullable=False),
    sa.Column("created_at", Epoch, nullable=False),
)

# The first exposure of each randomised unit (a consumer, a courier, a region@window):
# one row per (experiment, unit), whatever the number of calls that served it.
experiment_exposures = sa.Table(
    "experiment_exposures", metadata,
    tenant_column(primary_key=True),
    sa.Column("experiment_id", sa.String(64), primary_key=True),
    sa.Column("unit", sa.String(100), primary_key=True),
    sa.Column("variant", sa.String(64), nullable=False),
    sa.Column("counts", sa.Boolean, nullable=False),
    sa.Column("first_at", Epoch, nullable=False),
    sa.Column("region_id", sa.String(64), nullable=True),
    sa.Index("ix_experiment_exposures_first", "tenant_id", "experiment_id", "first_at"),
)
