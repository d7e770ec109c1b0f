"""How lastmile's events look on NATS: subjects, names, payload and headers.

Kept apart from the bus (``adapters.bus.jetstream``) so the subject scheme reads in one
place; docs/eventlog.md describes it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from nats.aio.msg import Msg

from lastmile.app.events import Event

MSG_ID = "Nats-Msg-Id"
SEQ = "Lastmile-Seq"  # the outbox seq: dead letters keep it, as in the in-process relay
_OWN_HEADERS = (MSG_ID.lower(), SEQ.lower())
_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def subject_token(raw: str) -> str:
    """``raw`` as one subject token (or consumer name): ``[A-Za-z0-9_-]`` kept, every other
    byte as ``~XX`` (so ``reg.1`` and ``reg_1`` stay apart, and no ``.``/``*``/``>`` reaches
    a subject). Not ``%``: nats-server 2.9 formats consumer names into its ack subjects
    printf-style, and a ``%`` there garbles the delivery metadata."""
    if not raw:
        return "~"
    return "".join(ch if ch in _SAFE else "".join(f"~{b:02X}" for b in ch.encode())
                   for ch in raw)


def type_tokens(event_type: str) -> str:
    """An event type's subject tokens: ``order.placed`` -> ``order.placed`` (each part safe)."""
    return ".".join(subject_token(part) for part in event_type.split("."))


@dataclass(frozen=True, slots=True, kw_only=True)
class JetStreamConfig:
    """Where and how the bus talks to NATS. ``duplicate_window_s``: see docs/eventlog.md
    (it covers a relay's crash between PubAck and its commit, and the takeover by another
    relay; a republish after that is still dropped by the consumers' inbox)."""

    url: str
    stream: str = "LASTMILE"
    prefix: str = "lastmile"
    duplicate_window_s: float = 120.0
    max_age_s: float = 7 * 24 * 3600.0  # how long the log keeps events for replay/new readers
    op_timeout_s: float = 5.0
    connect_timeout_s: float = 2.0
    reconnect_wait_s: float = 0.5
    fetch_batch: int = 100
    fetch_wait_s: float = 1.0
    ack_wait_s: float = 30.0

    def __post_init__(self) -> None:
        for part in self.prefix.split("."):
            if not part or subject_token(part) != part:
                raise ValueError(f"NATS subject prefix must be dot-separated [A-Za-z0-9_-] "
                                 f"tokens (got {self.prefix!r})")
        if not self.stream or subject_token(self.stream) != self.stream:
            raise ValueError(f"stream name must be [A-Za-z0-9_-] (got {self.stream!r})")

    def event_subject(self, event: Event) -> str:
        return f"{self.prefix}.ev.{subject_token(event.region_id)}.{type_tokens(event.type)}"

    def live_subject(self, event: Event) -> str:
        return f"{self.prefix}.live.{subject_token(event.region_id)}.{type_tokens(event.type)}"

    def filter_subject(self, event_type: str) -> str:
        """A durable consumer's filter: every region, one type; every type for ``*`` and for
        several types (``events.type_filter``): one consumer has one filter subject before
        NATS 2.10 (``filter_subjects``; the CI's server is 2.9), so the bus drops the other
        types before the handler (``JetStreamBus``)."""
        if event_type == "*" or "," in event_type:
            return f"{self.prefix}.ev.>"
        return f"{self.prefix}.ev.*.{type_tokens(event_type)}"

    def replay_subject(self, subscriber: str) -> str:
        return f"{self.prefix}.replay.{subject_token(subscriber)}"

    def stream_subjects(self) -> list[str]:
        return [f"{self.prefix}.ev.>", f"{self.prefix}.replay.>"]


def encode(event: Event, *, msg_id: str, seq: int | None = None) -> tuple[bytes, dict[str, str]]:
    headers = dict(event.headers)
    headers[MSG_ID] = msg_id
    if seq is not None:
        headers[SEQ] = str(seq)
    return json.dumps(event.to_dict(), separators=(",", ":")).encode(), headers


def decode(msg: Msg) -> tuple[Event, int | None]:
    """The event and its outbox seq (None on live-only messages); transport headers other
    than ours overlay the envelope's, so a header added on the way is seen by handlers."""
    event = Event.from_dict(json.loads(msg.data))
    raw = msg.headers or {}
    extra = {k: v for k, v in raw.items()
             if k.lower() not in _OWN_HEADERS and not k.lower().startswith("nats-")}
    if extra:
        event = Event.from_dict({**event.to_dict(), "headers": {**event.headers, **extra}})
    seq = raw.get(SEQ)
    return event, int(seq) if seq else None
