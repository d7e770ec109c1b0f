"""Lease use cases: claim, renew and release a named lease; the fence a round checks.

Each call is one short unit of work on the lease row (a compare-and-set on its token), so
two workers asking at once see one winner and one ``None``. ``now`` defaults to the services'
clock; the lease keeper passes its own (wall time even when a simulation speeds the services'
clock up), and tests pause a worker past its TTL with a manual one. Across processes the
clocks are the hosts' wall clocks; the TTL must exceed their skew (NTP keeps it to ms).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from lastmile.app.context import Services
from lastmile.app.ports import UnitOfWork
from lastmile.core import leases as core
from lastmile.core.errors import Conflict
from lastmile.core.leases import Lease

log = logging.getLogger(__name__)

FORGET_AFTER_TTLS = 100  # a heartbeat this many TTLs old is a dead worker's: deleted
HOUSEKEEPING = "housekeeping"  # the singleton job's lease (late orders, offers, shifts)


@dataclass(frozen=True, slots=True, kw_only=True)
class Fence:
    """What a round's writes carry: the lease they were planned under."""

    name: str
    owner: str
    token: int


def claim(services: Services, name: str, owner: str, ttl_s: float, *, now: float | None = None) -> Lease | None:
    """Take ``name`` if free, renew it if already ``owner``'s; None if another holds it or
    won a race for it just now."""
    now = services.clock.now() if now is None else now
    try:
        with services.uow() as uow:
            current = uow.leases.get(name)
            wanted = core.claim(current, name=name, owner=owner, now=now, ttl_s=ttl_s)
            if wanted is None:
                return None
            uow.leases.put(wanted, expected_token=current.token if current else None)
            uow.commit()
            return wanted
    except Conflict as exc:
        if exc.code != "concurrent_update":
            raise
        return None  # another worker claimed it between our read and our write


def renew(services: Services, fence: Fence, ttl_s: float, *, now: float | None = None) -> Lease | None:
    """Extend the lease ``fence`` was issued under; None once another ownership began."""
    now = services.clock.now() if now is None else now
    try:
        with services.uow() as uow:
            current = uow.leases.get(fence.name)
            wanted = core.renewed(current, owner=fence.owner, token=fence.token, now=now,
                                  ttl_s=ttl_s)
            if wanted is None:
                return None
            uow.leases.put(wanted, expected_token=fence.token)
            uow.commit()
            return wanted
    except Conflict as exc:
        if exc.code != "concurrent_update":
            raise
        return None


def release(services: Services, fence: Fence, *, now: float | None = None) -> bool:
    """Expire the lease now so the next claimant need not wait out the TTL; False if it had
    already changed hands. The token stays: the next owner gets the one after it."""
    now = services.clock.now() if now is None else now
    try:
        with services.uow() as uow:
            current = uow.leases.get(fence.name)
            if current is None or current.token != fence.token or current.owner != fence.owner:
                return False
            uow.leases.put(Lease(name=current.name, owner=current.owner, token=current.token,
                                 expires_at=min(now, current.expires_at),
                                 acquired_at=current.acquired_at),
                           expected_token=fence.token)
            uow.commit()
            return True
    except Conflict as exc:
        if exc.code != "concurrent_update":
            raise
        return False


def check_fence(uow: UnitOfWork, fence: Fence) -> None:
    """Refuse the caller's transaction unless ``fence`` is still the current ownership.

    Call it inside the unit of work that writes, before committing: the row stays
    share-locked to the end of the unit (PostgreSQL), and SQLite runs one writer at a time,
    so no takeover can commit between this check and the writes.
    """
    current = uow.leases.get(fence.name, lock=True)
    if current is None or current.token != fence.token or current.owner != fence.owner:
        now_token = current.token if current is not None else None
        raise Conflict("lease_lost",
                       f"lease {fence.name} is no longer held by {fence.owner} under token "
                       f"{fence.token} (current token {now_token}); the write is refused",
                       current_state="fenced")


def heartbeat(services: Services, worker_id: str, ttl_s: float, *, now: float | None = None) -> list[str]:
    """Record that ``worker_id`` is alive; the workers seen within ``ttl_s``, itself included."""
    now = services.clock.now() if now is None else now
    with services.uow() as uow:
        uow.leases.heartbeat(worker_id, now, forget_before=now - FORGET_AFTER_TTLS * ttl_s)
        live = uow.leases.live_workers(now - ttl_s)
        uow.commit()
    return live


def forget_worker(services: Services, worker_id: str) -> None:
    with services.uow() as uow:
        uow.leases.forget_worker(worker_id)
        uow.commit()
