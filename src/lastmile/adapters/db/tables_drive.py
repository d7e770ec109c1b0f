"""Drive, webhook, notification and sandbox capture tables, on the shared ``metadata``.

Migration ``0002_drive_webhooks_notifications`` creates them (``sandbox_captures``: 0012).
"""

from __future__ import annotations

import sqlalchemy as sa

from lastmile.adapters.db.tables import Epoch, Json, metadata, tenant_column, version_column

_Seq = sa.BigInteger().with_variant(sa.Integer, "sqlite")

# The Drive fields of a delivery; status, prices and ETA live on its order.
deliveries = sa.Table(
    "deliveries", metadata,
    tenant_column(),
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("merchant_id", sa.String(64), nullable=False),
    sa.Column("external_delivery_id", sa.String(128), nullable=False),
    sa.Column("order_id", sa.String(64), nullable=False, unique=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("tracking_token", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", Epoch, nullable=False),
    sa.Column("finished", sa.Boolean, nullable=False),
    sa.Column("doc", Json, nullable=False),
    version_column(),
    # Per tenant: two businesses may each have an external_delivery_id "123".
    sa.UniqueConstraint("tenant_id", "merchant_id", "external_delivery_id",
                        name="uq_deliveries_tenant_merchant_external"),
    sa.Index("ix_deliveries_merchant_created", "merchant_id", "created_at", "id"),
    sa.Index("ix_deliveries_finished", "finished"),
)

drive_quotes = sa.Table(
    "drive_quotes", metadata,
    tenant_column(primary_key=True),
    sa.Column("merchant_id", sa.String(64), primary_key=True),
    sa.Column("external_delivery_id", sa.String(128), primary_key=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("created_at", Epoch, nullable=False),
    sa.Column("expires_at", Epoch, nullable=False),
    sa.Column("accepted", sa.Boolean, nullable=False),
    sa.Column("doc", Json, nullable=False),
)

webhook_endpoints = sa.Table(
    "webhook_endpoints", metadata,
    tenant_column(),
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("merchant_id", sa.String(64), nullable=False),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("secret", sa.String(128), nullable=False),  # needed to sign: cannot be a hash
    sa.Column("event_types", Json, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("eta_under_s", sa.Integer, nullable=True),
    sa.Column("nearby_m", sa.Integer, nullable=True),
    sa.Column("created_at", Epoch, nullable=False),
    sa.Index("ix_webhook_endpoints_merchant", "merchant_id"),
)

webhook_messages = sa.Table(
    "webhook_messages", metadata,
    tenant_column(),
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("endpoint_id", sa.String(64), nullable=False),
    sa.Column("merchant_id", sa.String(64), nullable=False),
    sa.Column("event_id", sa.String(128), nullable=False),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("payload", Json, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", Epoch, nullable=True),
    sa.Column("last_error", sa.String(500), nullable=True),
    sa.Column("last_status_code", sa.Integer, nullable=True),
    sa.Column("created_at", Epoch, nullable=False),
    sa.Column("delivered_at", Epoch, nullable=True),
    sa.UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_messages_endpoint_event"),
    sa.Index("ix_webhook_messages_due", "status", "next_attempt_at"),
)

webhook_attempts = sa.Table(
    "webhook_attempts", metadata,
    tenant_column(),
    sa.Column("seq", _Seq, primary_key=True, autoincrement=True),
    sa.Column("message_id", sa.String(64), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("at", Epoch, nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("error", sa.String(500), nullable=True),
    sa.Index("ix_webhook_attempts_message", "message_id", "seq"),
)

notifications = sa.Table(
    "notifications", metadata,
    tenant_column(),
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("event_id", sa.String(128), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("recipient_kind", sa.String(16), nullable=False),
    sa.Column("recipient_id", sa.String(64), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("address", sa.String(320), nullable=True),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("body", sa.String(2000), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", Epoch, nullable=True),
    sa.Column("last_error", sa.String(500), nullable=True),
    sa.Column("created_at", Epoch, nullable=False),
    sa.Column("sent_at", Epoch, nullable=True),
    sa.UniqueConstraint("event_id", "recipient_kind", "channel",
                        name="uq_notifications_event_recipient_channel"),
    sa.Index("ix_notifications_due", "status", "next_attempt_at"),
)

# What a test tenant's outbound side effects would have sent (app.sandbox); migration 0012.
sandbox_captures = sa.Table(
    "sandbox_captures", metadata,
    tenant_column(),
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("target", sa.String(2000), nullable=False),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("subject_id", sa.String(128), nullable=False),
    sa.Column("headers", Json, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", Epoch, nullable=False),
    sa.Index("ix_sandbox_captures_tenant_created", "tenant_id", "created_at", "id"),
    sa.Index("ix_sandbox_captures_subject", "subject_id"),
)
