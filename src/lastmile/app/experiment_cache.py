"""Experiments served lately, per process (``app.experiments``): the running set changes
rarely and every quote and dispatch round asks for it."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from lastmile.core.experiments.definition import Experiment

CACHE_TTL_S = 5.0  # how long a process serves the running set it read
SEEN_MAX = 200_000  # exposures this process remembers having recorded


@dataclass(frozen=True, slots=True, kw_only=True)
class Served:
    experiment: Experiment
    holdout: float


class ExperimentCache:
    """Per tenant: the running experiments (for ``ttl_s``) and the exposures recorded."""

    def __init__(self, ttl_s: float = CACHE_TTL_S, seen_max: int = SEEN_MAX):
        self.ttl_s = ttl_s
        self.seen_max = seen_max
        self._running: dict[str, tuple[dict[str, Served], float]] = {}
        self._seen: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self._lock = threading.Lock()

    def running(self, tenant: str, *, now: float,
                load: Callable[[], dict[str, Served]]) -> dict[str, Served]:
        entry = self._running.get(tenant)
        if entry is not None and 0 <= now - entry[1] < self.ttl_s:
            return entry[0]
        served: dict[str, Served] = load()
        with self._lock:
            self._running[tenant] = (served, now)
        return served

    def forget(self, tenant: str) -> None:
        with self._lock:
            self._running.pop(tenant, None)

    def seen(self, key: tuple[str, str, str]) -> bool:
        return key in self._seen

    def mark(self, key: tuple[str, str, str]) -> None:
        with self._lock:
            self._seen[key] = None
            while len(self._seen) > self.seen_max:
                self._seen.popitem(last=False)
