"""tenants: a tenant column on every table, per-tenant keys, the tenants table

Revision ID: 0011
Revises: 0010

Every existing row belongs to the default tenant (the server default backfills it).
Uniqueness a client chooses becomes per tenant: Idempotency-Keys, Drive quotes and a
merchant's external delivery ids; a consumer's phone, where given, is unique per tenant.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

DEFAULT_TENANT = "lastmile:default"
_Json = sa.JSON().with_variant(JSONB(), "postgresql")
_PLAIN = ("regions", "merchants", "consumers", "couriers", "orders", "events", "outbox",
          "inbox", "event_subscribers", "event_deliveries", "dead_letters", "api_keys",
          "offers", "offer_orders", "banned_devices", "pin_attempts", "leases",
          "dispatcher_workers", "deliveries", "webhook_endpoints", "webhook_messages",
          "webhook_attempts", "notifications")
_REKEYED = {"idempotency_keys": ("scope", "key"),
            "drive_quotes": ("merchant_id", "external_delivery_id")}


def _tenant_column(*, primary_key: bool = False) -> sa.Column[str]:
    return sa.Column("tenant_id", sa.String(length=65), nullable=False,
                     server_default=DEFAULT_TENANT, primary_key=primary_key)


def upgrade() -> None:
    for name in _PLAIN:
        op.add_column(name, _tenant_column())
    for name, key in _REKEYED.items():
        with op.batch_alter_table(name, recreate="auto") as batch:
            batch.add_column(_tenant_column())
            batch.drop_constraint(f"pk_{name}", type_="primary")
            batch.create_primary_key(f"pk_{name}", ["tenant_id", *key])
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_constraint("uq_deliveries_merchant_external", type_="unique")
        batch.create_unique_constraint("uq_deliveries_tenant_merchant_external",
                                       ["tenant_id", "merchant_id", "external_delivery_id"])
    op.add_column("api_keys", sa.Column("acts_for", _Json, nullable=False,
                                        server_default="[]"))
    op.add_column("consumers", sa.Column("phone", sa.String(length=32), nullable=True))
    where = sa.text("phone IS NOT NULL")
    op.create_index("uq_consumers_tenant_phone", "consumers", ["tenant_id", "phone"],
                    unique=True, sqlite_where=where, postgresql_where=where)
    tenants = op.create_table(
        "tenants",
        _tenant_column(),
        sa.Column("id", sa.String(length=65), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("config", _Json, nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("version", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
    )
    op.bulk_insert(tenants, [{"tenant_id": DEFAULT_TENANT, "id": DEFAULT_TENANT,
                              "name": "Default", "kind": "live", "config": {},
                              "created_at": 0.0, "version": 0}])  # older than tenants


def downgrade() -> None:
    op.drop_table("tenants")
    op.drop_index("uq_consumers_tenant_phone", table_name="consumers")
    op.drop_column("consumers", "phone")
    op.drop_column("api_keys", "acts_for")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_constraint("uq_deliveries_tenant_merchant_external", type_="unique")
        batch.create_unique_constraint("uq_deliveries_merchant_external",
                                       ["merchant_id", "external_delivery_id"])
    for name, key in _REKEYED.items():
        with op.batch_alter_table(name, recreate="auto") as batch:
            batch.drop_constraint(f"pk_{name}", type_="primary")
            batch.create_primary_key(f"pk_{name}", list(key))
            batch.drop_column("tenant_id")
    for name in reversed(_PLAIN):
        op.drop_column(name, "tenant_id")
