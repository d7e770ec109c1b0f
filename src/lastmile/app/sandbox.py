"""The sandbox: a test tenant's outbound side effects are captured, never sent.

Seed 003's guardrail: test orders never reach a real webhook, SMS, e-mail or push
channel, or payment processor. The rule lives here, once: ``outbound_mode(services)`` is
``sandbox`` when the tenant current at send time is a test tenant
(``core.tenancy.Tenant.is_test``), else ``live``. Every sender asks it at the last step,
where the request would leave:

- ``app.webhooks`` records the exact POST (URL, headers with the signature, body) with
  ``capture`` and marks the message delivered, so the lifecycle and retries behave;
- ``app.notifications`` records the notice and marks it sent;
- payments (issue 10) pick a sandbox processor when ``payment_mode`` says so, and the
  real processor's adapter calls ``require_live_money`` before any call leaves: a test
  tenant that reached it anyway is refused (403 ``sandbox_payment_refused``).

Captures are the tenant's rows: ``GET /v1/ops/sandbox/captures`` lists the acting
tenant's, newest first (a live tenant has none).
"""

from __future__ import annotations

from collections.abc import Mapping

from lastmile.app import tenants
from lastmile.app.context import Services
from lastmile.core.errors import Forbidden, InvalidInput
from lastmile.core.sandbox import (
    Capture,
    CaptureChannel,
    OutboundMode,
    outbound_mode_of,
    parse_channel,
)

MAX_LIMIT = 500


def outbound_mode(services: Services) -> OutboundMode:
    """``sandbox`` in a test tenant (the current one, at the moment of sending), else
    ``live``. The tenant's kind comes from ``tenants.current`` (a short-lived cache)."""
    return outbound_mode_of(is_test=tenants.current(services).is_test)


def is_sandboxed(services: Services) -> bool:
    return outbound_mode(services) is OutboundMode.SANDBOX


def payment_mode(services: Services) -> OutboundMode:
    """Which payment processor a payment of the current tenant goes to: the real one
    (``live``) or a sandbox one that records and approves (``sandbox``)."""
    return outbound_mode(services)


def require_live_money(services: Services, *, what: str) -> None:
    """Raise 403 ``sandbox_payment_refused`` in a test tenant: the last wall before a
    real payment processor (its adapter calls this before anything leaves). ``what``
    names the payment, e.g. ``"charge of order ord_42"``."""
    if is_sandboxed(services):
        tenant = tenants.current(services).id
        raise Forbidden("sandbox_payment_refused",
                        f"{what}: tenant {tenant} is a test tenant; its money never reaches "
                        "a real payment processor (use the sandbox processor)")


def capture(services: Services, *, channel: CaptureChannel, target: str, event_type: str,
            subject_id: str, headers: Mapping[str, str], body: str) -> Capture:
    """Record what would have been sent, in the current tenant; returns the capture."""
    captured = Capture(id=services.ids.new("sbx"), channel=channel, target=target,
                       event_type=event_type, subject_id=subject_id, headers=dict(headers),
                       body=body, created_at=services.clock.now())
    with services.uow() as uow:
        uow.sandbox_captures.add(captured)
        uow.commit()
    return captured


def list_captures(services: Services, *, channel: str | None = None,
                  subject_id: str | None = None, limit: int = 50) -> list[Capture]:
    """The current tenant's captures, newest first (filtered by channel and subject)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput("invalid_limit", f"limit must be in [1, {MAX_LIMIT}] (got {limit})",
                           field="limit")
    kind = parse_channel(channel).value if channel is not None else None
    with services.uow(read_only=True) as uow:
        return uow.sandbox_captures.list(channel=kind, subject_id=subject_id, limit=limit)
