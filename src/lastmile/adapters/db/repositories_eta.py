"""The SQL ETA history (``core.eta.history``; tables ``eta_history`` and
``eta_supply_minutes``). Every statement of the placement path is built once."""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from lastmile.adapters.db import tables_eta as t
from lastmile.adapters.db.prepared import WHERE, insert_into, update_where
from lastmile.core.eta.features import EXTRA_COLUMNS, EXTRA_SERIES, EtaFeatures, EtaOutcome
from lastmile.core.eta.history import Finish, HistoryRecord, MinuteCount

Row = dict[str, Any]
OPEN = "open"

_h, _m = t.eta_history.c, t.eta_supply_minutes.c
_MINUTES = sa.select(_m.minute, _m.orders, _m.idle_sum, _m.idle_samples).where(
    _m.region_id == sa.bindparam("region_id"), _m.minute >= sa.bindparam("since"))
_PREP = (sa.select(_h.prep_s)
         .where(_h.merchant_id == sa.bindparam("merchant_id"), _h.finished_at.is_not(None),
                _h.prep_s.is_not(None))
         .order_by(_h.finished_at.desc()).limit(sa.bindparam("limit")))
_OUTCOMES = ("assign_s", "to_merchant_s", "wait_s", "to_consumer_s", "total_s")


@cache
def _count_order(dialect: str) -> sa.Insert:
    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(t.eta_supply_minutes)
    upsert: sa.Insert = stmt.on_conflict_do_update(
        index_elements=[_m.region_id, _m.minute],
        set_={"orders": _m.orders + stmt.excluded.orders,
              "idle_sum": _m.idle_sum + stmt.excluded.idle_sum,
              "idle_samples": _m.idle_samples + stmt.excluded.idle_samples})
    return upsert


def record_row(r: HistoryRecord) -> Row:
    f = r.features
    return {"order_id": r.order_id, "region_id": f.region, "merchant_id": f.merchant_id,
            "channel": r.channel, "placed_at": r.placed_at, "hour": f.hour,
            "weekday": f.weekday, "distance_m": f.distance_m, "travel_s": f.travel_s,
            "prep_mean_s": f.prep_mean_s, "prep_p90_s": f.prep_p90_s,
            "orders_per_min": list(f.orders_per_min), "idle_couriers": list(f.idle_couriers),
            "items": f.items, "subtotal_minor": f.subtotal_minor,
            "placement_state": {**{k: _or_none(getattr(f, k)) for k in EXTRA_COLUMNS},
                                **{k: [_or_none(v) for v in getattr(f, k)]
                                   for k in EXTRA_SERIES}},
            "quoted_low_s": r.quoted_low_s, "quoted_s": r.quoted_s,
            "quoted_high_s": r.quoted_high_s, **finish_row(r.finish)}


def finish_row(f: Finish | None) -> Row:
    o = None if f is None else f.outcome
    return {"status": OPEN if f is None else f.status,
            "finished_at": None if f is None else f.finished_at,
            "cancelled_from": None if f is None else f.cancelled_from,
            "prep_s": None if f is None else f.prep_s,
            **{k: None if o is None else getattr(o, k) for k in _OUTCOMES}}


def features_from(row: Row) -> EtaFeatures:
    return EtaFeatures(
        merchant_id=row["merchant_id"], region=row["region_id"], hour=row["hour"],
        weekday=row["weekday"], distance_m=row["distance_m"], travel_s=row["travel_s"],
        prep_mean_s=row["prep_mean_s"], prep_p90_s=row["prep_p90_s"],
        orders_per_min=tuple(float(x) for x in row["orders_per_min"]),
        idle_couriers=tuple(float(x) for x in row["idle_couriers"]),
        items=row["items"], subtotal_minor=row["subtotal_minor"],
        **_placement_state(row["placement_state"] or {}))


