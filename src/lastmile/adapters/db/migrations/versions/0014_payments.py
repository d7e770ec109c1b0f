"""payments: each order's payment, and the built-in processor's answered calls

Revision ID: 0014
Revises: 0013

``payments`` is the platform's record of an order's payment (``app.payments``);
``processor_calls`` is the built-in processor's memory of every call it answered, under
its idempotency key (``adapters.payments.builtin``). Both are tenant rows.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

DEFAULT_TENANT = "lastmile:default"


def _tenant() -> sa.Column[str]:
    return sa.Column("tenant_id", sa.String(length=65), nullable=False,
                     server_default=DEFAULT_TENANT)


def upgrade() -> None:
    op.create_table(
        "payments",
        _tenant(),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("processor", sa.String(length=16), nullable=False),
        sa.Column("processor_ref", sa.String(length=255), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("captured_minor", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("refunded_minor", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint("tenant_id", "idempotency_key", name="uq_payments_tenant_key"),
        sa.UniqueConstraint("tenant_id", "order_id", name="uq_payments_tenant_order"),
    )
    op.create_table(
        "processor_calls",
        _tenant(),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("reference", sa.String(length=255), nullable=False),
        sa.Column("processor_ref", sa.String(length=64), nullable=False),
        sa.Column("operation", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "idempotency_key",
                                name=op.f("pk_processor_calls")),
    )
    op.create_index("ix_processor_calls_ref", "processor_calls",
                    ["processor_ref", "created_at"])
    settles = sa.text("operation in ('capture', 'void')")
    op.create_index("uq_processor_calls_settled", "processor_calls",
                    ["tenant_id", "processor_ref"], unique=True,
                    sqlite_where=settles, postgresql_where=settles)


def downgrade() -> None:
    op.drop_index("uq_processor_calls_settled", table_name="processor_calls")
    op.drop_index("ix_processor_calls_ref", table_name="processor_calls")
    op.drop_table("processor_calls")
    op.drop_table("payments")
