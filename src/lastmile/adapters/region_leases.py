"""The lease keeper: which regions this dispatcher worker owns, kept on a timer.

The regions are every tenant's (listed in the platform scope; a lease is named by its
region's id, unique across tenants); the worker runs each round as the region's tenant.

Every ``renew_every_s`` (a third of the TTL by default) the keeper records its heartbeat,
renews the leases it holds, gives back the ones above its fair share (an even split of the
regions over the live workers, the remainder to the first by id) and claims free ones up to
that share, starting at an offset of its own so that workers starting together do not all
contend for the same regions first. A worker killed without a word stops renewing: its
leases expire at most ``ttl_s`` after its last renewal and its heartbeat ages out at the
same moment, so a survivor's next tick (at most ``renew_every_s`` later) claims them:
takeover within ``ttl_s + renew_every_s``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
import zlib
from collections.abc import Callable

from lastmile.adapters import dispatch_metrics as metrics
from lastmile.adapters.clock import SystemClock
from lastmile.app import leases
from lastmile.app.context import Services
from lastmile.app.every_tenant import region_owners
from lastmile.app.leases import Fence
from lastmile.app.ports import Clock
from lastmile.core.leases import fair_share

log = logging.getLogger(__name__)

DEFAULT_TTL_S = 10.0


def new_worker_id() -> str:
    """Unique per process start: host, pid and a random suffix (a pid can be reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class LeaseKeeper:
    """Claims, renews and releases region leases for one worker; thread-safe ``held()``."""

    def __init__(self, services: Services, *, worker_id: str | None = None,
                 ttl_s: float = DEFAULT_TTL_S, renew_every_s: float | None = None,
                 regions: Callable[[], list[str]] | None = None, clock: Clock | None = None):
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be > 0 (got {ttl_s})")
        self.services = services
        self.clock = clock or SystemClock()  # wall time, whatever the services' clock runs at
        self.worker_id = worker_id or new_worker_id()
        self.ttl_s = ttl_s
        self.renew_every_s = renew_every_s if renew_every_s is not None else ttl_s / 3
        if not 0 < self.renew_every_s < ttl_s:
            raise ValueError(f"renew_every_s must be in (0, ttl_s={ttl_s}) "
                             f"(got {self.renew_every_s})")
        # Default: every tenant's regions (lease names are region ids, unique across tenants).
        self._regions = regions or (lambda: list(region_owners(services)))
        self._held: dict[str, Fence] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = 0  # leases found taken by another owner at renewal or by the fence

    def held(self) -> dict[str, Fence]:
        with self._lock:
            return dict(self._held)

    def drop(self, name: str) -> None:
        """Forget a lease the fence says is no longer ours (another owner took it)."""
        with self._lock:
            if self._held.pop(name, None) is not None:
                self.lost += 1
        self._publish()

    def _publish(self) -> None:
        with self._lock:
            n = len(self._held)
        metrics.REGIONS_HELD.labels(worker=self.worker_id).set(n)

    def tick(self) -> dict[str, Fence]:
        """One round of heartbeat, renew, rebalance and claim; the leases held after it."""
        workers = leases.heartbeat(self.services, self.worker_id, self.ttl_s,
                                   now=self.clock.now())
        names = sorted(self._regions())
        rank = workers.index(self.worker_id) if self.worker_id in workers else 0
        share = fair_share(len(names), max(len(workers), 1), rank)
        for name, fence in self.held().items():
            if name in names and leases.renew(self.services, fence, self.ttl_s,
                                                    now=self.clock.now()) is not None:
                continue
            log.warning("lease on %s lost by %s (token %d)", name, self.worker_id, fence.token)
            self.drop(name)
        mine = self.held()
        for name in sorted(mine, reverse=True)[:max(0, len(mine) - share)]:
            leases.release(self.services, mine[name], now=self.clock.now())
            with self._lock:
                self._held.pop(name, None)
            log.info("released %s to rebalance (%d workers)", name, len(workers))
        start = zlib.crc32(self.worker_id.encode()) % len(names) if names else 0
        for name in names[start:] + names[:start]:
            if len(self._held) >= share:
                break
            if name in self._held:
                continue
            lease = leases.claim(self.services, name, self.worker_id, self.ttl_s,
                                 now=self.clock.now())
            if lease is not None:
                with self._lock:
                    self._held[name] = Fence(name=name, owner=lease.owner, token=lease.token)
                log.info("%s holds %s (token %d)", self.worker_id, name, lease.token)
        self._publish()
        return self.held()

    def release_all(self) -> None:
        """Give every lease back (a clean stop): the next worker need not wait out the TTL."""
        for fence in self.held().values():
            try:
                leases.release(self.services, fence, now=self.clock.now())
            except Exception:  # stopping anyway; the lease then simply expires
                log.exception("could not release %s", fence.name)
        with self._lock:
            self._held.clear()
        try:
            leases.forget_worker(self.services, self.worker_id)
        except Exception:
            log.exception("could not remove the heartbeat of %s", self.worker_id)
        self._publish()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                self.tick()
            except Exception:  # the database is down: keep what the fence allows, retry
                log.exception("lease tick failed for %s; retrying", self.worker_id)
            if self._stop.wait(self.renew_every_s):
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.release_all()
