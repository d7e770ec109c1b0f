"""One dispatcher worker process of a fleet (``lastmile dispatcher``).

The process claims a fair share of the regions of every tenant through leases
(``LeaseKeeper``), runs a fenced dispatch round for each region it holds every ``every_s``
seconds as the region's tenant, and takes its turn
at housekeeping through the singleton ``housekeeping`` lease (API processes compete for the
same lease, so exactly one process in the deployment runs it at a time). It does not relay
the outbox: the API processes do. On SIGTERM or Ctrl-C it stops its rounds, gives its leases
back (the next worker claims them at its next tick instead of waiting out the TTL) and exits.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

from lastmile.adapters.dispatch_worker import DispatchWorker
from lastmile.adapters.loop import LoopWorker
from lastmile.adapters.region_leases import LeaseKeeper
from lastmile.app.context import Services
from lastmile.app.housekeeping import run_housekeeping
from lastmile.app.live import LiveStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetSettings:
    every_s: float = 2.0  # a dispatch round per held region this often
    ttl_s: float = 10.0  # lease time to live: a dead worker's regions move after at most this
    renew_every_s: float | None = None  # default ttl_s / 3
    housekeeping_every_s: float = 30.0

    def __post_init__(self) -> None:
        if self.every_s <= 0 or self.ttl_s <= 0 or self.housekeeping_every_s <= 0:
            raise ValueError("every_s, ttl_s and housekeeping_every_s must be > 0 "
                             f"(got {self.every_s}, {self.ttl_s}, {self.housekeeping_every_s})")

    @property
    def renew_s(self) -> float:
        return self.renew_every_s if self.renew_every_s is not None else self.ttl_s / 3

    @property
    def takeover_bound_s(self) -> float:
        """The longest a dead worker's region waits for a new owner (region_leases)."""
        return self.ttl_s + self.renew_s


class DispatcherProcess:
    """The worker's threads: lease keeper, dispatch rounds, housekeeping turn."""

    def __init__(self, services: Services, live: LiveStore, fleet: FleetSettings, *,
                 worker_id: str | None = None):
        self.fleet = fleet
        self.keeper = LeaseKeeper(services, worker_id=worker_id, ttl_s=fleet.ttl_s,
                                  renew_every_s=fleet.renew_s)
        self.worker = DispatchWorker(services, live, interval_s=fleet.every_s,
                                     leases=self.keeper)
        owner = self.keeper.worker_id
        ttl = 3 * fleet.housekeeping_every_s
        self.housekeeping = LoopWorker(
            "housekeeping", lambda: run_housekeeping(services, live, owner=owner, ttl_s=ttl),
            fleet.housekeeping_every_s)

    @property
    def worker_id(self) -> str:
        return self.keeper.worker_id

    def start(self) -> None:
        self.worker.start()  # starts the lease keeper first
        self.housekeeping.start()

    def stop(self) -> None:
        self.housekeeping.stop()
        self.worker.stop()  # stops the keeper, which releases every lease


def run_until_signalled(process: DispatcherProcess, *,
                        report: Callable[[str], None] = print) -> None:
    """Run ``process`` until SIGTERM or SIGINT, reporting each change of the regions held."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    process.start()
    held: tuple[str, ...] | None = None
    try:
        while not stop.wait(0.2):
            now_held = tuple(sorted(process.keeper.held()))
            if now_held != held:
                held = now_held
                report(f"{process.worker_id} holds {len(held)} region(s): {', '.join(held)}")
    finally:
        process.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)
        report(f"{process.worker_id} stopped; leases released")
