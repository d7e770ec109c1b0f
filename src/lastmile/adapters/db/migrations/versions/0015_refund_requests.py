"""refund requests and their decisions

Revision ID: 0015
Revises: 0014

``core.refunds``: a consumer's request, the rules' (or a person's) decision and the amount
given back; the idempotency key is unique per tenant, so a retried request is stored once.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

DEFAULT_TENANT = "lastmile:default"
JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "refund_requests",
        sa.Column("tenant_id", sa.String(length=65), nullable=False,
                  server_default=DEFAULT_TENANT),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("consumer_id", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("items", JSON, nullable=False),
        sa.Column("photo_ref", sa.String(length=200), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("decision", JSON, nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("decided_at", sa.Double(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=300), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refund_requests")),
        sa.UniqueConstraint("tenant_id", "idempotency_key", name="uq_refund_requests_key"),
    )
    op.create_index("ix_refund_requests_status", "refund_requests",
                    ["tenant_id", "status", "created_at"])
    op.create_index("ix_refund_requests_consumer", "refund_requests",
                    ["tenant_id", "consumer_id", "created_at"])
    op.create_index("ix_refund_requests_order", "refund_requests", ["tenant_id", "order_id"])


def downgrade() -> None:
    op.drop_table("refund_requests")
