"""The dispatcher worker: a daemon thread that runs a dispatch round per region on a tick.

The tick is in wall seconds (the thread sleeps on a ``threading.Event``); the
rounds read the injected clock, so an accelerated clock makes each tick cover
more simulated time. A round that fails (or a failure to list the regions) is
logged with its traceback, counted and kept in ``stats.last_error``, never
silently dropped: the next tick starts from the database again.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass, field

from lastmile.adapters.outages import as_outage
from lastmile.app.context import Services
from lastmile.app.dispatching import LiveTravel, RoundResult, dispatch_round
from lastmile.app.live import LiveStore
from lastmile.app.queries import list_regions
from lastmile.core.dispatch import DispatchPolicy

log = logging.getLogger(__name__)


@dataclass(slots=True, kw_only=True)
class DispatchStats:
    rounds: int = 0
    offers: int = 0
    errors: int = 0
    last_error: str | None = None
    last: dict[str, RoundResult] = field(default_factory=dict)
    refused: Counter[str] = field(default_factory=Counter)


class DispatchWorker:
    """Runs ``dispatch_round`` for every region every ``interval_s`` until stopped."""

    def __init__(self, services: Services, live: LiveStore, *, interval_s: float = 5.0,
                 policy: DispatchPolicy | None = None, travel: LiveTravel | None = None,
                 region_ids: tuple[str, ...] | None = None):
        self._services = services
        self._live = live
        self._interval = interval_s
        self._policy = policy or DispatchPolicy()
        self._travel = travel or LiveTravel()
        self._regions = region_ids
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.stats = DispatchStats()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
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
        try:
            regions = self._regions or tuple(r.id for r in list_regions(self._services))
        except Exception as exc:  # the database is down: try again next tick, do not die
            self._failed("regions", exc)
            return []
        results = []
        for region_id in regions:
            try:
                result = dispatch_round(self._services, self._live, region_id, self._policy,
                                        travel=self._travel)
            except Exception as exc:  # a worker survives a bad round and retries on the next tick
                self._failed(region_id, exc)
                continue
            results.append(result)
            with self._lock:
                self.stats.rounds += 1
                self.stats.offers += len(result.offers) + len(result.extensions)
                self.stats.last[region_id] = result
                self.stats.refused.update(result.refused)
        return results

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.run_once()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
