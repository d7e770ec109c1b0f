"""Housekeeping, run by one process at a time: flag late orders, expire offers, end shifts.

Each step is safe to run twice (compare-and-set saves, the inbox for delay notices), but
with many API processes and dispatcher workers every one of them would scan the same rows
on every tick and lose most of the races. The ``housekeeping`` lease makes one of them the
runner; when it dies another takes over once the lease expires (``ttl_s``).
"""

from __future__ import annotations

from lastmile.app import leases
from lastmile.app.context import Services
from lastmile.app.delays import flag_late_orders
from lastmile.app.every_tenant import for_each_tenant
from lastmile.app.live import LiveStore
from lastmile.app.offers import expire_due_offers
from lastmile.app.shifts import end_expired_shifts


def run_housekeeping(services: Services, live: LiveStore, *, owner: str, ttl_s: float) -> bool:
    """Run the steps if ``owner`` holds (or can take) the housekeeping lease; whether it ran.
    The steps run for every tenant at work, each as that tenant (``every_tenant``)."""
    if leases.claim(services, leases.HOUSEKEEPING, owner, ttl_s) is None:
        return False
    for_each_tenant(services, lambda: housekeep_tenant(services, live))
    return True


def housekeep_tenant(services: Services, live: LiveStore) -> None:
    """The steps for the current tenant."""
    flag_late_orders(services)
    expire_due_offers(services)  # closed with their event even with no dispatcher
    end_expired_shifts(services, live)
