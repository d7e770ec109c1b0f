"""Webhooks: signatures, retry schedule, event filters and the records they live in.

Signature scheme (documented for receivers in ``docs/drive.md``): the header
``X-Lastmile-Signature: t=<unix seconds>,v1=<hex>`` where ``hex`` is
HMAC-SHA256(secret, f"{t}.{body}") over the exact raw body bytes. Receivers
check the HMAC with a constant-time comparison, reject timestamps older than
a tolerance (replay protection) and deduplicate by the payload's ``event_id``:
a retried delivery carries the same ``event_id`` and body, with a fresh
timestamp and signature.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from lastmile.core.errors import InvalidInput
from lastmile.core.tenancy import DEFAULT_TENANT

SIGNATURE_HEADER = "X-Lastmile-Signature"
EVENT_ID_HEADER = "X-Lastmile-Event-Id"
DEFAULT_TOLERANCE_S = 300


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``b"<timestamp>." + body`` under ``secret``."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={sign(secret, timestamp, body)}"


def verify(secret: str, header: str, body: bytes, *, now: float,
           tolerance_s: int = DEFAULT_TOLERANCE_S) -> bool:
    """True when ``header`` signs ``body`` under ``secret`` within ``tolerance_s`` of ``now``.

    Any ``v1`` entry may match (several are sent while a secret rotates); a
    malformed header is simply not valid.
    """
    timestamp: int | None = None
    candidates: list[bytes] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        # We only ever send ASCII decimal seconds and lowercase hex; anything else (Unicode
        # digits, a 400-digit number, non-ASCII bytes) is not ours and must not raise.
        if key == "t" and value.isascii() and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif key == "v1" and value:
            candidates.append(value.encode("utf-8", "surrogateescape"))
    if timestamp is None or not candidates or abs(now - timestamp) > tolerance_s:
        return False
    expected = sign(secret, timestamp, body).encode()
    # compare_digest on bytes: on str it raises TypeError for non-ASCII input.
    return any(hmac.compare_digest(expected, c) for c in candidates)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff: ``base_s * 2^(attempt-1)``, capped; dead after ``max_attempts``."""

    base_s: float = 10.0
    cap_s: float = 6 * 3600.0
    max_attempts: int = 8

    def __post_init__(self) -> None:
        if self.base_s <= 0 or self.cap_s < self.base_s or self.max_attempts < 1:
            raise InvalidInput("invalid_retry_policy",
                               "retry policy needs base_s > 0, cap_s >= base_s, max_attempts >= 1")


def backoff_s(attempts: int, policy: RetryPolicy) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt (1-based); never above the cap."""
    if attempts < 1:
        raise InvalidInput("invalid_attempt", f"attempts must be >= 1 (got {attempts})")
    # The exponent is capped so a huge attempt count still returns the cap (no float overflow).
    factor: int = 2 ** min(attempts - 1, 62)
    return min(policy.cap_s, policy.base_s * factor)


def backoff_schedule(policy: RetryPolicy) -> tuple[float, ...]:
    """Waits between consecutive attempts: ``max_attempts - 1`` values."""
    return tuple(backoff_s(n, policy) for n in range(1, policy.max_attempts))


class MessageStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"  # gave up after max_attempts: the dead letter, visible and re-queueable


def after_failure(attempts: int, now: float, policy: RetryPolicy) -> tuple[MessageStatus, float | None]:
    """Status and next attempt time after the ``attempts``-th attempt failed."""
    if attempts >= policy.max_attempts:
        return MessageStatus.DEAD, None
    return MessageStatus.PENDING, now + backoff_s(attempts, policy)


# Webhook event types a business may subscribe to.
STATUS_EVENTS = (
    "delivery.created", "delivery.confirmed", "delivery.ready", "delivery.assigned",
    "delivery.courier_at_pickup", "delivery.picked_up", "delivery.courier_at_dropoff",
    "delivery.delivered", "delivery.cancelled", "delivery.unassigned", "delivery.updated",
    "delivery.undeliverable",
)
THRESHOLD_EVENTS = ("delivery.eta_under", "delivery.courier_nearby", "delivery.delayed")
EVENT_TYPES = STATUS_EVENTS + THRESHOLD_EVENTS


def validate_filter(event_types: tuple[str, ...]) -> tuple[str, ...]:
    """Known event types (``*`` or empty means all); sorted and deduplicated."""
    unknown = sorted(set(event_types) - set(EVENT_TYPES) - {"*"})
    if unknown:
        raise InvalidInput("unknown_event_type",
                           f"unknown event types {unknown}; known: {', '.join(EVENT_TYPES)}",
                           field="event_types")
    return tuple(sorted(set(event_types)))


def wants(event_types: tuple[str, ...], event_type: str) -> bool:
    return not event_types or "*" in event_types or event_type in event_types


def is_public_address(address: str) -> bool:
    """True for a globally routable unicast IP address (the only kind webhooks may reach).

    Refused: loopback, private (RFC 1918, fc00::/7), link-local (169.254/16, the
    cloud metadata service; fe80::/10), CGNAT (100.64/10), unspecified,
    reserved, documentation and multicast ranges. An IPv4-mapped IPv6 address
    (``::ffff:127.0.0.1``) is judged as the IPv4 address it carries; an IPv6
    zone (``%eth0``) is ignored.
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


