"""The query-routing layer: every statement a unit of work runs is scoped to its tenant.

One place, below every repository, so no query can forget the tenant (seed 003: "all
queries add a tenant-id filter from the request context"). The unit of work records its
scope on the connection (``SCOPE``): a tenant, or ``PLATFORM`` for the platform's own
cross-tenant machinery (``app.tenancy.platform_scope``). Then, before execution:

- ``SELECT`` (each one: subqueries, ``EXISTS``, ``UNION`` members and CTEs included):
  ``AND t.tenant_id = :tenant`` for every tenant table in its ``FROM`` (joins and
  aliases too);
- ``UPDATE`` / ``DELETE``: the same on the target table and on any other table the
  statement reads (``UPDATE .. FROM``); setting ``tenant_id`` is refused (rows never move
  between tenants);
- ``INSERT`` (one row, many, ``.values([...])``): each row gets the tenant; a row naming
  another tenant is refused; ``ON CONFLICT DO UPDATE`` only updates a row of the inserted
  row's tenant and may not set ``tenant_id``; ``INSERT .. FROM SELECT`` is refused;
- what cannot be scoped is refused in a tenant scope: raw SQL text (``text()``, also with
  ``.columns()``), a lightweight ``table("orders")`` or text in a ``FROM``, any other
  kind of statement. ``Connection.exec_driver_sql`` bypasses SQLAlchemy's events
  altogether: only the engine's own session set-up uses it (tests/unit/test_tenant_scope).

In the platform scope reads are not filtered, and an insert into a tenant table must
name its tenant (``PLATFORM_TABLES``, the relay's and dispatcher's bookkeeping, take the
platform's). Rewritten statements are cached per statement object, so a prepared
statement (``prepared.py``) is rewritten once, not per execution; a statement built per
call with no nested SELECT reuses the criteria of its shape (``_scoped``).
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import visitors
from sqlalchemy.sql.selectable import SelectState

from lastmile.adapters.db import (
    tables_drive,  # noqa: F401 - registers its tables on metadata
    tables_eta,  # noqa: F401 - registers its tables on metadata
    tables_experiments,  # noqa: F401 - registers its tables on metadata
    tables_ledger,  # noqa: F401 - registers its tables on metadata
    tables_payments,  # noqa: F401 - registers its tables too
    tables_refunds,  # noqa: F401 - registers its tables on metadata
)
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
# Statement shape (its cache key's structure) -> the tenant criteria its root gets, for
# shapes with no nested SELECT (``_scoped``). Shapes are the code's, not the data's: few.
_shapes: dict[Any, tuple[Any, ...]] = {}
_MAX_SHAPES = 4_096


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
    if not isinstance(statement, _SCOPABLE):
        if scope == PLATFORM:
            return statement, multiparams, params
        raise CrossTenantWrite(f"a {type(statement).__name__} cannot be scoped to a tenant "
                               "(raw SQL text, or a kind of statement the routing layer "
                               "does not know); build it with SQLAlchemy Core or run it in "
                               "the platform scope")
    if scope == PLATFORM:
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


_SCOPABLE = (sa.Select, sa.CompoundSelect, sa.Update, sa.Delete)


def _insert(statement: sa.Insert, multiparams: Any, params: Any,
            scope: str) -> tuple[Any, Any, Any]:
    name = statement.table.name
    if name not in _SCOPED and name not in PLATFORM_TABLES:
        return statement, multiparams, params
    if statement._select_names is not None and name in _SCOPED:  # noqa: SLF001
        raise CrossTenantWrite(f"an INSERT into {name} from a SELECT cannot be checked "
                               "row by row for its tenant; insert the rows themselves")
    rows: list[Mapping[str, Any]] = list(multiparams) if multiparams else [params]
    # .values({...}) or .values([{...}, ...]): every literal row the statement holds.
    multi: Any = statement._multi_values  # noqa: SLF001
    literal_rows = [{_key(k): v for k, v in row.items()} for batch in multi for row in batch]
    given = {_key(k): v for k, v in (statement._values or {}).items()}  # noqa: SLF001
    if literal_rows:
        named = {_literal(r[TENANT_COLUMN], rows) for r in literal_rows if TENANT_COLUMN in r}
        missing = any(TENANT_COLUMN not in r for r in literal_rows)
    elif TENANT_COLUMN in given:
        named, missing = {_literal(given[TENANT_COLUMN], rows)}, False
    else:
        named = {row[TENANT_COLUMN] for row in rows if TENANT_COLUMN in row}
        missing = any(TENANT_COLUMN not in row for row in rows)
    named -= {None}  # a bind parameter no row fills: SQLAlchemy refuses the statement
    if scope != PLATFORM and name in _SCOPED and named - {scope}:
        raise CrossTenantWrite(f"an INSERT into {name} names tenant(s) {sorted(named)} "
                               f"in the scope of {scope}")
    if missing and scope == PLATFORM and name in _SCOPED:
        raise CrossTenantWrite(f"an INSERT into {name} in the platform scope must name "
                               f"its {TENANT_COLUMN}")
    statement = _guard_upsert(statement, name)
    if not missing:
        return statement, multiparams, params
    # Machinery rows not naming a tenant (a lease, a heartbeat) are the platform's, whoever
    # the caller acts for: a customer tenant's data never holds them.
    owner = PLATFORM if name in PLATFORM_TABLES else scope
    if literal_rows:
        filled = [{TENANT_COLUMN: owner, **r} for r in literal_rows]
        return _with_rows(statement, filled), multiparams, params
    if multiparams:
        return statement, [{TENANT_COLUMN: owner, **row} for row in multiparams], params
    if params:
        return statement, multiparams, {TENANT_COLUMN: owner, **params}
    return statement.values({TENANT_COLUMN: owner}), multiparams, params


def _with_rows(statement: sa.Insert, rows: list[dict[str, Any]]) -> sa.Insert:
    copy = statement._generate()  # noqa: SLF001 - generative copy, as .values() makes one
    copy._multi_values = (rows,)  # type: ignore[assignment] # noqa: SLF001
    return copy


def _guard_upsert(statement: sa.Insert, name: str) -> sa.Insert:
    """``ON CONFLICT DO UPDATE`` on a tenant table: refuse a ``SET tenant_id``, and update
    only a row of the inserted row's own tenant (a conflict on a key unique across
    tenants, such as an id, must not overwrite another tenant's row; it updates nothing).
    """
    clause = getattr(statement, "_post_values_clause", None)
    if name not in _SCOPED or clause is None or not hasattr(clause, "update_values_to_set"):
        return statement
    cached = _cache.get(statement)
    if cached is not None:
        return cast(sa.Insert, cached)
    if any(_key(k) == TENANT_COLUMN for k in _set_keys(clause.update_values_to_set)):
        raise CrossTenantWrite(f"an upsert into {name} sets {TENANT_COLUMN}: rows never "
                               "move between tenants")
    table = statement.table
    same_tenant = table.c[TENANT_COLUMN] == statement.excluded[TENANT_COLUMN]  # type: ignore[attr-defined]
    guarded = copy.copy(clause)
    guarded.update_whereclause = (same_tenant if clause.update_whereclause is None
                                  else sa.and_(clause.update_whereclause, same_tenant))
    out = statement._generate()  # noqa: SLF001
    out._post_values_clause = guarded  # noqa: SLF001
    _cache[statement] = out
    return out


def _set_keys(values: Any) -> list[Any]:
    return [k for k, _ in values] if isinstance(values, list) else list(values)


def _key(k: Any) -> str:
    return k if isinstance(k, str) else str(getattr(k, "key", k))


def _literal(value: Any, rows: list[Mapping[str, Any]]) -> Any:
    """A literal tenant value, or (for a bind parameter) the one in each executed row."""
    if isinstance(value, sa.BindParameter):
        if value.value is not None:
            return value.value
        got = {row.get(value.key) for row in rows}
        return got.pop() if len(got) == 1 else ",".join(sorted(map(str, got)))
    return value


def _sets_tenant(statement: sa.Update) -> bool:
    # .values() and .ordered_values() both fill _values (the latter keeps its order)
    return any(_key(k) == TENANT_COLUMN for k in (statement._values or {}))  # noqa: SLF001


def _scoped(statement: Any) -> Any:
    """The statement with its tenant criteria: cached per statement object (a prepared
    statement is rewritten once), and per statement *shape* for the statements a
    repository builds on every call: a statement with no nested SELECT (most of them) gets
    the criteria its shape got the first time, added with a shallow ``.where()`` instead
    of a deep clone of the whole tree. Equal SQLAlchemy cache keys mean equal structure
    (same tables, columns and operators; only bound values differ), hence equal criteria.
    """
    cached = _cache.get(statement)
    if cached is not None:
        return cached
    key = statement._generate_cache_key()  # noqa: SLF001 - memoized; execution reuses it
    shape = None if key is None else key.key
    criteria = _shapes.get(shape) if shape is not None else None
    if criteria is not None:
        return statement.where(*criteria) if criteria else statement
    roots: list[Any] = []

    def visit(element: Any) -> None:
        added = _scope_select(element) if isinstance(element, sa.Select) else _scope_dml(element)
        roots.append((element, added))

    scoped = visitors.cloned_traverse(statement, {}, {
        "select": visit, "update": visit, "delete": visit})
    _cache[statement] = scoped
    # Only a statement whose sole scoped element is itself takes the shallow path later.
    if shape is not None and len(roots) == 1 and roots[0][0] is scoped:
        if len(_shapes) >= _MAX_SHAPES:
            _shapes.clear()
        _shapes[shape] = roots[0][1]
    return scoped


def _final_froms(select: sa.Select[Any]) -> Sequence[Any]:
    """``select.get_final_froms()`` without its cost: that public accessor builds the
    default dialect's compiler, which compiles the whole statement (a few ms, once per
    statement object a repository builds) only to hand it to a Core ``SelectState`` that
    never reads it. The same state, built directly (this package uses Core only)."""
    return SelectState(select, cast(Any, None))._get_display_froms()  # noqa: SLF001


def _scope_select(select: sa.Select[Any]) -> tuple[Any, ...]:
    criteria = tuple(t.c[TENANT_COLUMN] == _TENANT_PARAM
                     for f in _final_froms(select) for t in _tenant_froms(f))
    if criteria:
        select._where_criteria += criteria  # noqa: SLF001 - in place, on the traversal's clone
    return criteria


def _scope_dml(statement: sa.Update | sa.Delete) -> tuple[Any, ...]:
    """The target table and every other table the statement reads outside a subquery
    (``UPDATE .. FROM``, ``DELETE .. USING``; subqueries are scoped as selects)."""
    target = statement.table
    read: list[Any] = [target, *getattr(statement, "_extra_froms", ())]
    consider: list[Any] = list(statement._where_criteria)  # noqa: SLF001
    if isinstance(statement, sa.Update):
        consider += [v for v in (statement._values or {}).values()  # noqa: SLF001
                     if isinstance(v, sa.ClauseElement)]
    for crit in consider:
        read += [f for f in crit._from_objects if f not in read]  # noqa: SLF001
    criteria = tuple(t.c[TENANT_COLUMN] == _TENANT_PARAM for f in read for t in _tenant_froms(f))
    statement._where_criteria += criteria  # noqa: SLF001
    return criteria


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
    elif isinstance(from_, (sa.TableClause, sa.TextClause)):
        # table("orders") or text in a FROM: no Table to take the tenant column from.
        raise CrossTenantWrite(f"{from_} in a FROM cannot be scoped to a tenant; use the "
                               "Table from adapters.db.tables")
