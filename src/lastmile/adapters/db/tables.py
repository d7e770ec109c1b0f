"""SQLAlchemy Core tables. Every row carries its tenant and, where it has one, its region
(the partition key)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from lastmile.core.tenancy import DEFAULT_TENANT

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)
Json = sa.JSON().with_variant(JSONB(), "postgresql")
Epoch = sa.Double  # epoch seconds, UTC


def tenant_column(*, primary_key: bool = False) -> sa.Column[str]:
    """The row's tenant (``core.tenancy``): added to every read and write by
    ``tenant_scope``; the server default only backfilled rows older than tenants (0011)."""
    return sa.Column("tenant_id", sa.String(65), nullable=False, primary_key=primary_key,
                     server_default=DEFAULT_TENANT)


def version_column() -> sa.Column[int]:
    """The compare-and-set counter of an aggregate saved by two requests at once."""
    return sa.Column("version", sa.Integer, nullable=False, server_default="0")


PENDING_OFFER = sa.text("status = 'pending'")
LIVE_OFFER_ORDER = sa.text("pending")

regions = sa.Table(
    "regions", metadata,
    tenant_column(),
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("market", sa.String(200), nullable=False),
    sa.Column("time_zone", sa.String(64), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("tax_rate_bp", sa.Integer, nullable=False),
    sa.Column("polygon", Json, nullable=False),
)

merchants = sa.Table(
    "merchants", metadata,
    tenant_column(),
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("region_id", sa.String(64), sa.ForeignKey("regions.id"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("lat", sa.Double, nullable=False),
    sa.Column("lng", sa.Double, nullable=False),
    sa.Column("prep_time_s", sa.Integer, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("menu", Json, nullable=False),
    sa.Column("hours", Json, nullable=False),
    version_column(),
    sa.Index("ix_merchants_region_lat_lng", "region_id", "lat", "lng"),
)

consumers = sa.Table(
    "consumers", metadata,
    tenant_column(),
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("region_id", sa.String(64), sa.ForeignKey("regions.id"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("addresses", Json, nullable=False),
    # Required and unique where the tenant's policy says so (core.tenancy.TenantConfig);
    # the index makes it unique per tenant wherever it is given.
    sa.Column("phone", sa.String(32), nullable=True),
    sa.Index("uq_consumers_tenant_phone", "tenant_id", "phone", unique=True,
             sqlite_where=sa.text("phone IS NOT NULL"),
             postgresql_where=sa.text("phone IS NOT NULL")),
)

couriers = sa.Table(
    "couriers", metadata,
    tenant_column(),
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("region_id", sa.String(64), sa.ForeignKey("regions.id"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("vehicle", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("lat", sa.Double, nullable=True),
    sa.Column("lng", sa.Double, nullable=True),
    sa.Column("shift_id", sa.String(64), nullable=True),
    sa.Column("shift_started_at", Epoch, nullable=True),
    sa.Column("shift_ends_at", Epoch, nullable=True),
    sa.Column("device_id", sa.String(128), nullable=True),
    sa.Column("active_order_ids", Json, nullable=False),
    sa.Column("banned", sa.Boolean, nullable=False),
    version_column(),
    sa.Index("ix_couriers_region_status", "region_id", "status"),
)

# Current-state projection of each order; the full value is in `doc`.
orders = sa.Table(
    "orders", metadata,
    tenant_column(),
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("region_id", sa.String(64), sa.ForeignKey("regions.id"), nullable=False),
    sa.Column("merchant_id", sa.String(64), nullable=False),
    sa.Column("consumer_id", sa.String(64), nullable=False),
    sa.Column("courier_id", sa.String(64), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("placed_at", Epoch, nullable=False),
    sa.Column("doc", Json, nullable=False),
    sa.Index("ix_orders_region_status", "region_id", "status"),
    sa.Index("ix_orders_consumer", "consumer_id", "placed_at"),
    sa.Index("ix_orders_merchant", "merchant_id", "placed_at"),
    sa.Index("ix_orders_courier", "courier_id"),
)

# Append-only history of every event (orders, couriers, offers, menus).
events = sa.Table(
    "events", metadata,
    tenant_column(),
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("event_id", sa.String(64), nullable=False, unique=True),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("region_id", sa.String(64), nullable=False),
    sa.Column("subject_id", sa.String(64), nullable=False),
    sa.Column("occurred_at", Epoch, nullable=False),
    sa.Column("actor_kind", sa.String(16), nullable=False),
    sa.Column("actor_id", sa.String(64), nullable=False),
    sa.Column("schema_version", sa.Integer, nullable=False),
    sa.Column("data", Json, nullable=False),
    sa.Index("ix_events_subject", "subject_id", "seq"),
    sa.Index("ix_events_region_type_time", "region_id", "type", "occurred_at"),
)

outbox = sa.Table(
    "outbox", metadata,
    tenant_column(),
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("event_id", sa.String(64), nullable=False, unique=True),
    sa.Column("payload", Json, nullable=False),
    sa.Column("created_at", Epoch, nullable=False),
    sa.Column("sent_at", Epoch, nullable=True),
    sa.Index("ix_outbox_unsent", "sent_at", "seq"),
)

inbox = sa.Table(
    "inbox", metadata,
    tenant_column(),
    sa.Column("consumer", sa.String(64), primary_key=True),
    sa.Column("event_id", sa.String(64), primary_key=True),
)

# Durable subscribers of the bus (adapters/bus/outbox.py): the relay fans each outbox row out
# to one queue row per subscriber; delivered rows are deleted, exhausted ones parked.
event_subscribers = sa.Table(
    "event_subscribers", metadata,
    tenant_column(),
    sa.Column("name", sa.String(64), primary_key=True),
    # app.events.type_filter: '*', one type, or several comma-joined (0022)
    sa.Column("event_type", sa.String(1000), nullable=False),
    sa.Column("registered_at", Epoch, nullable=False),
    sa.Column("last_seen_at", Epoch, nullable=False),
)

event_deliveries = sa.Table(
    "event_deliveries", metadata,
    tenant_column(),
    sa.Column("subscriber", sa.String(64), primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("subject_id", sa.String(64), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", Epoch, nullable=False),
    sa.Column("claimed_by", sa.String(64), nullable=True),
    sa.Column("lease_until", Epoch, nullable=True),
    sa.Column("first_failed_at", Epoch, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Index("ix_event_deliveries_subject", "subscriber", "subject_id", "seq"),
)

dead_letters = sa.Table(
    "dead_letters", metadata,
    tenant_column(),
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("subscriber", sa.String(64), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("event_id", sa.String(64), nullable=False),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("payload", Json, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_error", sa.Text, nullable=False),
    sa.Column("first_failed_at", Epoch, nullable=False),
    sa.Column("parked_at", Epoch, nullable=False),
    sa.Column("replayed_at", Epoch, nullable=True),
    sa.Column("replays", sa.Integer, nullable=False),
    sa.UniqueConstraint("subscriber", "seq", name="uq_dead_letters_subscriber_seq"),
    sa.Index("ix_dead_letters_open", "replayed_at", "parked_at"),
)

# Keyed per tenant: two businesses may send the same Idempotency-Key.
idempotency_keys = sa.Table(
    "idempotency_keys", metadata,
    tenant_column(primary_key=True),
    sa.Column("scope", sa.String(128), primary_key=True),
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("resource_id", sa.String(64), nullable=False),
    sa.Column("created_at", Epoch, nullable=False),
)

api_keys = sa.Table(
    "api_keys", metadata,
    tenant_column(),
    sa.Column("key_id", sa.String(64), primary_key=True),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("subject_id", sa.String(64), nullable=False),
    sa.Column("created_at", Epoch, nullable=False),
    sa.Column("revoked", sa.Boolean, nullable=False),
    # Tenant patterns (``doortest:*``) this key may act for with the X-Lastmile-Tenant
    # header; empty: its own tenant only.
    sa.Column("acts_for", Json, nullable=False, server_default="[]"),
)

offers = sa.Table(
    "offers", metadata,
    tenant_column(),
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("region_id", sa.String(64), nullable=False),
    sa.Column("courier_id", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("order_ids", Json, nullable=False),
    sa.Column("created_at", Epoch, nullable=False),
    sa.Column("expires_at", Epoch, nullable=False),
    sa.Column("decided_at", Epoch, nullable=True),
    sa.Column("decline_reason", sa.String(500), nullable=True),
    version_column(),
    # A move of held orders (app.reassignment): who holds them until this offer is accepted.
    sa.Column("from_courier_id", sa.String(64), nullable=True),
    sa.Column("gain_s", sa.Double, nullable=True),
    # A stacked offer (core.dispatch.stacking): its stack id and route; NULL otherwise.
    sa.Column("stack_id", sa.String(64), nullable=True),
    sa.Column("stops", Json, nullable=True),
    sa.Index("ix_offers_courier_status", "courier_id", "status"),
    sa.Index("ix_offers_region_status", "region_id", "status"),  # each dispatch round's read
    # One live offer per courier: the check in offers.make_offer, enforced when two race.
    sa.Index("uq_offers_pending_courier", "courier_id", unique=True,
             sqlite_where=PENDING_OFFER, postgresql_where=PENDING_OFFER),
)

offer_orders = sa.Table(
    "offer_orders", metadata,
    tenant_column(),
    sa.Column("offer_id", sa.String(64), sa.ForeignKey("offers.id"), primary_key=True),
    sa.Column("order_id", sa.String(64), primary_key=True),
    # Mirrors offers.status == 'pending' (kept by SqlOffers.save) so that an index on this
    # table can see which of an order's offers is live.
    sa.Column("pending", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index("ix_offer_orders_order", "order_id"),
    # One pending offer per order: the check in offers.make_offer, enforced when two race.
    sa.Index("uq_offer_orders_pending_order", "order_id", unique=True,
             sqlite_where=LIVE_OFFER_ORDER, postgresql_where=LIVE_OFFER_ORDER),
)

# Devices that may never track or start a shift (a banned ex-courier's phone).
banned_devices = sa.Table(
    "banned_devices", metadata,
    tenant_column(),
    sa.Column("device_id", sa.String(128), primary_key=True),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("banned_at", Epoch, nullable=False),
    sa.Column("banned_by", sa.String(64), nullable=False),
)

# Wrong drop-off PINs per order (app.pins): the count survives restarts and is shared by
# every API process; the row is locked while an attempt is judged.
pin_attempts = sa.Table(
    "pin_attempts", metadata,
    tenant_column(),
    sa.Column("order_id", sa.String(64), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("last_failed_at", Epoch, nullable=False),
)

# Leases with fencing tokens (core.leases): one row per region (or singleton job), never
# deleted, so the token only grows. A dispatch round checks its token here in its own
# transaction (app.leases.check_fence).
leases = sa.Table(
    "leases", metadata,
    tenant_column(),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(128), nullable=False),
    sa.Column("token", sa.BigInteger, nullable=False),
    sa.Column("expires_at", Epoch, nullable=False),
    sa.Column("acquired_at", Epoch, nullable=False),
)

# Dispatcher workers' heartbeats: how many share the regions (core.leases.fair_share).
dispatcher_workers = sa.Table(
    "dispatcher_workers", metadata,
    tenant_column(),
    sa.Column("worker_id", sa.String(128), primary_key=True),
    sa.Column("seen_at", Epoch, nullable=False),
)

# The tenants of this deployment; ``tenant_id`` is the row's own id, so a tenant sees
# only itself and listing them all is the platform's (``app.tenancy.platform_scope``).
tenants = sa.Table(
    "tenants", metadata,
    tenant_column(),
    sa.Column("id", sa.String(65), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("config", Json, nullable=False),
    sa.Column("created_at", Epoch, nullable=False),
    version_column(),
)
