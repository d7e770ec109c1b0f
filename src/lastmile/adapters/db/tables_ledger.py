"""The ledger's tables (``core.ledger``), on the shared ``metadata``; migration 0013.

Append-only: the database refuses UPDATE and DELETE on both (triggers, as for events).
A transaction's idempotency key is unique per tenant, so a redelivered event posts once.
Postings repeat their transaction's kind, order and time, so a statement reads one table.
"""

from __future__ import annotations

import sqlalchemy as sa

from lastmile.adapters.db.tables import Epoch, metadata, tenant_column

ledger_transactions = sa.Table(
    "ledger_transactions", metadata,
    tenant_column(),
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("idempotency_key", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("order_id", sa.String(64), nullable=True),
    sa.Column("memo", sa.String(200), nullable=False),
    sa.Column("created_at", Epoch, nullable=False),
    sa.UniqueConstraint("tenant_id", "idempotency_key", name="uq_ledger_transactions_key"),
    sa.Index("ix_ledger_transactions_order", "tenant_id", "order_id"),
)

ledger_postings = sa.Table(
    "ledger_postings", metadata,
    tenant_column(),
    sa.Column("id", sa.String(80), primary_key=True),
    sa.Column("transaction_id", sa.String(64), sa.ForeignKey("ledger_transactions.id"),
              nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),  # its place in the transaction
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("order_id", sa.String(64), nullable=True),
    sa.Column("account", sa.String(140), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),  # debit > 0, credit < 0
    sa.Column("created_at", Epoch, nullable=False),
    sa.Index("ix_ledger_postings_account", "tenant_id", "account", "currency", "created_at"),
    sa.Index("ix_ledger_postings_transaction", "transaction_id"),
)
