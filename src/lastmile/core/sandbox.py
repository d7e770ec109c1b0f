"""Sandbox captures: what a test tenant's outbound side effect would have sent.

In a test tenant (``core.tenancy.Tenant.is_test``) nothing leaves for the real world: a
webhook POST, a notification on a channel or a payment is recorded as a ``Capture``
instead (``app.sandbox``). This module holds the value and the one rule; it is pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from lastmile.core.errors import InvalidInput


class OutboundMode(StrEnum):
    LIVE = "live"  # side effects reach real receivers, channels and processors
    SANDBOX = "sandbox"  # side effects are captured, never sent (test tenants)


def outbound_mode_of(*, is_test: bool) -> OutboundMode:
    """The rule (seed 003's guardrails): a test tenant's side effects never leave."""
    return OutboundMode.SANDBOX if is_test else OutboundMode.LIVE


class CaptureChannel(StrEnum):
    WEBHOOK = "webhook"  # a business's webhook endpoint (app.webhooks)
    NOTIFICATION = "notification"  # a notice on a channel: log, e-mail, SMS or push gateway
    PAYMENT = "payment"  # a payment processor call (issue 10)


def parse_channel(value: str, *, field_name: str = "channel") -> CaptureChannel:
    try:
        return CaptureChannel(value)
    except ValueError:
        raise InvalidInput("invalid_channel",
                           f"{field_name} must be one of "
                           f"{', '.join(c.value for c in CaptureChannel)} (got {value!r})",
                           field=field_name) from None


@dataclass(frozen=True, slots=True, kw_only=True)
class Capture:
    """The exact request a sandboxed side effect would have made.

    ``target`` is where it would have gone (a URL; ``channel:address`` for a notice),
    ``headers`` what it would have carried (a webhook's signature included) and ``body``
    the exact body text (a webhook's signature verifies over ``body.encode()``).
    """

    id: str
    channel: CaptureChannel
    target: str
    event_type: str
    subject_id: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    created_at: float
