"""Test couriers that accept their offers by themselves (``testkit.create_courier``).

A durable bus subscriber on ``offer.made``: it runs as the event's tenant, and accepts the
offer as its courier when the tenant is a test tenant and the courier is flagged in the
tenant's ``testkit`` config (``auto_accept``). Anything else is left alone: a live tenant's
offers are never touched, whatever its config says.
"""

from __future__ import annotations

import logging

from lastmile.app.context import Services
from lastmile.app.events import Event
from lastmile.app.offers import accept_offer
from lastmile.app.tenants import current, get_tenant
from lastmile.app.testkit import auto_accepting
from lastmile.core.errors import Conflict, NotFound
from lastmile.core.orders import Actor, ActorKind

SUBSCRIBER = "testkit-auto-accept"  # the durable subscriber's name
EVENT_TYPE = "offer.made"
log = logging.getLogger(__name__)


def on_offer_made(services: Services, event: Event) -> bool:
    """Accept the offer of ``event`` when its courier auto-accepts; True when accepted.
    Idempotent: an offer closed meanwhile (accepted, expired, withdrawn) is left as it is."""
    if event.type != EVENT_TYPE:
        return False
    tenant = current(services)
    courier_id = str(event.data.get("courier_id", ""))
    if not tenant.is_test:
        return False
    if courier_id not in auto_accepting(tenant):
        # The cached row may predate the flag (set by another process within the cache's
        # TTL): a test tenant's offers are worth one fresh read.
        if courier_id not in auto_accepting(get_tenant(services)):
            return False
    try:
        accept_offer(services, event.subject_id,
                     actor=Actor(kind=ActorKind.COURIER, id=courier_id))
    except (Conflict, NotFound) as exc:
        log.info("auto-accept of offer %s skipped: %s", event.subject_id, exc.message)
        return False
    return True
