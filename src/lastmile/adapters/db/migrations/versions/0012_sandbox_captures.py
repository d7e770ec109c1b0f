"""sandbox captures: what a test tenant's webhooks and notices would have sent

Revision ID: 0012
Revises: 0011

In a test tenant no webhook, notice or payment leaves for the real world
(``app.sandbox``): each is recorded here instead, read by ``GET /v1/ops/sandbox/captures``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

DEFAULT_TENANT = "lastmile:default"
_Json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "sandbox_captures",
        sa.Column("tenant_id", sa.String(length=65), nullable=False,
                  server_default=DEFAULT_TENANT),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=2000), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("subject_id", sa.String(length=128), nullable=False),
        sa.Column("headers", _Json, nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sandbox_captures")),
    )
    op.create_index("ix_sandbox_captures_tenant_created", "sandbox_captures",
                    ["tenant_id", "created_at", "id"])
    op.create_index("ix_sandbox_captures_subject", "sandbox_captures", ["subject_id"])


def downgrade() -> None:
    op.drop_index("ix_sandbox_captures_subject", table_name="sandbox_captures")
    op.drop_index("ix_sandbox_captures_tenant_created", table_name="sandbox_captures")
    op.drop_table("sandbox_captures")
