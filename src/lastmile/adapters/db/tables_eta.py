"""The ETA history (``core.eta.history``) on the shared ``metadata``; migration 0019."""

from __future__ import annotations

import sqlalchemy as sa

from lastmile.adapters.db.tables import Epoch, Json, metadata, tenant_column

# One row per order: written with the order (the features known then), completed in the
# transaction that delivers or cancels it (the realised stages; NULL for a cancellation).
eta_history = sa.Table(
    "eta_history", metadata,
    tenant_column(),
    sa.Column("order_id", sa.String(64), primary_key=True),
    sa.Column("region_id", sa.String(64), nullable=False),
    sa.Column("merchant_id", sa.String(64), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("placed_at", Epoch, nullable=False),
    sa.Column("hour", sa.SmallInteger, nullable=False),
    sa.Column("weekday", sa.SmallInteger, nullable=False),
    sa.Column("distance_m", sa.Double, nullable=False),
    sa.Column("travel_s", sa.Double, nullable=False),
    sa.Column("prep_mean_s", sa.Double, nullable=False),
    sa.Column("prep_p90_s", sa.Double, nullable=False),
    sa.Column("orders_per_min", Json, nullable=False),  # six floats, oldest bucket first
    sa.Column("idle_couriers", Json, nullable=False),
    sa.Column("items", sa.Integer, nullable=True),  # NULL: no cart (Drive)
    sa.Column("subtotal_minor", sa.BigInteger, nullable=True),
    # EXTRA_COLUMNS as {name: value or null}; NULL before 0020 (migration 0020)
    sa.Column("placement_state", Json, nullable=True),
    sa.Column("quoted_low_s", sa.Double, nullable=False),
    sa.Column("quoted_s", sa.Double, nullable=False),
    sa.Column("quoted_high_s", sa.Double, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # open, delivered, cancelled
    sa.Column("finished_at", Epoch, nullable=True),
    sa.Column("cancelled_from", sa.String(16), nullable=True),
    sa.Column("prep_s", sa.Double, nullable=True),
    sa.Column("assign_s", sa.Double, nullable=True),
    sa.Column("to_merchant_s", sa.Double, nullable=True),
    sa.Column("wait_s", sa.Double, nullable=True),
    sa.Column("to_consumer_s", sa.Double, nullable=True),
    sa.Column("total_s", sa.Double, nullable=True),
    # A merchant's last preparation times (each placement reads them) and export ranges.
    sa.Index("ix_eta_history_merchant", "tenant_id", "merchant_id", "finished_at"),
    sa.Index("ix_eta_history_placed", "tenant_id", "placed_at"),
)

# Per region and minute: orders placed and the idle couriers seen at each placement, the
# supply and demand series of the features (one upsert per order, at most 30 rows read).
eta_supply_minutes = sa.Table(
    "eta_supply_minutes", metadata,
    tenant_column(),
    sa.Column("region_id", sa.String(64), primary_key=True),
    sa.Column("minute", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("orders", sa.Integer, nullable=False),
    sa.Column("idle_sum", sa.Double, nullable=False),
    sa.Column("idle_samples", sa.Integer, nullable=False),
)
