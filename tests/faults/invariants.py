"""What must hold in the database after any fault, checked against the rows themselves.

``violations(url, acknowledged)`` reads one database and returns every broken rule by name
(an empty dict when all hold), so a failing test says what broke and for which ids:

- ``lost_orders``: an order answered 201 is missing;
- ``assigned_twice``: an order's event history assigns it to a second courier while the
  first still holds it (no ``order.unassigned``, delivery or cancellation in between);
- ``held_not_listed`` / ``listed_not_held``: ``orders.courier_id`` and the courier's
  ``active_order_ids`` disagree (a lost update); ``listed_by_two``: two couriers list one
  order;
- ``two_pending_offers``: a courier holds two pending offers; ``order_in_two_offers``: an
  order sits in two pending offers;
- ``effects_twice``: an event's effect recorded twice (inbox rows per consumer and event,
  webhook messages per endpoint and event, notifications per event, recipient and channel,
  events per event id);
- ``outbox_not_drained``: outbox rows never fanned out, or deliveries still queued
  (``wait_drained`` waits for these, bounded).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

HELD = ("assigned", "at_pickup", "picked_up", "at_dropoff")
RELEASES = {"order.unassigned", "order.delivered", "order.cancelled"}


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _rows(conn: sa.Connection, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in conn.execute(sa.text(sql))]


def assigned_twice(events: Iterable[tuple[str, str, dict[str, Any]]]) -> list[str]:
    """Orders whose history (``(order id, type, data)`` in log order) hands them to a second
    courier while a first still holds them."""
    holder: dict[str, str | None] = {}
    bad: list[str] = []
    for order_id, kind, data in events:
        if kind == "order.assigned":
            current = holder.get(order_id)
            if current is not None and current != data.get("courier_id"):
                bad.append(order_id)
            holder[order_id] = data.get("courier_id")
        elif kind in RELEASES:
            holder[order_id] = None
    return bad


def duplicated_effects(conn: sa.Connection) -> dict[str, list[Any]]:
    checks = {
        "inbox": "select consumer, event_id from inbox group by 1, 2 having count(*) > 1",
        "webhook_messages": "select endpoint_id, event_id from webhook_messages "
                            "group by 1, 2 having count(*) > 1",
        "notifications": "select event_id, recipient_kind, channel from notifications "
                         "group by 1, 2, 3 having count(*) > 1",
        "events": "select event_id from events group by 1 having count(*) > 1",
    }
    found = {name: _rows(conn, sql) for name, sql in checks.items()}
    return {name: rows for name, rows in found.items() if rows}


def undrained(conn: sa.Connection) -> dict[str, int]:
    unsent = _rows(conn, "select count(*) from outbox where sent_at is null")[0][0]
    queued = _rows(conn, "select count(*) from event_deliveries")[0][0]
    return {k: v for k, v in (("outbox_unsent", unsent), ("deliveries_queued", queued)) if v}


def violations(url: str, acknowledged: Iterable[str]) -> dict[str, Any]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            found = _check(conn, set(acknowledged))
    finally:
        engine.dispose()
    return {k: v for k, v in found.items() if v}


def _check(conn: sa.Connection, acknowledged: set[str]) -> dict[str, Any]:
    orders = _rows(conn, "select id, courier_id, status from orders")
    present = {o[0] for o in orders}
    couriers = [(cid, _json(ids)) for cid, ids in
                _rows(conn, "select id, active_order_ids from couriers")]
    held = {oid: cid for oid, cid, status in orders if status in HELD and cid is not None}
    listed = [(cid, oid) for cid, ids in couriers for oid in ids]
    listers: dict[str, set[str]] = defaultdict(set)
    for cid, oid in listed:
        listers[oid].add(cid)
    history = [(subject, kind, _json(data)) for subject, kind, data in _rows(
        conn, "select subject_id, type, data from events where type like 'order.%' "
        "order by seq")]
    return {
        "lost_orders": sorted(acknowledged - present),
        "assigned_twice": assigned_twice(history),
        "held_not_listed": sorted(oid for oid, cid in held.items() if (cid, oid) not in
                                  set(listed)),
        "listed_not_held": sorted(oid for cid, oid in listed if held.get(oid) != cid),
        "listed_by_two": sorted(oid for oid, who in listers.items() if len(who) > 1),
        "two_pending_offers": _rows(conn, "select courier_id from offers where status = "
                                    "'pending' group by 1 having count(*) > 1"),
        "order_in_two_offers": _rows(conn, "select o.order_id from offer_orders o join offers "
                                     "f on f.id = o.offer_id where f.status = 'pending' "
                                     "group by 1 having count(*) > 1"),
        "effects_twice": duplicated_effects(conn),
        "outbox_not_drained": undrained(conn),
    }


def wait_drained(url: str, within_s: float) -> dict[str, int]:
    """Poll until the outbox is fanned out and every delivery done; what is left once
    ``within_s`` passed with the backlog unchanged (empty when drained).

    A stuck outbox (what these tests catch) makes no progress and fails after ``within_s``;
    one that drains slowly because the machine is loaded (the suite on parallel workers) is
    given the time it keeps making progress in (the test's pytest timeout still bounds it).
    """
    engine = sa.create_engine(url)
    try:
        deadline, last = time.monotonic() + within_s, None
        while True:
            with engine.connect() as conn:
                left = undrained(conn)
            if not left:
                return left
            if left != last:  # events fanned out or deliveries done since the last look
                deadline, last = time.monotonic() + within_s, left
            elif time.monotonic() > deadline:
                return left
            time.sleep(0.5)
    finally:
        engine.dispose()
