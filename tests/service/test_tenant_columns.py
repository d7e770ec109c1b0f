"""Every table of the migrated schema carries the tenant (issue 9: "a test lists every
table and fails if one lacks the tenant column"), read back from the database itself by
reflection on SQLite and PostgreSQL, not from the declared metadata."""

from __future__ import annotations

import re

import sqlalchemy as sa

from lastmile.adapters.db.tables import metadata
from lastmile.adapters.db.tenant_scope import PLATFORM_TABLES, TENANT_COLUMN, tenant_tables

ALEMBIC = "alembic_version"  # alembic's own bookkeeping: one row, the schema's revision


def _declared(name: str) -> str:
    """A PostgreSQL partition (orders_p3, 0009) is storage of its declared parent."""
    return re.sub(r"_p\d+$", "", name) if re.fullmatch(r"(orders|events)_p\d+", name) else name


def test_every_migrated_table_has_a_non_null_tenant_column(platform):
    inspector = sa.inspect(platform.container.engine)
    names = [n for n in inspector.get_table_names() if n != ALEMBIC]
    assert len(names) >= len(metadata.tables)  # reflection found the schema
    lacking = []
    for name in names:
        columns = {c["name"]: c for c in inspector.get_columns(name)}
        if TENANT_COLUMN not in columns or columns[TENANT_COLUMN]["nullable"]:
            lacking.append(name)
    assert lacking == []


def test_the_routing_layer_knows_every_migrated_table(platform):
    """A table the database has but the metadata does not declare would pass the routing
    layer unfiltered: each one is a tenant table or named platform machinery."""
    names = {_declared(n) for n in sa.inspect(platform.container.engine).get_table_names()}
    known = tenant_tables() | PLATFORM_TABLES
    assert names - known == set()
    assert tenant_tables() & PLATFORM_TABLES == set()


def test_unique_keys_on_client_chosen_values_are_per_tenant(platform):
    """Two businesses may each use external_delivery_id "123", Idempotency-Key "k" or the
    same phone: every unique key (primary keys too) holding a value the client chooses
    includes tenant_id. Ids the server generates are unique across the deployment by
    construction and need no tenant in their keys."""
    inspector = sa.inspect(platform.container.engine)
    client_chosen = {"external_delivery_id", "key", "phone"}
    checked, offenders = [], []
    for name in sorted(tenant_tables()):
        keys = [inspector.get_pk_constraint(name)["constrained_columns"]]
        keys += [u["column_names"] for u in inspector.get_unique_constraints(name)]
        keys += [i["column_names"] for i in inspector.get_indexes(name) if i["unique"]]
        for columns in keys:
            if client_chosen & set(columns):
                checked.append((name, columns))
                if TENANT_COLUMN not in columns:
                    offenders.append((name, columns))
    assert {n for n, _ in checked} >= {"deliveries", "drive_quotes", "idempotency_keys",
                                       "consumers"}
    assert offenders == []
