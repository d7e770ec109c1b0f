"""versions for compare-and-set; one live offer per courier and per order

Revision ID: 0006
Revises: 0005

Couriers, merchants, offers and deliveries get a ``version`` (0 for existing rows) that
their repositories compare-and-set. ``offer_orders.pending`` mirrors the offer's status so
that a partial unique index can hold one pending offer per order. Pending offers that
already break either rule (possible before: an expired offer stayed pending) are closed as
expired, the older first, before the indexes are built.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

VERSIONED = ("couriers", "merchants", "offers", "deliveries")
PENDING = sa.text("status = 'pending'")
LIVE = sa.text("pending")

# Older pending offers of a courier that has a newer pending one.
_EXPIRE_OLDER_OF_COURIER = """
update offers set status = 'expired', decided_at = expires_at
where status = 'pending' and exists (
    select 1 from offers newer
    where newer.courier_id = offers.courier_id and newer.status = 'pending'
      and (newer.created_at > offers.created_at
           or (newer.created_at = offers.created_at and newer.id > offers.id)))
"""
# Older pending offers of an order that is in a newer pending offer.
_EXPIRE_OLDER_OF_ORDER = """
update offers set status = 'expired', decided_at = expires_at
where status = 'pending' and exists (
    select 1 from offer_orders mine
    join offer_orders theirs on theirs.order_id = mine.order_id
                            and theirs.offer_id <> mine.offer_id
    join offers newer on newer.id = theirs.offer_id and newer.status = 'pending'
    where mine.offer_id = offers.id
      and (newer.created_at > offers.created_at
           or (newer.created_at = offers.created_at and newer.id > offers.id)))
"""


def upgrade() -> None:
    for table in VERSIONED:
        op.add_column(table, sa.Column("version", sa.Integer(), nullable=False,
                                       server_default="0"))
    op.add_column("offer_orders", sa.Column("pending", sa.Boolean(), nullable=False,
                                            server_default=sa.false()))
    op.execute(_EXPIRE_OLDER_OF_COURIER)
    op.execute(_EXPIRE_OLDER_OF_ORDER)
    op.execute("update offer_orders set pending = true where offer_id in "
               "(select id from offers where status = 'pending')")
    op.create_index("uq_offers_pending_courier", "offers", ["courier_id"], unique=True,
                    sqlite_where=PENDING, postgresql_where=PENDING)
    op.create_index("uq_offer_orders_pending_order", "offer_orders", ["order_id"], unique=True,
                    sqlite_where=LIVE, postgresql_where=LIVE)


def downgrade() -> None:
    op.drop_index("uq_offer_orders_pending_order", table_name="offer_orders")
    op.drop_index("uq_offers_pending_courier", table_name="offers")
    with op.batch_alter_table("offer_orders") as batch:
        batch.drop_column("pending")
    for table in VERSIONED:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("version")
