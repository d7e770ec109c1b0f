"""ledger: append-only double-entry transactions and postings

Revision ID: 0013
Revises: 0012

``core.ledger``: a transaction's postings balance per currency; its idempotency key is
unique per tenant (a redelivered event posts once). The database refuses UPDATE and
DELETE on both tables, as 0004 does for events: a correction is a new transaction.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

DEFAULT_TENANT = "lastmile:default"
_TABLES = ("ledger_transactions", "ledger_postings")


def _tenant() -> sa.Column[str]:
    return sa.Column("tenant_id", sa.String(length=65), nullable=False,
                     server_default=DEFAULT_TENANT)


def upgrade() -> None:
    op.create_table(
        "ledger_transactions",
        _tenant(),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=True),
        sa.Column("memo", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_transactions")),
        sa.UniqueConstraint("tenant_id", "idempotency_key", name="uq_ledger_transactions_key"),
    )
    op.create_index("ix_ledger_transactions_order", "ledger_transactions",
                    ["tenant_id", "order_id"])
    op.create_table(
        "ledger_postings",
        _tenant(),
        sa.Column("id", sa.String(length=80), nullable=False),
        sa.Column("transaction_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=True),
        sa.Column("account", sa.String(length=140), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(["transaction_id"], ["ledger_transactions.id"],
                                name=op.f("fk_ledger_postings_transaction_id_ledger_transactions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_postings")),
    )
    op.create_index("ix_ledger_postings_account", "ledger_postings",
                    ["tenant_id", "account", "currency", "created_at"])
    op.create_index("ix_ledger_postings_transaction", "ledger_postings", ["transaction_id"])
    name = op.get_bind().dialect.name
    for table in _TABLES:
        if name == "sqlite":
            for verb in ("UPDATE", "DELETE"):
                op.execute(f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                           f"BEGIN SELECT RAISE(ABORT, '{table} are append-only'); END")
        elif name == "postgresql":
            op.execute(f"CREATE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql "
                       f"AS $$ BEGIN RAISE EXCEPTION '{table} are append-only'; END $$")
            op.execute(f"CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table} "
                       f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()")


def downgrade() -> None:
    name = op.get_bind().dialect.name
    for table in _TABLES:
        if name == "sqlite":
            op.execute(f"DROP TRIGGER {table}_no_update")
            op.execute(f"DROP TRIGGER {table}_no_delete")
        elif name == "postgresql":
            op.execute(f"DROP TRIGGER {table}_no_change ON {table}")
            op.execute(f"DROP FUNCTION {table}_append_only()")
    op.drop_index("ix_ledger_postings_transaction", table_name="ledger_postings")
    op.drop_index("ix_ledger_postings_account", table_name="ledger_postings")
    op.drop_table("ledger_postings")
    op.drop_index("ix_ledger_transactions_order", table_name="ledger_transactions")
    op.drop_table("ledger_transactions")
