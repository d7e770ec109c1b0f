"""A periodic worker thread for the shell's background jobs."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from lastmile.adapters.outages import as_outage
from lastmile.adapters.telemetry.metrics import WORKER_TICK_ERRORS

log = logging.getLogger(__name__)


class LoopWorker:
    """Calls ``tick()`` every ``interval_s`` on a daemon thread until ``stop()``."""

    def __init__(self, name: str, tick: Callable[[], object], interval_s: float):
        self.name = name
        self._tick = tick
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors = 0
        self.last_error: str | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._tick()
            except Exception as exc:  # survive a bad tick; counted, logged, retried next tick
                self.errors += 1
                WORKER_TICK_ERRORS.labels(self.name).inc()
                self.last_error = f"{type(exc).__name__}: {exc}"
                outage = as_outage(exc)
                if outage is None:
                    log.exception("%s tick failed", self.name)
                else:  # expected while a server is down: one line, no traceback, per tick
                    log.warning("%s tick failed: %s unavailable (%s); retrying", self.name,
                                outage.dependency, outage.message)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