def _placement_state(state: Row) -> dict[str, Any]:
    """The ``placement_state`` JSON as ``EtaFeatures`` fields; a field a record does not
    hold (written before it existed) is left to its default, unknown."""
    out: dict[str, Any] = {k: math.nan if v is None else float(v)
                           for k, v in state.items() if k in EXTRA_COLUMNS}
    out.update({k: tuple(math.nan if x is None else float(x) for x in v)
                for k, v in state.items() if k in EXTRA_SERIES and v is not None})
    return out


def _or_none(v: float) -> float | None:
    """JSON has no NaN: an unknown feature is stored as null."""
    return None if math.isnan(v) else v


def outcome_from(row: Row) -> EtaOutcome | None:
    if any(row[k] is None for k in _OUTCOMES):
        return None
    return EtaOutcome(**{k: float(row[k]) for k in _OUTCOMES})


def record_from(row: Row) -> HistoryRecord:
    finish = None if row["status"] == OPEN else Finish(
        status=row["status"], finished_at=row["finished_at"], prep_s=row["prep_s"],
        outcome=outcome_from(row), cancelled_from=row["cancelled_from"])
    return HistoryRecord(order_id=row["order_id"], channel=row["channel"],
                         placed_at=row["placed_at"], features=features_from(row),
                         quoted_low_s=row["quoted_low_s"], quoted_s=row["quoted_s"],
                         quoted_high_s=row["quoted_high_s"], finish=finish)


def _placed_in(stmt: sa.Select[Any], since: float | None, until: float | None
               ) -> sa.Select[Any]:
    if since is not None:
        stmt = stmt.where(_h.placed_at >= since)
    if until is not None:
        stmt = stmt.where(_h.placed_at < until)
    return stmt.order_by(_h.placed_at, _h.order_id)


class SqlEtaHistory:
    def __init__(self, conn: Connection):
        self.conn = conn

    def supply_minutes(self, region_id: str, *, since_minute: int) -> list[MinuteCount]:
        rows = self.conn.execute(_MINUTES, {"region_id": region_id, "since": since_minute})
        return [MinuteCount._make(r) for r in rows]

    def count_order(self, region_id: str, *, minute: int, idle_couriers: int) -> None:
        self.conn.execute(_count_order(self.conn.dialect.name), {
            "region_id": region_id, "minute": minute, "orders": 1,
            "idle_sum": float(idle_couriers), "idle_samples": 1})

    def prep_samples(self, merchant_id: str, *, limit: int) -> list[float]:
        rows = self.conn.execute(_PREP, {"merchant_id": merchant_id, "limit": limit})
        return [float(r[0]) for r in rows]

    def add(self, record: HistoryRecord) -> None:
        self.conn.execute(insert_into(t.eta_history), record_row(record))

    def finish(self, order_id: str, finish: Finish) -> bool:
        result = self.conn.execute(update_where(t.eta_history, "order_id", "status"), {
            **finish_row(finish), WHERE + "order_id": order_id, WHERE + "status": OPEN})
        return result.rowcount == 1

    def records(self, *, since: float | None = None, until: float | None = None,
                finished_only: bool = True) -> list[HistoryRecord]:
        stmt = sa.select(t.eta_history)
        if finished_only:
            stmt = stmt.where(_h.status != OPEN)
        rows = self.conn.execute(_placed_in(stmt, since, until)).mappings()
        return [record_from(dict(r)) for r in rows]

    def training_set(self, *, since: float | None = None, until: float | None = None
                     ) -> tuple[list[EtaFeatures], list[EtaOutcome]]:
        stmt = sa.select(t.eta_history).where(
            _h.status == "delivered", *(_h[k].is_not(None) for k in _OUTCOMES))
        features, outcomes = [], []
        for r in self.conn.execute(_placed_in(stmt, since, until)).mappings():
            row = dict(r)
            outcome = outcome_from(row)
            assert outcome is not None  # the query keeps complete rows only
            features.append(features_from(row))
            outcomes.append(outcome)
        return features, outcomes
