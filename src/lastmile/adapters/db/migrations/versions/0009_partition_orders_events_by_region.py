"""partition orders and events by region on PostgreSQL (HASH on region_id, 8 partitions)

Revision ID: 0009
Revises: 0008

On PostgreSQL both tables become declaratively partitioned parents (``PARTITION BY HASH
(region_id)``, modulus ``PARTITIONS``) and the existing rows are copied in. A partitioned
table's primary and unique keys must contain the partition key, so ``orders`` is keyed by
(id, region_id) and ``events`` by (seq, region_id) with (event_id, region_id) unique. The
global uniqueness the old keys gave is kept elsewhere: order ids are random (UUID based) and
an order is created once per idempotency key (``idempotency_keys``, not partitioned); an event
id is unique in ``outbox`` (not partitioned, never deleted) written in the same transaction
as the event. Nothing has a foreign key to either table. SQLite is left as it is. Why HASH
and not LIST per region: docs/partitions.md.
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

PARTITIONS = 8

_ORDERS_COLUMNS = """
    id varchar(64) NOT NULL,
    region_id varchar(64) NOT NULL
        CONSTRAINT fk_orders_region_id_regions REFERENCES regions (id),
    merchant_id varchar(64) NOT NULL,
    consumer_id varchar(64) NOT NULL,
    courier_id varchar(64),
    status varchar(16) NOT NULL,
    version integer NOT NULL,
    placed_at double precision NOT NULL,
    doc jsonb NOT NULL"""

_EVENTS_COLUMNS = """
    seq bigint NOT NULL DEFAULT nextval('events_seq_seq'),
    event_id varchar(64) NOT NULL,
    type varchar(64) NOT NULL,
    region_id varchar(64) NOT NULL,
    subject_id varchar(64) NOT NULL,
    occurred_at double precision NOT NULL,
    actor_kind varchar(16) NOT NULL,
    actor_id varchar(64) NOT NULL,
    schema_version integer NOT NULL,
    data jsonb NOT NULL"""

_ORDERS_INDEXES = [
    "CREATE INDEX ix_orders_region_status ON orders (region_id, status)",
    "CREATE INDEX ix_orders_consumer ON orders (consumer_id, placed_at)",
    "CREATE INDEX ix_orders_merchant ON orders (merchant_id, placed_at)",
    "CREATE INDEX ix_orders_courier ON orders (courier_id)",
]
_EVENTS_INDEXES = [
    "CREATE INDEX ix_events_subject ON events (subject_id, seq)",
    "CREATE INDEX ix_events_region_type_time ON events (region_id, type, occurred_at)",
]
_APPEND_ONLY = ("CREATE TRIGGER events_no_change BEFORE UPDATE OR DELETE ON events "
                "FOR EACH ROW EXECUTE FUNCTION events_append_only()")


def _rebuild(partitioned: bool) -> None:
    """Build new ``orders`` and ``events`` (partitioned or plain), copy the rows, swap."""
    op.execute("ALTER TABLE orders RENAME TO orders_old")
    op.execute("ALTER TABLE events RENAME TO events_old")
    for name in ("ix_orders_region_status", "ix_orders_consumer", "ix_orders_merchant",
                 "ix_orders_courier", "ix_events_subject", "ix_events_region_type_time"):
        op.execute(f"DROP INDEX {name}")
    # The old keys' names are taken until the old tables go: drop the constraints first.
    op.execute("ALTER TABLE orders_old DROP CONSTRAINT pk_orders")
    op.execute("ALTER TABLE events_old DROP CONSTRAINT pk_events")
    op.execute("ALTER TABLE events_old DROP CONSTRAINT uq_events_event_id")
    if partitioned:
        op.execute(f"CREATE TABLE orders ({_ORDERS_COLUMNS},\n"
                   "    CONSTRAINT pk_orders PRIMARY KEY (id, region_id)"
                   ") PARTITION BY HASH (region_id)")
        op.execute(f"CREATE TABLE events ({_EVENTS_COLUMNS},\n"
                   "    CONSTRAINT pk_events PRIMARY KEY (seq, region_id),\n"
                   "    CONSTRAINT uq_events_event_id UNIQUE (event_id, region_id)"
                   ") PARTITION BY HASH (region_id)")
        for table in ("orders", "events"):
            for i in range(PARTITIONS):
                op.execute(f"CREATE TABLE {table}_p{i} PARTITION OF {table} "
                           f"FOR VALUES WITH (MODULUS {PARTITIONS}, REMAINDER {i})")
    else:
        op.execute(f"CREATE TABLE orders ({_ORDERS_COLUMNS},\n"
                   "    CONSTRAINT pk_orders PRIMARY KEY (id))")
        op.execute(f"CREATE TABLE events ({_EVENTS_COLUMNS},\n"
                   "    CONSTRAINT pk_events PRIMARY KEY (seq),\n"
                   "    CONSTRAINT uq_events_event_id UNIQUE (event_id))")
    op.execute("INSERT INTO orders SELECT id, region_id, merchant_id, consumer_id, courier_id, "
               "status, version, placed_at, doc FROM orders_old")
    op.execute("INSERT INTO events SELECT seq, event_id, type, region_id, subject_id, "
               "occurred_at, actor_kind, actor_id, schema_version, data FROM events_old")
    op.execute("ALTER SEQUENCE events_seq_seq OWNED BY events.seq")
    op.execute("DROP TABLE orders_old")
    op.execute("DROP TABLE events_old")  # its append-only trigger goes with it
    for statement in (*_ORDERS_INDEXES, *_EVENTS_INDEXES, _APPEND_ONLY):
        op.execute(statement)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _rebuild(partitioned=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _rebuild(partitioned=False)
