"""The event envelope every published event travels in.

Events carry ``event_id``, ``occurred_at`` and ``schema_version``; new fields
get defaults so old consumers keep working.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lastmile.app import tenancy
from lastmile.core.lifecycle import Transition
from lastmile.core.tenancy import DEFAULT_TENANT

SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    event_id: str
    type: str
    occurred_at: float
    region_id: str
    subject_id: str  # the order, courier or merchant the event is about
    actor_kind: str
    actor_id: str
    data: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION
    # Context that travels with the event but is not about the subject: its tenant
    # (``tenant``, stamped from the context the event is made in) and trace context (W3C
    # ``traceparent``). Carried as message headers on a durable log.
    headers: dict[str, str] = field(default_factory=tenancy.event_headers)

    @property
    def tenant(self) -> str:
        """The tenant the event belongs to; a consumer acts as it (``tenancy.acting_for``)."""
        return self.headers.get(tenancy.HEADER, DEFAULT_TENANT)

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "type": self.type,
            "occurred_at": self.occurred_at,
            "region_id": self.region_id,
            "subject_id": self.subject_id,
            "actor_kind": self.actor_kind,
            "actor_id": self.actor_id,
            "data": self.data,
            "schema_version": self.schema_version,
            "headers": self.headers,
        }

    @staticmethod
    def from_dict(raw: dict[str, Any]) -> Event:
        return Event(
            event_id=raw["event_id"],
            type=raw["type"],
            occurred_at=float(raw["occurred_at"]),
            region_id=raw["region_id"],
            subject_id=raw["subject_id"],
            actor_kind=raw["actor_kind"],
            actor_id=raw["actor_id"],
            data=dict(raw.get("data") or {}),
            schema_version=int(raw.get("schema_version", SCHEMA_VERSION)),
            headers={str(k): str(v) for k, v in (raw.get("headers") or {}).items()},
        )


def event_from_transition(event_id: str, region_id: str, t: Transition) -> Event:
    data = dict(t.data)
    data.update(from_status=t.from_status.value, to_status=t.to_status.value, version=t.version)
    return Event(
        event_id=event_id,
        type=t.type,
        occurred_at=t.at,
        region_id=region_id,
        subject_id=t.order_id,
        actor_kind=t.actor.kind.value,
        actor_id=t.actor.id,
        data=data,
    )


ALL_TYPES = "*"
_TYPE_SEPARATOR = ","
MAX_TYPE_FILTER_CHARS = 1000  # the width of event_subscribers.event_type (migration 0021)


def type_filter(types: str | Iterable[str]) -> str:
    """The event types a subscriber receives, as the one string a bus keeps and the relay
    stores (``event_subscribers.event_type``): ``*`` for every type, one type, or several
    types sorted and comma-joined (``order.delivered,order.placed``). A subscriber naming
    the few types it uses is not queued every other event of the platform."""
    names = [types] if isinstance(types, str) else sorted(set(types))
    if not names:
        raise ValueError("a subscription needs at least one event type (or '*')")
    if ALL_TYPES in names:
        return ALL_TYPES
    for name in names:
        if not name or name != name.strip() or _TYPE_SEPARATOR in name:
            raise ValueError(f"event type {name!r} must be non-empty, without spaces at its "
                             f"ends and without {_TYPE_SEPARATOR!r}")
    spec = _TYPE_SEPARATOR.join(names)
    if len(spec) > MAX_TYPE_FILTER_CHARS:
        raise ValueError(f"event types {spec!r} take {len(spec)} characters; at most "
                         f"{MAX_TYPE_FILTER_CHARS} fit")
    return spec


def filter_types(spec: str) -> frozenset[str] | None:
    """The types of a ``type_filter`` string; None for ``*`` (every type)."""
    return None if spec == ALL_TYPES else frozenset(spec.split(_TYPE_SEPARATOR))


def matches(spec: str, event_type: str) -> bool:
    """Whether a subscriber of ``spec`` (a ``type_filter`` string) receives ``event_type``."""
    if spec == ALL_TYPES:
        return True
    if _TYPE_SEPARATOR in spec:
        return event_type in spec.split(_TYPE_SEPARATOR)
    return spec == event_type
