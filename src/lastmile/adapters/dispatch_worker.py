"""The dispatcher worker: a daemon thread that runs a dispatch round per region on a tick.

The tick is in wall seconds (the thread sleeps on a ``threading.Event``); the
rounds read the injected clock, so an accelerated clock makes each tick cover
more simulated time. A round that fails (or a failure to list the regions) is
logged with its traceback, counted and kept in ``stats.last_error``, never
silently dropped: the next tick starts from the database again.

With a ``LeaseKeeper`` the worker dispatches only the regions whose lease it holds, and each
round's offers commit behind the lease's fence; a round refused by the fence (another worker
took the region over) is counted in ``stats.fenced``, logged, and the region dropped.

Regions are every tenant's: each tick lists them with their tenants in the platform scope
(``app.every_tenant``) and runs each round as its region's tenant, so the round reads, writes
and publishes in that tenant only (docs/tenants-workers.md).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from lastmile.adapters import dispatch_metrics as metrics
from lastmile.adapters.outages import as_outage
from lastmile.adapters.region_leases import LeaseKeeper
from lastmile.app.acceptance import AcceptanceLearner
from lastmile.app.context import Services
from lastmile.app.dispatching import LiveTravel, RoundResult, dispatch_round
from lastmile.app.every_tenant import region_owners
from lastmile.app.leases import Fence
from lastmile.app.live import LiveStore
from lastmile.app.tenancy import acting_as, current_tenant
from lastmile.core.dispatch import DispatchPolicy
from lastmile.core.errors import Conflict

log = logging.getLogger(__name__)


@dataclass(slots=True, kw_only=True)
class DispatchStats:
    rounds: int = 0
    offers: int = 0
    errors: int = 0
    fenced: int = 0  # rounds refused because the region's lease had passed to another worker
    last_error: str | None = None
    last: dict[str, RoundResult] = field(default_factory=dict)
    refused: Counter[str] = field(default_factory=Counter)


class DispatchWorker:
    """Runs ``dispatch_round`` for every region of every tenant every ``interval_s`` until
    stopped, each round as its region's tenant."""

    def __init__(self, services: Services, live: LiveStore, *, interval_s: float = 5.0,
                 policy: DispatchPolicy | None = None, travel: LiveTravel | None = None,
                 region_ids: tuple[str, ...] | None = None, leases: LeaseKeeper | None = None):
        self._services = services
        self._live = live
        self._interval = interval_s
        self._policy = policy or DispatchPolicy()
        self._travel = travel or LiveTravel()
        # Fitted only for a tenant whose dispatch policy sets acceptance_weight > 0.
        self._acceptance = AcceptanceLearner(round_s=interval_s)
        self._regions = region_ids
        self.leases = leases
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.stats = DispatchStats()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        if self.leases is not None:
            self.leases.start()
        self._thread = threading.Thread(target=self._run, name="dispatcher", daemon=True)
        self._thread.start()

    def _failed(self, where: str, exc: Exception) -> None:
        outage = as_outage(exc)
        if outage is None:
            log.exception("dispatch round failed for %s; retrying next tick", where)
        else:  # a server is down: expected, one line per tick until it is back
            log.warning("dispatch round failed for %s: %s unavailable; retrying next tick",
                        where, outage.dependency)
        with self._lock:
            self.stats.errors += 1
            self.stats.last_error = f"{where}: {exc.__class__.__name__}: {exc}"

    def run_once(self) -> list[RoundResult]:
        fences = self.leases.held() if self.leases is not None else None
        try:
            # Every tenant's regions (read in the platform scope); each round runs as its
            # region's tenant.
            owners = region_owners(self._services)
            if fences is not None:
                regions = tuple(r for r in sorted(fences)
                                if self._regions is None or r in self._regions)
            else:
                regions = self._regions or tuple(sorted(owners))
        except Exception as exc:  # the database is down: try again next tick, do not die
            self._failed("regions", exc)
            return []
        results = []
        for region_id in regions:
            started = time.perf_counter()
            # A region missing from the listing (just deleted) runs as the caller: its
            # round then fails ``region_not_found``, counted like any failed round.
            with acting_as(owners.get(region_id, current_tenant())):
                result = self._round(region_id, fences.get(region_id) if fences else None)
            metrics.ROUND_SECONDS.labels(region=region_id).observe(time.perf_counter() - started)
            if result is None:
                continue
            results.append(result)
            with self._lock:
                self.stats.rounds += 1
                self.stats.offers += (len(result.offers) + len(result.extensions)
                                      + len(result.moves))
                self.stats.last[region_id] = result
                self.stats.refused.update(result.refused)
        return results

    def _round(self, region_id: str, fence: Fence | None) -> RoundResult | None:
        """One round; None when it failed, lost a race or was refused by the fence."""
        try:
            return dispatch_round(self._services, self._live, region_id, self._policy,
                                  travel=self._travel, fence=fence,
                                  acceptance=self._acceptance)
        except Conflict as exc:
            if exc.code == "concurrent_update" and fence is not None:
                # A fenced round is one unit of work: a request that changed a courier or
                # an order first (a unique index fired) undoes the round; the next tick
                # re-plans from the new state.
                log.warning("round for %s lost a race and wrote nothing: %s", region_id,
                            exc.message)
                with self._lock:
                    self.stats.refused.update([exc.code])
            elif exc.code == "lease_lost" and self.leases is not None:
                log.warning("round for %s refused by the fence: %s", region_id, exc.message)
                metrics.FENCED.labels(region=region_id).inc()
                with self._lock:
                    self.stats.fenced += 1
                self.leases.drop(region_id)
            else:
                self._failed(region_id, exc)
        except Exception as exc:  # a worker survives a bad round and retries on the next tick
            self._failed(region_id, exc)
        return None

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.run_once()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self.leases is not None:
            self.leases.stop()
