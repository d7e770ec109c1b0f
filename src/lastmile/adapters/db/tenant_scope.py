"""The query-routing layer: every statement a unit of work runs is scoped to its tenant.

One place, below every repository, so no query can forget the tenant (seed 003: "all
queries add a tenant-id filter from the request context"). The unit of work records its
scope on the connection (``SCOPE``): a tenant, or ``PLATFORM`` for the platform's own
cross-tenant machinery (``app.tenancy.platform_scope``). Then, before execution:

- ``SELECT`` (each one, subqueries included): ``AND t.tenant_id = :tenant`` for every
  tenant table in its ``FROM`` (joins and aliases too);
- ``UPDATE`` / ``DELETE``: the same on the target table; setting ``tenant_id`` is refused
  (rows never move between tenants);
- ``INSERT``: the row gets the tenant; a row naming another tenant is refused;
- raw SQL text is refused in a tenant scope (it cannot be scoped).

In the platform scope reads are not filtered, and an insert into a tenant table must
name its tenant (``PLATFORM_TABLES``, the relay's and dispatcher's bookkeeping, take the
platform's). Rewritten statements are cached per statement object, so a prepared
statement (``prepared.py``) is rewritten once, not per execution.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import visitors

from lastmile.adapters.db import tables_drive  # noqa: F401 - registers its tables on metadata
from lastmile.adapters.db.tables import metadata
from lastmile.core.tenancy import PLATFORM_TENANT

SCOPE = "lastmile_tenant"  # connection info key: the unit of work's tenant, or PLATFORM
PLATFORM = PLATFORM_TENANT
TENANT_COLUMN = "tenant_id"
PARAM = "lastmile_tenant_scope"
# Bookkeeping of the platform's machinery, shared by every tenant's traffic: never
# filtered (their rows still carry the tenant whose work they are, or the platform's).
PLATFORM_TABLES = frozenset({"event_subscribers", "event_deliveries", "leases",
                             "dispatcher_workers", "alembic_version"})
_TENANT_PARAM = sa.bindparam(PARAM, type_=sa.String)


class CrossTenantWrite(RuntimeError):
    """A statement tried to write a row of another tenant, or could not be scoped: a bug
    in the code that built it, never the caller's input."""


def tenant_tables() -> frozenset[str]:
    return frozenset(name for name, table in metadata.tables.items()
                     if TENANT_COLUMN in table.c and name not in PLATFORM_TABLES)


_SCOPED = tenant_tables()
_cache: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def install(engine: Engine) -> None:
    """Scope every statement run on ``engine`` by the connection's ``SCOPE``."""
    sa.event.listen(engine, "before_execute", _before_execute, retval=True)


def _before_execute(conn: Connection, statement: Any, multiparams: Any, params: Any,
                    _options: Any) -> tuple[Any, Any, Any]:
    scope = conn.info.get(SCOPE)
    if scope is None:  # migrations, probes: not a unit of work
        return statement, multiparams, params
    if isinstance(statement, sa.Insert):
        return _insert(statement, multiparams, params, scope)
    if isinstance(statement, sa.TextClause):
        if scope != PLATFORM:
            raise CrossTenantWrite("raw SQL cannot be scoped to a tenant; build it with "
                                   "SQLAlchemy Core or run it in the platform scope")
        return statement, multiparams, params
    if scope == PLATFORM or not isinstance(statement, (sa.Select, sa.Update, sa.Delete,
                                                       sa.CompoundSelect)):
        return statement, multiparams, params
    if isinstance(statement, sa.Update):
        rows = multiparams or [params]
        if any(TENANT_COLUMN in row for row in rows) or _sets_tenant(statement):
            raise CrossTenantWrite(f"an UPDATE of {statement.table} sets {TENANT_COLUMN}: "
                                   "rows never move between tenants")
    scoped = _scoped(statement)
    if scoped is statement:
        return statement, multiparams, params
    if multiparams:
        return scoped, [{**row, PARAM: scope} for row in multiparams], params
    return scoped, multiparams, {**params, PARAM: scope}


def _insert(statement: sa.Insert, multiparams: Any, params: Any,
            scope: str) -> tuple[Any, Any, Any]:
    name = statement.table.name
    if name not in _SCOPED and name not in PLATFORM_TABLES:
        return statement, multiparams, params
    rows: list[Mapping[str, Any]] = list(multiparams) if multiparams else [params]
    values: Mapping[Any, Any] = statement._values or {}  # noqa: SLF001 - .values(...) given
    given = {_key(k): v for k, v in values.items()}
    if TENANT_COLUMN in given:
        named = {_literal(given[TENANT_COLUMN])}
    else:
        named = {row[TENANT_COLUMN] for row in rows if TENANT_COLUMN in row}
    missing = TENANT_COLUMN not in given and any(TENANT_COLUMN not in row for row in rows)
    if scope != PLATFORM and name in _SCOPED and named - {scope}:
        raise CrossTenantWrite(f"an INSERT into {name} names tenant(s) {sorted(named)} "
                               f"in the scope of {scope}")
    if not missing:
        return statement, multiparams, params
    if scope == PLATFORM and name in _SCOPED:
        raise CrossTenantWrite(f"an INSERT into {name} in the platform scope must name "
                               f"its {TENANT_COLUMN}")
    # Machinery rows not naming a tenant (a lease, a heartbeat) are the platform's, whoever
    # the caller acts for: a customer tenant's data never holds them.
    owner = PLATFORM if name in PLATFORM_TABLES else scope
    if multiparams:
        return statement, [{TENANT_COLUMN: owner, **row} for row in multiparams], params
    if params:
        return statement, multiparams, {TENANT_COLUMN: owner, **params}
    return statement.values({TENANT_COLUMN: owner}), multiparams, params


def _key(k: Any) -> str:
    return k if isinstance(k, str) else str(getattr(k, "key", k))


def _literal(value: Any) -> Any:
    return getattr(value, "value", value)


def _sets_tenant(statement: sa.Update) -> bool:
    return any(_key(k) == TENANT_COLUMN for k in (statement._values or {}))  # noqa: SLF001


def _scoped(statement: Any) -> Any:
    cached = _cache.get(statement)
    if cached is None:
        cached = visitors.cloned_traverse(statement, {}, {
            "select": _scope_select, "update": _scope_dml, "delete": _scope_dml})
        _cache[statement] = cached
    return cached


def _scope_select(select: sa.Select[Any]) -> None:
    criteria = tuple(t.c[TENANT_COLUMN] == _TENANT_PARAM
                     for f in select.get_final_froms() for t in _tenant_froms(f))
    if criteria:
        select._where_criteria += criteria  # noqa: SLF001 - in place, on the traversal's clone


def _scope_dml(statement: sa.Update | sa.Delete) -> None:
    table = statement.table
    if getattr(table, "name", None) in _SCOPED:
        statement._where_criteria += (  # noqa: SLF001
            table.c[TENANT_COLUMN] == _TENANT_PARAM,)


def _tenant_froms(from_: Any) -> Iterator[Any]:
    """The tenant tables (or aliases of one) a FROM element reads, through joins."""
    if isinstance(from_, sa.Join):
        yield from _tenant_froms(from_.left)
        yield from _tenant_froms(from_.right)
    elif isinstance(from_, sa.Table):
        if from_.name in _SCOPED:
            yield from_
    elif isinstance(from_, sa.Alias) and isinstance(from_.element, sa.Table):
        if from_.element.name in _SCOPED:
            yield from_
