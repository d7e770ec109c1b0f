"""The query-routing layer (adapters/db/tenant_scope) on every statement shape it must
scope or refuse, run for real on SQLite holding rows of two tenants."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection

from lastmile.adapters.db import tables as t
from lastmile.adapters.db import tenant_scope
from lastmile.adapters.db.tenant_scope import PLATFORM, SCOPE, CrossTenantWrite

A, B = "acme:live", "bravo:live"
pins, inbox, bans = t.pin_attempts, t.inbox, t.banned_devices


@pytest.fixture
def engine() -> Iterator[sa.Engine]:
    engine = sa.create_engine("sqlite://")
    t.metadata.create_all(engine)
    tenant_scope.install(engine)
    with engine.begin() as conn:  # no scope: set-up, as migrations run
        for tenant, order in ((A, "ord_a1"), (A, "ord_a2"), (B, "ord_b1"), (B, "ord_b2")):
            conn.execute(pins.insert().values(tenant_id=tenant, order_id=order, failures=1,
                                              last_failed_at=0.0))
            conn.execute(inbox.insert().values(tenant_id=tenant, consumer="c",
                                               event_id=order))
    yield engine
    engine.dispose()


@contextmanager
def scoped(engine: sa.Engine, tenant: str) -> Iterator[Connection]:
    """A connection scoped as a unit of work scopes its own (and unscoped after: the
    pooled connection's info outlives it)."""
    with engine.connect() as conn:
        conn.info[SCOPE] = tenant
        try:
            yield conn
        finally:
            conn.info.pop(SCOPE, None)


def ids(conn: Connection, statement: sa.Executable) -> set[str]:
    return {row[0] for row in conn.execute(statement)}


def all_pins(engine: sa.Engine) -> dict[str, tuple[str, int]]:
    with engine.connect() as conn:
        return {r.order_id: (r.tenant_id, r.failures) for r in conn.execute(sa.select(pins))}


def test_a_plain_select_sees_only_its_tenant(engine: sa.Engine) -> None:
    with scoped(engine, A) as conn:
        assert ids(conn, sa.select(pins.c.order_id)) == {"ord_a1", "ord_a2"}
        assert conn.execute(sa.select(sa.func.count()).select_from(pins)).scalar() == 2


def test_joins_scope_both_sides(engine: sa.Engine) -> None:
    joined = sa.select(pins.c.order_id).join_from(pins, inbox, inbox.c.event_id != "x")
    with scoped(engine, B) as conn:
        rows = conn.execute(joined.add_columns(inbox.c.tenant_id)).all()
    assert {r.tenant_id for r in rows} == {B} and {r.order_id for r in rows} == {
        "ord_b1", "ord_b2"}


def test_aliases_are_scoped(engine: sa.Engine) -> None:
    p1, p2 = pins.alias("p1"), pins.alias("p2")
    pairs = sa.select(p1.c.order_id, p2.c.order_id.label("other")).where(
        p1.c.order_id != p2.c.order_id)
    with scoped(engine, A) as conn:
        got = {(r[0], r[1]) for r in conn.execute(pairs)}
    assert got == {("ord_a1", "ord_a2"), ("ord_a2", "ord_a1")}


def test_a_subquery_in_where_is_scoped(engine: sa.Engine) -> None:
    # inbox event ids are order ids here: B's inbox must not make A see B's pins
    stmt = sa.select(inbox.c.event_id).where(
        inbox.c.event_id.in_(sa.select(pins.c.order_id)))
    with scoped(engine, A) as conn:
        assert ids(conn, stmt) == {"ord_a1", "ord_a2"}
    bare = sa.select(inbox.c.event_id).where(inbox.c.event_id.in_(
        sa.select(pins.c.order_id).where(pins.c.order_id.like("ord_b%"))))
    with scoped(engine, A) as conn:
        assert ids(conn, bare) == set()


def test_exists_is_scoped(engine: sa.Engine) -> None:
    stmt = sa.select(sa.literal(1)).where(
        sa.exists().where(pins.c.order_id == "ord_b1"))
    with scoped(engine, A) as conn:
        assert conn.execute(stmt).first() is None
    with scoped(engine, B) as conn:
        assert conn.execute(stmt).first() is not None


def test_union_members_and_ctes_are_scoped(engine: sa.Engine) -> None:
    union = sa.union(sa.select(pins.c.order_id), sa.select(inbox.c.event_id))
    cte = sa.select(pins.c.order_id).cte("mine")
    with scoped(engine, B) as conn:
        assert ids(conn, union) == {"ord_b1", "ord_b2"}
        assert ids(conn, sa.select(cte.c.order_id)) == {"ord_b1", "ord_b2"}
        assert ids(conn, sa.select(union.subquery().c.order_id)) == {"ord_b1", "ord_b2"}


def test_a_scalar_subquery_in_the_columns_is_scoped(engine: sa.Engine) -> None:
    count = sa.select(sa.func.count()).select_from(inbox).scalar_subquery()
    with scoped(engine, A) as conn:
        assert conn.execute(sa.select(count)).scalar() == 2


def test_update_and_delete_touch_only_their_tenant(engine: sa.Engine) -> None:
    with scoped(engine, A) as conn:
        assert conn.execute(pins.update().values(failures=9)).rowcount == 2
        assert conn.execute(pins.delete().where(pins.c.order_id == "ord_b1")).rowcount == 0
        conn.commit()
    got = all_pins(engine)
    assert got["ord_a1"] == (A, 9) and got["ord_b1"] == (B, 1) and got["ord_b2"] == (B, 1)


def test_an_update_reading_another_table_scopes_it_too(engine: sa.Engine) -> None:
    # UPDATE .. SET = (SELECT ..) and UPDATE .. FROM: the other table is filtered as well
    from_b = pins.update().values(failures=sa.select(sa.func.count()).select_from(
        inbox).scalar_subquery() + 10)
    with scoped(engine, A) as conn:
        conn.execute(from_b)
        # B's inbox holds ord_b1: A's UPDATE .. FROM inbox must not see it
        conn.execute(pins.update().where(inbox.c.consumer != pins.c.order_id,
                                         inbox.c.event_id == "ord_a1")
                     .values(last_failed_at=6.0))
        conn.execute(pins.update().where(inbox.c.consumer != pins.c.order_id,
                                         inbox.c.event_id == "ord_b1")
                     .values(last_failed_at=5.0))
        conn.commit()
    got = all_pins(engine)
    assert got["ord_a1"] == (A, 12) and got["ord_b1"] == (B, 1)
    with engine.connect() as conn:
        assert ids(conn, sa.select(pins.c.order_id).where(pins.c.last_failed_at > 0)) == {
            "ord_a1", "ord_a2"}
        assert ids(conn, sa.select(pins.c.last_failed_at)) == {0.0, 6.0}


@pytest.mark.parametrize("update", [
    pins.update().values(tenant_id=B),
    pins.update().ordered_values((pins.c.tenant_id, B)),
])
def test_an_update_may_not_move_a_row_to_another_tenant(engine: sa.Engine,
                                                        update: sa.Update) -> None:
    with scoped(engine, A) as conn, pytest.raises(CrossTenantWrite, match="sets tenant_id"):
        conn.execute(update)
    with scoped(engine, A) as conn, pytest.raises(CrossTenantWrite, match="sets tenant_id"):
        conn.execute(pins.update().where(pins.c.order_id == sa.bindparam("o")),
                     {"o": "ord_a1", "tenant_id": B})


def test_inserts_get_the_scope_tenant_single_executemany_and_multi_values(
        engine: sa.Engine) -> None:
    with scoped(engine, A) as conn:
        conn.execute(bans.insert().values(device_id="d1", reason="r", banned_at=0.0,
                                          banned_by="ops"))
        conn.execute(bans.insert(), [{"device_id": f"d{i}", "reason": "r", "banned_at": 0.0,
                                      "banned_by": "ops"} for i in (2, 3)])
        conn.execute(bans.insert().values([
            {"device_id": "d4", "reason": "r", "banned_at": 0.0, "banned_by": "ops"},
            {"device_id": "d5", "reason": "r", "banned_at": 0.0, "banned_by": "ops",
             "tenant_id": A}]))
        conn.commit()
    with engine.connect() as conn:
        got = dict(conn.execute(sa.select(bans.c.device_id, bans.c.tenant_id)).all())
    assert got == {f"d{i}": A for i in range(1, 6)}


@pytest.mark.parametrize("how", ["values", "params", "executemany", "multi_values", "bind"])
def test_an_insert_naming_another_tenant_is_refused(engine: sa.Engine, how: str) -> None:
    row = {"device_id": "d1", "reason": "r", "banned_at": 0.0, "banned_by": "ops"}
    with scoped(engine, A) as conn, pytest.raises(CrossTenantWrite, match="names tenant"):
        if how == "values":
            conn.execute(bans.insert().values(**row, tenant_id=B))
        elif how == "params":
            conn.execute(bans.insert(), {**row, "tenant_id": B})
        elif how == "executemany":
            conn.execute(bans.insert(), [{**row, "tenant_id": A},
                                         {**row, "device_id": "d2", "tenant_id": B}])
        elif how == "multi_values":
            conn.execute(bans.insert().values([row, {**row, "device_id": "d2",
                                                     "tenant_id": B}]))
        else:
            conn.execute(bans.insert().values(**row, tenant_id=sa.bindparam("t")), {"t": B})


def test_insert_from_select_is_refused_in_a_tenant_scope(engine: sa.Engine) -> None:
    stmt = inbox.insert().from_select(["consumer", "event_id", "tenant_id"], sa.select(
        sa.literal("x"), pins.c.order_id, pins.c.tenant_id))
    with scoped(engine, A) as conn, pytest.raises(CrossTenantWrite, match="from a SELECT"):
        conn.execute(stmt)


def test_an_upsert_never_overwrites_another_tenants_row(engine: sa.Engine) -> None:
    # order ids are unique across tenants: A's upsert conflicting with B's row updates nothing
    upsert = (sqlite.insert(pins).values(order_id="ord_b1", failures=1, last_failed_at=0.0)
              .on_conflict_do_update(index_elements=[pins.c.order_id],
                                     set_={"failures": pins.c.failures + 1}))
    with scoped(engine, A) as conn:
        conn.execute(upsert)
        conn.execute(upsert.values(order_id="ord_a1"))
        conn.commit()
    got = all_pins(engine)
    assert got["ord_b1"] == (B, 1) and got["ord_a1"] == (A, 2)


def test_an_upsert_may_not_set_the_tenant(engine: sa.Engine) -> None:
    upsert = (sqlite.insert(pins).values(order_id="ord_a1", failures=1, last_failed_at=0.0)
              .on_conflict_do_update(index_elements=[pins.c.order_id], set_={"tenant_id": B}))
    with scoped(engine, A) as conn, pytest.raises(CrossTenantWrite, match="sets tenant_id"):
        conn.execute(upsert)


@pytest.mark.parametrize("statement", [
    sa.text("select order_id from pin_attempts"),
    sa.text("select order_id from pin_attempts").columns(sa.column("order_id")),
    sa.select(sa.column("order_id")).select_from(sa.table("pin_attempts")),
    sa.select(sa.column("order_id")).select_from(sa.text("pin_attempts")),
], ids=["text", "textual_select", "lightweight_table", "text_from"])
def test_what_cannot_be_scoped_is_refused(engine: sa.Engine, statement: sa.Executable) -> None:
    with scoped(engine, A) as conn, pytest.raises(CrossTenantWrite, match="scoped"):
        conn.execute(statement)
    with scoped(engine, PLATFORM) as conn:  # the platform's machinery may
        assert len(conn.execute(statement).all()) == 4


def test_the_platform_scope_reads_everything_unfiltered(engine: sa.Engine) -> None:
    with scoped(engine, PLATFORM) as conn:
        assert len(ids(conn, sa.select(pins.c.order_id))) == 4
        assert conn.execute(pins.update().values(failures=3)).rowcount == 4


def test_a_platform_insert_into_a_tenant_table_must_name_the_tenant(
        engine: sa.Engine) -> None:
    row = {"device_id": "d1", "reason": "r", "banned_at": 0.0, "banned_by": "ops"}
    with scoped(engine, PLATFORM) as conn:
        with pytest.raises(CrossTenantWrite, match="must name its tenant_id"):
            conn.execute(bans.insert().values(**row))
        conn.execute(bans.insert().values(**row, tenant_id=B))  # naming any tenant is fine
        conn.execute(t.leases.insert().values(name="x", owner="o", token=1, expires_at=0.0,
                                              acquired_at=0.0))
        assert conn.execute(sa.select(t.leases.c.tenant_id)).scalar() == PLATFORM


def test_a_rewritten_statement_is_cached_per_statement_object(engine: sa.Engine) -> None:
    stmt = sa.select(pins.c.order_id).where(pins.c.order_id == sa.bindparam("o"))
    with scoped(engine, A) as conn:
        assert ids_of(conn, stmt, "ord_a1") == {"ord_a1"}
        first = tenant_scope._cache[stmt]  # noqa: SLF001
    with scoped(engine, B) as conn:
        assert ids_of(conn, stmt, "ord_a1") == set()  # the same rewrite, B's parameter
        assert ids_of(conn, stmt, "ord_b1") == {"ord_b1"}
        assert tenant_scope._cache[stmt] is first  # noqa: SLF001 - one rewrite, any tenant


def ids_of(conn: Connection, stmt: sa.Select[tuple[str]], order: str) -> set[str]:
    return {row[0] for row in conn.execute(stmt, {"o": order})}


def test_only_the_engines_own_set_up_runs_driver_sql() -> None:
    """``exec_driver_sql`` passes no SQLAlchemy event the routing layer could see: it stays
    in the engine's session set-up, the probes' ``select 1`` and the migrations."""
    from pathlib import Path

    import lastmile
    root = Path(lastmile.__file__).parent
    users = {p.relative_to(root).as_posix() for p in root.rglob("*.py")
             if "exec_driver_sql" in p.read_text(encoding="utf-8")}
    users -= {"adapters/db/tenant_scope.py"}  # its docstring names it
    assert users <= {"adapters/db/engine.py", "adapters/probes.py",
                     "adapters/db/migrations/env.py"}


def test_statements_of_one_shape_built_per_call_each_see_only_their_tenant_and_values(
        engine: sa.Engine) -> None:
    # The second statement of a shape takes the shallow path (the criteria its shape got);
    # its own bound values, and the connection's tenant, must still be the ones used.
    def by_order(order_id: str) -> sa.Select[tuple[str]]:
        return sa.select(pins.c.order_id).where(pins.c.order_id == order_id)

    with scoped(engine, A) as conn:
        assert ids(conn, by_order("ord_a1")) == {"ord_a1"}
        assert ids(conn, by_order("ord_a2")) == {"ord_a2"}
        assert ids(conn, by_order("ord_b1")) == set()
    with scoped(engine, B) as conn:
        assert ids(conn, by_order("ord_b1")) == {"ord_b1"}
        assert ids(conn, by_order("ord_a1")) == set()


def test_a_shape_with_a_nested_select_is_scoped_inside_on_every_call(
        engine: sa.Engine) -> None:
    def nested(order_id: str) -> sa.Select[tuple[str]]:
        inner = sa.select(inbox.c.event_id).where(inbox.c.event_id == order_id)
        return sa.select(pins.c.order_id).where(pins.c.order_id.in_(inner.scalar_subquery()))

    for _ in range(3):
        with scoped(engine, A) as conn:
            assert ids(conn, nested("ord_a1")) == {"ord_a1"}
            assert ids(conn, nested("ord_b1")) == set()


def test_updates_of_one_shape_built_per_call_touch_only_their_tenant(engine: sa.Engine) -> None:
    for _ in range(2):
        with scoped(engine, A) as conn:
            conn.execute(pins.update().where(pins.c.failures >= 1).values(failures=5))
            conn.commit()
    assert all_pins(engine) == {"ord_a1": (A, 5), "ord_a2": (A, 5), "ord_b1": (B, 1),
                                "ord_b2": (B, 1)}


def test_scoping_a_select_compiles_nothing_before_execution(engine: sa.Engine,
                                                            monkeypatch) -> None:
    # get_final_froms() builds the default dialect's compiler (a full compile) per
    # statement object; the scope reads the FROM list without it.
    monkeypatch.setattr(sa.Select, "_default_compiler", lambda self: pytest.fail(
        "the tenant scope compiled a statement to read its FROM list"))
    with scoped(engine, A) as conn:
        assert ids(conn, sa.select(pins.c.order_id).where(pins.c.failures == 1)) == {
            "ord_a1", "ord_a2"}
