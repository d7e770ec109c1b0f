"""drive deliveries, webhooks and notifications

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("deliveries",
    sa.Column("id", sa.String(length=64), nullable=False),
    sa.Column("merchant_id", sa.String(length=64), nullable=False),
    sa.Column("external_delivery_id", sa.String(length=128), nullable=False),
    sa.Column("order_id", sa.String(length=64), nullable=False),
    sa.Column("request_hash", sa.String(length=64), nullable=False),
    sa.Column("tracking_token", sa.String(length=64), nullable=False),
    sa.Column("created_at", sa.Double(), nullable=False),
    sa.Column("finished", sa.Boolean(), nullable=False),
    sa.Column("doc", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
    sa.UniqueConstraint("merchant_id", "external_delivery_id", name="uq_deliveries_merchant_external"),
    sa.UniqueConstraint("order_id", name=op.f("uq_deliveries_order_id")),
    sa.UniqueConstraint("tracking_token", name=op.f("uq_deliveries_tracking_token"))
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_deliveries_finished", ["finished"], unique=False)
        batch_op.create_index("ix_deliveries_merchant_created", ["merchant_id", "created_at", "id"], unique=False)

    op.create_table("drive_quotes",
    sa.Column("merchant_id", sa.String(length=64), nullable=False),
    sa.Column("external_delivery_id", sa.String(length=128), nullable=False),
    sa.Column("request_hash", sa.String(length=64), nullable=False),
    sa.Column("created_at", sa.Double(), nullable=False),
    sa.Column("expires_at", sa.Double(), nullable=False),
    sa.Column("accepted", sa.Boolean(), nullable=False),
    sa.Column("doc", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False),
    sa.PrimaryKeyConstraint("merchant_id", "external_delivery_id", name=op.f("pk_drive_quotes"))
    )
    op.create_table("notifications",
    sa.Column("id", sa.String(length=64), nullable=False),
    sa.Column("event_id", sa.String(length=128), nullable=False),
    sa.Column("kind", sa.String(length=32), nullable=False),
    sa.Column("recipient_kind", sa.String(length=16), nullable=False),
    sa.Column("recipient_id", sa.String(length=64), nullable=False),
    sa.Column("channel", sa.String(length=16), nullable=False),
    sa.Column("address", sa.String(length=320), nullable=True),
    sa.Column("subject", sa.String(length=200), nullable=False),
    sa.Column("body", sa.String(length=2000), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("next_attempt_at", sa.Double(), nullable=True),
    sa.Column("last_error", sa.String(length=500), nullable=True),
    sa.Column("created_at", sa.Double(), nullable=False),
    sa.Column("sent_at", sa.Double(), nullable=True),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    sa.UniqueConstraint("event_id", "recipient_kind", "channel", name="uq_notifications_event_recipient_channel")
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index("ix_notifications_due", ["status", "next_attempt_at"], unique=False)

    op.create_table("webhook_attempts",
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
    sa.Column("message_id", sa.String(length=64), nullable=False),
    sa.Column("attempt", sa.Integer(), nullable=False),
    sa.Column("at", sa.Double(), nullable=False),
    sa.Column("status_code", sa.Integer(), nullable=True),
    sa.Column("error", sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint("seq", name=op.f("pk_webhook_attempts"))
    )
    with op.batch_alter_table("webhook_attempts", schema=None) as batch_op:
        batch_op.create_index("ix_webhook_attempts_message", ["message_id", "seq"], unique=False)

    op.create_table("webhook_endpoints",
    sa.Column("id", sa.String(length=64), nullable=False),
    sa.Column("merchant_id", sa.String(length=64), nullable=False),
    sa.Column("url", sa.String(length=2000), nullable=False),
    sa.Column("secret", sa.String(length=128), nullable=False),
    sa.Column("event_types", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False),
    sa.Column("active", sa.Boolean(), nullable=False),
    sa.Column("eta_under_s", sa.Integer(), nullable=True),
    sa.Column("nearby_m", sa.Integer(), nullable=True),
    sa.Column("created_at", sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints"))
    )
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.create_index("ix_webhook_endpoints_merchant", ["merchant_id"], unique=False)

    op.create_table("webhook_messages",
    sa.Column("id", sa.String(length=64), nullable=False),
    sa.Column("endpoint_id", sa.String(length=64), nullable=False),
    sa.Column("merchant_id", sa.String(length=64), nullable=False),
    sa.Column("event_id", sa.String(length=128), nullable=False),
    sa.Column("event_type", sa.String(length=64), nullable=False),
    sa.Column("payload", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("next_attempt_at", sa.Double(), nullable=True),
    sa.Column("last_error", sa.String(length=500), nullable=True),
    sa.Column("last_status_code", sa.Integer(), nullable=True),
    sa.Column("created_at", sa.Double(), nullable=False),
    sa.Column("delivered_at", sa.Double(), nullable=True),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_messages")),
    sa.UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_messages_endpoint_event")
    )
    with op.batch_alter_table("webhook_messages", schema=None) as batch_op:
        batch_op.create_index("ix_webhook_messages_due", ["status", "next_attempt_at"], unique=False)

    # ### end Alembic commands ###


def downgrade() -> None:
    with op.batch_alter_table("webhook_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_messages_due")

    op.drop_table("webhook_messages")
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_endpoints_merchant")

    op.drop_table("webhook_endpoints")
    with op.batch_alter_table("webhook_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_attempts_message")

    op.drop_table("webhook_attempts")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_due")

    op.drop_table("notifications")
    op.drop_table("drive_quotes")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_merchant_created")
        batch_op.drop_index("ix_deliveries_finished")

    op.drop_table("deliveries")
    # ### end Alembic commands ###