# Names that always mean this machine (RFC 6761 reserves "localhost" and its subdomains).
_LOCAL_NAMES = re.compile(r"^(.+\.)?localhost\.?$")
# Every label a number: C resolvers read "2130706433", "0x7f.1" and "0177.0.0.1" as IPv4.
_NUMERIC_HOST = re.compile(r"^((0x[0-9a-f]*|[0-9]+)\.?)+$")


def _private_host(host: str) -> str | None:
    """Why ``host`` (as urlsplit lowercases it) is not a public destination, or None."""
    if _LOCAL_NAMES.match(host):
        return "names this machine (localhost)"
    try:
        public = is_public_address(host)
    except ValueError:  # a name, not an address literal
        if _NUMERIC_HOST.match(host):
            return "is a numeric host that is not a dotted-quad IPv4 address"
        return None
    return None if public else "is a loopback, private, link-local or reserved address"


def validate_url(url: str, *, allow_private: bool = False) -> str:
    """An absolute http(s) URL with a host; no credentials, fragment, whitespace or controls.

    Credentials in the URL would be shown by the endpoint listing and end up in
    error messages; whitespace and control characters could split the request
    line. Unless ``allow_private`` (``LASTMILE_WEBHOOKS_ALLOW_PRIVATE``), a host
    that is an IP literal outside the public unicast space, a numeric host in a
    non-canonical form, or ``localhost`` is refused here (code ``private_url``).
    Host names are not resolved here (no I/O in the core, and DNS can change
    after registration): the transport checks every resolved address again at
    each send, and connects to the address it checked.
    """
    def bad(rule: str) -> InvalidInput:
        return InvalidInput("invalid_url", f"url {rule} (got {url[:80]!r})", field="url")

    if len(url) > 2000:
        raise bad("must be at most 2000 characters")
    if not url.isascii() or any(ch.isspace() or not ch.isprintable() for ch in url):
        raise bad("must be ASCII without spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError when not a number in 0..65535
    except ValueError as exc:
        raise bad("is not a valid URL (host or port)") from exc
    if port == 0:
        raise bad("needs a port in 1..65535")
    if parts.scheme not in ("http", "https"):
        raise bad("must be an http(s) URL")
    if not parts.hostname:
        raise bad("needs a host")
    if parts.username is not None or parts.password is not None:
        raise bad("must not carry credentials (user:password@)")
    if parts.fragment or url.endswith("#"):
        raise bad("must not have a fragment")
    why = None if allow_private else _private_host(parts.hostname)
    if why is not None:
        raise InvalidInput("private_url", f"url host {parts.hostname!r} {why}; webhooks go to "
                           "public addresses only (LASTMILE_WEBHOOKS_ALLOW_PRIVATE is off)",
                           field="url")
    return url


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    id: str
    merchant_id: str
    url: str
    secret: str = field(repr=False)  # signs every message: never in a repr, a log or a traceback
    event_types: tuple[str, ...]
    created_at: float
    active: bool = True
    eta_under_s: int | None = 300
    nearby_m: int | None = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """One event to one endpoint; ``event_id`` is stable across every retry."""

    id: str
    endpoint_id: str
    merchant_id: str
    event_id: str
    event_type: str
    payload: dict[str, Any]
    created_at: float
    status: MessageStatus = MessageStatus.PENDING
    attempts: int = 0
    next_attempt_at: float | None = None
    last_error: str | None = None
    last_status_code: int | None = None
    delivered_at: float | None = None
    tenant: str = DEFAULT_TENANT  # whose message: the sender posts it as this tenant
