"""The relay's storage: durable subscribers, their queues of outbox events, dead letters.

One queue row per (subscriber, outbox seq) while the event waits for that subscriber; it is
deleted once delivered and moved to ``dead_letters`` once its attempts are exhausted, so the
table holds only the backlog. Claims follow the lease idea of the Drive senders
(``repositories_drive._claim``): rows are selected ``FOR UPDATE SKIP LOCKED`` on PostgreSQL
(SQLite has one writer at a time and ignores the clause) and stamped with the claiming
relay and a lease end; every settlement is fenced on ``claimed_by``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lastmile.adapters.db import tables as t
from lastmile.app.events import Event, filter_types
from lastmile.app.ports import DeadLetter, OutboxEntry, QueuedEvent, SubscriberState

_ERROR_CHARS = 2000  # enough for an exception line and its cause; a dump would bloat the row


class SqlEventDeliveries:
    def __init__(self, conn: Connection):
        self.conn = conn

    def register(self, name: str, event_type: str, at: float) -> None:
        c = t.event_subscribers.c
        refresh = (t.event_subscribers.update().where(c.name == name)
                   .values(event_type=event_type, last_seen_at=at))
        if self.conn.execute(refresh).rowcount:
            return
        try:
            with self.conn.begin_nested():  # two relays may register the same name at once
                self.conn.execute(t.event_subscribers.insert().values(
                    name=name, event_type=event_type, registered_at=at, last_seen_at=at))
        except sa.exc.IntegrityError:
            self.conn.execute(refresh)

    def fan_out(self, limit: int, at: float) -> list[OutboxEntry]:
        o = t.outbox.c
        rows = list(self.conn.execute(
            sa.select(o.seq, o.payload).where(o.sent_at.is_(None)).order_by(o.seq).limit(limit)
            .with_for_update(skip_locked=True)))
        if not rows:
            return []
        # Cut at the first unsent row another relay holds: empty when it holds the head, and
        # two claims interleaving row by row (15 17 | 16) never fan out 17 before 16.
        head = [seq for (seq,) in self.conn.execute(
            sa.select(o.seq).where(o.sent_at.is_(None)).order_by(o.seq).limit(limit))]
        cut = next((i for i, (row, seq) in enumerate(zip(rows, head, strict=False))
                    if row.seq != seq), min(len(rows), len(head)))
        if not cut:
            return []  # another relay is fanning out older rows: queue behind them, in order
        entries = [OutboxEntry(seq=seq, event=Event.from_dict(payload))
                   for seq, payload in rows[:cut]]
        # Each subscriber is queued only the types it named (``events.type_filter``).
        subscribers = [(name, filter_types(spec)) for name, spec in self.conn.execute(
            sa.select(t.event_subscribers.c.name, t.event_subscribers.c.event_type))]
        queued = [dict(subscriber=name, seq=e.seq, subject_id=e.event.subject_id, attempts=0,
                       next_attempt_at=at, tenant_id=e.event.tenant)
                  for e in entries for name, types in subscribers
                  if types is None or e.event.type in types]
        if queued:
            self.conn.execute(t.event_deliveries.insert(), queued)
        self.conn.execute(t.outbox.update().where(o.seq.in_([e.seq for e in entries]))
                          .values(sent_at=at))
        return entries

    def has_due(self, subscriber: str, now: float) -> bool:
        d = t.event_deliveries.c
        return self.conn.execute(sa.select(d.seq).where(
            d.subscriber == subscriber, d.next_attempt_at <= now,
            sa.or_(d.lease_until.is_(None), d.lease_until <= now)).limit(1)).first() is not None

    def claim(self, subscriber: str, *, relay_id: str, now: float, lease_s: float,
              limit: int) -> list[QueuedEvent]:
        d = t.event_deliveries.c
        earlier = t.event_deliveries.alias("earlier")
        waiting = sa.exists().where(  # an earlier event of the subject is retrying or leased
            earlier.c.subscriber == d.subscriber, earlier.c.subject_id == d.subject_id,
            earlier.c.seq < d.seq,
            sa.or_(earlier.c.next_attempt_at > now, earlier.c.lease_until > now))
        due = sa.select(d.seq, d.subject_id, d.attempts, d.first_failed_at).where(
            d.subscriber == subscriber, d.next_attempt_at <= now,
            sa.or_(d.lease_until.is_(None), d.lease_until <= now), ~waiting,
        ).order_by(d.seq).limit(limit).with_for_update(skip_locked=True)
        rows = {r.seq: r for r in self.conn.execute(due)}
        if not rows:
            return []
        heads = self._subject_heads(subscriber, rows.values())
        if not heads:
            return []
        self.conn.execute(t.event_deliveries.update().where(
            d.subscriber == subscriber, d.seq.in_(heads),
        ).values(claimed_by=relay_id, lease_until=now + lease_s))
        payloads = {seq: payload for seq, payload in self.conn.execute(
            sa.select(t.outbox.c.seq, t.outbox.c.payload).where(t.outbox.c.seq.in_(heads)))}
        return [QueuedEvent(subscriber=subscriber, seq=seq, event=Event.from_dict(payloads[seq]),
                            attempts=rows[seq].attempts, first_failed_at=rows[seq].first_failed_at)
                for seq in sorted(heads)]

    def _subject_heads(self, subscriber: str, due: Iterable[Any]) -> list[int]:
        """Per subject, the due prefix of its queue. The claim query already left out rows
        behind a retrying or leased one (so a long blocked subject cannot fill every batch);
        this catches rows another relay is claiming right now (skipped, not yet stamped)."""
        due = list(due)
        claimed = {r.seq for r in due}
        d = t.event_deliveries.c
        queue = self.conn.execute(sa.select(d.subject_id, d.seq).where(
            d.subscriber == subscriber, d.subject_id.in_({r.subject_id for r in due}),
            d.seq <= max(claimed)).order_by(d.seq))
        blocked: set[str] = set()
        heads: list[int] = []
        for subject_id, seq in queue:
            if subject_id in blocked:
                continue
            if seq in claimed:
                heads.append(seq)
            else:
                blocked.add(subject_id)
        return heads

    def _mine(self, subscriber: str, seqs: Sequence[int], relay_id: str) -> Any:
        d = t.event_deliveries.c
        return sa.and_(d.subscriber == subscriber, d.seq.in_(list(seqs)),
                       d.claimed_by == relay_id)

    def delivered(self, subscriber: str, seqs: Sequence[int], *, relay_id: str) -> int:
        if not seqs:
            return 0
        stmt = t.event_deliveries.delete().where(self._mine(subscriber, seqs, relay_id))
        return int(self.conn.execute(stmt).rowcount)

    def retry(self, q: QueuedEvent, *, relay_id: str, error: str, at: float,
              next_attempt_at: float) -> bool:
        stmt = t.event_deliveries.update().where(self._mine(q.subscriber, [q.seq], relay_id)).values(
            attempts=q.attempts + 1, next_attempt_at=next_attempt_at, claimed_by=None,
            lease_until=None, last_error=error[:_ERROR_CHARS],
            first_failed_at=q.first_failed_at if q.first_failed_at is not None else at)
        return bool(self.conn.execute(stmt).rowcount)

    def park(self, q: QueuedEvent, *, relay_id: str, error: str, at: float,
             dead_letter_id: str) -> bool:
        gone = self.conn.execute(
            t.event_deliveries.delete().where(self._mine(q.subscriber, [q.seq], relay_id)))
        if not gone.rowcount:
            return False
        self.park_event(subscriber=q.subscriber, seq=q.seq, event=q.event,
                        attempts=q.attempts + 1, error=error, at=at,
                        first_failed_at=q.first_failed_at if q.first_failed_at is not None
                        else at, dead_letter_id=dead_letter_id)
        return True

    def park_event(self, *, subscriber: str, seq: int, event: Event, attempts: int, error: str,
                   at: float, first_failed_at: float, dead_letter_id: str) -> None:
        c = t.dead_letters.c
        parked = dict(attempts=attempts, last_error=error[:_ERROR_CHARS], parked_at=at,
                      replayed_at=None)
        reopened = self.conn.execute(t.dead_letters.update().where(
            c.subscriber == subscriber, c.seq == seq).values(**parked))
        if not reopened.rowcount:
            self.conn.execute(t.dead_letters.insert().values(
                tenant_id=event.tenant, id=dead_letter_id, subscriber=subscriber, seq=seq, event_id=event.event_id,
                event_type=event.type, payload=event.to_dict(), first_failed_at=first_failed_at,
                replays=0, **parked))

    def release(self, subscriber: str, seqs: Sequence[int], *, relay_id: str) -> None:
        if seqs:
            self.conn.execute(t.event_deliveries.update().where(
                self._mine(subscriber, seqs, relay_id)).values(claimed_by=None, lease_until=None))

    def subscribers(self) -> list[SubscriberState]:
        d, s, dl = t.event_deliveries.c, t.event_subscribers.c, t.dead_letters.c
        queues = {r.subscriber: r for r in self.conn.execute(
            sa.select(d.subscriber, sa.func.count().label("pending"),
                      sa.func.count(sa.case((d.attempts > 0, 1))).label("retrying"),
                      sa.func.min(d.seq).label("oldest")).group_by(d.subscriber))}
        parked = {name: n for name, n in self.conn.execute(
            sa.select(dl.subscriber, sa.func.count()).where(dl.replayed_at.is_(None))
            .group_by(dl.subscriber))}
        fanned = self.conn.execute(sa.select(sa.func.max(t.outbox.c.seq))
                                   .where(t.outbox.c.sent_at.is_not(None))).scalar_one() or 0
        states = []
        for name, event_type, registered_at in self.conn.execute(
                sa.select(s.name, s.event_type, s.registered_at).order_by(s.name)):
            q = queues.get(name)
            states.append(SubscriberState(
                name=name, event_type=event_type, registered_at=registered_at,
                position=q.oldest - 1 if q else fanned, pending=q.pending if q else 0,
                retrying=q.retrying if q else 0, parked=int(parked.get(name, 0))))
        return states

    def dead_letters(self, *, subscriber: str | None = None, include_replayed: bool = False,
                     limit: int = 100) -> list[DeadLetter]:
        c = t.dead_letters.c
        stmt = sa.select(t.dead_letters).order_by(c.parked_at, c.id).limit(limit)
        if subscriber is not None:
            stmt = stmt.where(c.subscriber == subscriber)
        if not include_replayed:
            stmt = stmt.where(c.replayed_at.is_(None))
        return [_dead_letter(dict(r)) for r in self.conn.execute(stmt).mappings()]

    def dead_letter(self, dead_letter_id: str) -> DeadLetter | None:
        row = self.conn.execute(sa.select(t.dead_letters)
                                .where(t.dead_letters.c.id == dead_letter_id)).mappings().first()
        return _dead_letter(dict(row)) if row is not None else None

    def replay(self, dead_letter_id: str, at: float) -> bool:
        c = t.dead_letters.c
        row = self.conn.execute(sa.select(c.subscriber, c.seq, c.payload, c.replayed_at)
                                .where(c.id == dead_letter_id).with_for_update()).first()
        if row is None or row.replayed_at is not None:
            return False
        self.conn.execute(t.event_deliveries.insert().values(
            subscriber=row.subscriber, seq=row.seq,
            subject_id=Event.from_dict(row.payload).subject_id, attempts=0, next_attempt_at=at))
        return self.mark_replayed(dead_letter_id, at)

    def mark_replayed(self, dead_letter_id: str, at: float) -> bool:
        c = t.dead_letters.c
        done = self.conn.execute(t.dead_letters.update().where(
            c.id == dead_letter_id, c.replayed_at.is_(None)).values(
                replayed_at=at, replays=c.replays + 1))
        return bool(done.rowcount)


def _dead_letter(row: dict[str, Any]) -> DeadLetter:
    return DeadLetter(
        id=row["id"], subscriber=row["subscriber"], seq=row["seq"],
        event=Event.from_dict(row["payload"]), attempts=row["attempts"],
        last_error=row["last_error"], first_failed_at=row["first_failed_at"],
        parked_at=row["parked_at"], replayed_at=row["replayed_at"], replays=row["replays"])
