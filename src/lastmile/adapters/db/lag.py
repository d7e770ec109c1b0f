"""How far each durable consumer is behind, read from the relay's tables at scrape time.

The backlog of a subscriber is its rows in ``event_deliveries`` (deleted once delivered,
moved to dead letters once parked), so counting them is cheap and exact; the age of an
event is measured from its outbox ``created_at`` (the moment it was recorded), on the
platform clock, so a consumer's lag is "how old is the oldest event it still owes".
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lastmile.adapters.db import tables as t


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerLag:
    consumer: str
    pending: int  # queued deliveries, due or waiting for a retry
    due: int  # of those, due now (not waiting out a backoff)
    retrying: int  # of those, failed at least once
    oldest_due_age_s: float  # age of the oldest due event; 0 when none is due


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxLag:
    unsent: int  # recorded events not fanned out to the subscribers' queues yet
    oldest_unsent_age_s: float  # 0 when none


def consumer_lag(conn: Connection, now: float) -> list[ConsumerLag]:
    """Every registered subscriber, with zeros when it owes nothing (so a gauge falls back
    to 0 instead of vanishing)."""
    d, o = t.event_deliveries.c, t.outbox.c
    is_due = d.next_attempt_at <= now
    rows = {r.subscriber: r for r in conn.execute(
        sa.select(d.subscriber, sa.func.count().label("pending"),
                  sa.func.count(sa.case((is_due, 1))).label("due"),
                  sa.func.count(sa.case((d.attempts > 0, 1))).label("retrying"),
                  sa.func.min(sa.case((is_due, o.created_at))).label("oldest_due"))
        .select_from(t.event_deliveries.join(t.outbox, o.seq == d.seq))
        .group_by(d.subscriber))}
    names = set(conn.execute(sa.select(t.event_subscribers.c.name)).scalars()) | set(rows)
    lags = []
    for name in sorted(names):
        r = rows.get(name)
        oldest = r.oldest_due if r is not None else None
        lags.append(ConsumerLag(
            consumer=name, pending=r.pending if r else 0, due=r.due if r else 0,
            retrying=r.retrying if r else 0,
            oldest_due_age_s=max(0.0, now - oldest) if oldest is not None else 0.0))
    return lags


def outbox_lag(conn: Connection, now: float) -> OutboxLag:
    o = t.outbox.c
    count, oldest = conn.execute(sa.select(sa.func.count(), sa.func.min(o.created_at))
                                 .where(o.sent_at.is_(None))).one()
    return OutboxLag(unsent=int(count),
                     oldest_unsent_age_s=max(0.0, now - oldest) if oldest is not None else 0.0)
