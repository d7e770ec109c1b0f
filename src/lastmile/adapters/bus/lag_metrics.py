"""``lastmile_event_lag``: events each durable consumer has not acknowledged yet, for /metrics.

A custom collector on prometheus-client's default registry, registered once per process; a
container adds its lag source when it starts and removes it when it closes. The value is
read at scrape time (JetStream: pending + unacknowledged per consumer; in-process: the
relay's queue per subscriber), so it is never stale. A source that fails (NATS down) is
left out of that scrape instead of failing it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from prometheus_client import REGISTRY
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

LagSource = Callable[[], dict[str, int]]
log = logging.getLogger(__name__)
NAME = "lastmile_event_lag"

_lock = threading.Lock()
_sources: dict[int, LagSource] = {}
_registered = False


def _family() -> GaugeMetricFamily:
    return GaugeMetricFamily(NAME, "Events a durable consumer has not acknowledged yet "
                             "(pending plus delivered-unacknowledged)", labels=["consumer"])


class _LagCollector:
    def describe(self) -> Iterable[Metric]:
        """The family without samples: registering must not read the sources."""
        yield _family()

    def collect(self) -> Iterable[Metric]:
        with _lock:
            sources = list(_sources.values())
        lag: dict[str, int] = {}
        for source in sources:
            try:
                for consumer, n in source().items():
                    lag[consumer] = max(n, lag.get(consumer, 0))  # processes share consumers
            except Exception as exc:  # a scrape must not fail because the log is down
                log.warning("event lag unavailable: %r", exc)
        gauge = _family()
        for consumer, n in sorted(lag.items()):
            gauge.add_metric([consumer], n)
        yield gauge


def add_lag_source(key: object, source: LagSource) -> None:
    """Expose ``source`` under ``lastmile_event_lag`` until ``remove_lag_source(key)``."""
    global _registered
    with _lock:
        _sources[id(key)] = source
        if not _registered:
            REGISTRY.register(_LagCollector())
            _registered = True


def remove_lag_source(key: object) -> None:
    with _lock:
        _sources.pop(id(key), None)
