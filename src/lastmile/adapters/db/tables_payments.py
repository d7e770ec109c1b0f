"""Payment tables (migration 0014): the platform's record of each order's payment, and the
built-in processor's answered calls, kept under their idempotency keys."""

from __future__ import annotations

import sqlalchemy as sa

from lastmile.adapters.db.tables import Epoch, metadata, tenant_column

SETTLES = sa.text("operation in ('capture', 'void')")

payments = sa.Table(
    "payments", metadata,
    tenant_column(),
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("order_id", sa.String(64), nullable=False),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("processor", sa.String(16), nullable=False),
    sa.Column("processor_ref", sa.String(255), nullable=False),
    sa.Column("idempotency_key", sa.String(255), nullable=False),
    sa.Column("captured_minor", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("refunded_minor", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("created_at", Epoch, nullable=False),
    sa.Column("updated_at", Epoch, nullable=False),
    # A doubly submitted payment meets this key: one row wins, the other reads it.
    sa.UniqueConstraint("tenant_id", "idempotency_key", name="uq_payments_tenant_key"),
    sa.UniqueConstraint("tenant_id", "order_id", name="uq_payments_tenant_order"),
)

processor_calls = sa.Table(
    "processor_calls", metadata,
    tenant_column(primary_key=True),
    sa.Column("idempotency_key", sa.String(255), primary_key=True),
    sa.Column("reference", sa.String(255), nullable=False),
    sa.Column("processor_ref", sa.String(64), nullable=False),
    sa.Column("operation", sa.String(16), nullable=False),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("created_at", Epoch, nullable=False),
    sa.Index("ix_processor_calls_ref", "processor_ref", "created_at"),
    # One settlement per hold: a capture and a void (or two captures) under different keys
    # at once cannot both pass the state check; the second insert loses (409, retried).
    sa.Index("uq_processor_calls_settled", "tenant_id", "processor_ref", unique=True,
             sqlite_where=SETTLES, postgresql_where=SETTLES),
)
