"""Refund requests (``core.refunds``) on the shared ``metadata``; migration 0015."""

from __future__ import annotations

import sqlalchemy as sa

from lastmile.adapters.db.tables import Epoch, Json, metadata, tenant_column

refund_requests = sa.Table(
    "refund_requests", metadata,
    tenant_column(),
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("order_id", sa.String(64), nullable=False),
    sa.Column("consumer_id", sa.String(64), nullable=False),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("items", Json, nullable=False),  # [{"item_id", "quantity"}]
    sa.Column("photo_ref", sa.String(200), nullable=True),
    sa.Column("note", sa.String(500), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("decision", Json, nullable=False),  # outcome, code, reason, as_credit
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("created_at", Epoch, nullable=False),
    sa.Column("decided_at", Epoch, nullable=True),
    sa.Column("idempotency_key", sa.String(300), nullable=False),
    sa.UniqueConstraint("tenant_id", "idempotency_key", name="uq_refund_requests_key"),
    sa.Index("ix_refund_requests_status", "tenant_id", "status", "created_at"),
    sa.Index("ix_refund_requests_consumer", "tenant_id", "consumer_id", "created_at"),
    sa.Index("ix_refund_requests_order", "tenant_id", "order_id"),
)
