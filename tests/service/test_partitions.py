"""On PostgreSQL orders and events are partitioned by region (0009): a region's rows live in
one partition, a query for a region reads that partition only, and rows written before the
migration are copied in."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic import command
from offer_helpers import a_confirmed_order

from databases import drop_schema, pg_schema_url, postgres_available
from lastmile.adapters.clock import ManualClock, SequentialIds
from lastmile.adapters.db.engine import alembic_config
from lastmile.bootstrap import build
from lastmile.settings import Settings
from lastmile.sim.seed import DEMO_REGION_ID, seed_demo

pytestmark = pytest.mark.postgres


class _Pg:
    def __init__(self, container, clock, seed):  # type: ignore[no-untyped-def]
        self.container, self.clock, self.seed = container, clock, seed

    @property
    def services(self):  # type: ignore[no-untyped-def]
        return self.container.services


@pytest.fixture
def pg(tmp_path) -> Iterator[_Pg]:  # type: ignore[no-untyped-def]
    reason = postgres_available()
    if reason:
        pytest.skip(reason)
    url, schema = pg_schema_url()
    clock = ManualClock()
    container = build(Settings(data_dir=tmp_path, database_url=url), clock=clock,
                      ids=SequentialIds(), rng=random.Random(3))
    try:
        yield _Pg(container, clock, seed_demo(container.services, seed=5, merchants=6,
                                              consumers=4, couriers=3))
    finally:
        container.close()
        drop_schema(schema)


def _partitions_holding(conn: sa.Connection, table: str, region_id: str) -> set[str]:
    rows = conn.execute(sa.text(
        f"select distinct tableoid::regclass::text from {table} where region_id = :r"),
        {"r": region_id})
    return {r[0] for r in rows}


def test_orders_and_events_are_hash_partitioned_on_the_region(pg):
    with pg.container.engine.connect() as conn:
        for table in ("orders", "events"):
            strategy = conn.execute(sa.text(
                "select partstrat, pg_get_partkeydef(partrelid) from pg_partitioned_table "
                "where partrelid = cast(:t as regclass)"), {"t": table}).one()
            assert strategy == ("h", "HASH (region_id)")
            keys = conn.execute(sa.text(
                "select pg_get_constraintdef(oid) from pg_constraint "
                "where conrelid = cast(:t as regclass) and contype in ('p', 'u') "
                "order by conname"), {"t": table}).scalars().all()
            assert all("region_id" in k for k in keys) and keys


def test_a_regions_rows_land_in_one_partition_and_other_regions_may_use_others(pg):
    a_confirmed_order(pg, key="k1")
    a_confirmed_order(pg, key="k2")
    with pg.container.engine.connect() as conn:
        orders = _partitions_holding(conn, "orders", DEMO_REGION_ID)
        events = _partitions_holding(conn, "events", DEMO_REGION_ID)
        assert len(orders) == 1 and orders.pop().startswith("orders_p")
        assert len(events) == 1 and events.pop().startswith("events_p")
        # The partition is the one PostgreSQL's hash of the region picks.
        n = conn.execute(sa.text(
            "select count(*) from orders where region_id = :r and satisfies_hash_partition("
            "cast('orders' as regclass), 8, "
            "cast(substring(tableoid::regclass::text from 9) as int), region_id)"),
            {"r": DEMO_REGION_ID}).scalar()
        assert n == 2
        # The parent holds nothing itself: every row is in a partition.
        assert conn.execute(sa.text("select count(*) from only orders")).scalar() == 0


def test_a_region_filtered_query_reads_only_that_regions_partition(pg):
    a_confirmed_order(pg, key="k1")
    with pg.container.engine.connect() as conn:
        conn.execute(sa.text("set enable_seqscan = off"))
        for table, prefix in (("orders", "orders_p"), ("events", "events_p")):
            plan = "\n".join(conn.execute(sa.text(
                f"explain select * from {table} where region_id = :r"),
                {"r": DEMO_REGION_ID}).scalars())
            scanned = set(re.findall(rf"\bon ({prefix}\d+)", plan))
            assert scanned == _partitions_holding(conn, table, DEMO_REGION_ID), plan
        plan_all = "\n".join(conn.execute(sa.text("explain select * from orders")).scalars())
        assert sum(f"orders_p{i}" in plan_all for i in range(8)) == 8


def test_rows_written_before_partitioning_are_copied_into_the_partitions(pg):
    engine = pg.container.engine
    cfg = alembic_config(engine)
    order = a_confirmed_order(pg, key="k1")
    with engine.connect() as conn:
        before = conn.execute(sa.text("select count(*) from events")).scalar()
        last_seq = conn.execute(sa.text("select max(seq) from events")).scalar()
    command.downgrade(cfg, "0008")
    with engine.connect() as conn:
        # This schema's partitioned tables only: other tests' schemas share the catalog.
        assert conn.execute(sa.text(
            "select count(*) from pg_partitioned_table p join pg_class c on c.oid = "
            "p.partrelid where c.relnamespace = current_schema()::regnamespace")
        ).scalar() == 0
        assert conn.execute(sa.text("select count(*) from events")).scalar() == before
    command.upgrade(cfg, "head")
    with engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from events")).scalar() == before
        assert conn.execute(sa.text("select status from orders where id = :i"),
                            {"i": order.id}).scalar() == "confirmed"
    # The event sequence carries on after the copied rows; history stays append-only.
    a_confirmed_order(pg, key="k2")
    with engine.connect() as conn:
        assert conn.execute(sa.text("select min(seq) from events where seq > :s"),
                            {"s": last_seq}).scalar() > last_seq
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            conn.execute(sa.text("delete from events"))
