"""The overload and breaker metrics, in prometheus_client's default registry.

Created once per process (a second ``Counter`` of the same name would raise),
on first use rather than at import, so importing the package registers nothing.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from prometheus_client import Counter, Gauge

BREAKER_STATE_VALUES = {"closed": 0, "half-open": 1, "open": 2}


@dataclass(frozen=True, slots=True)
class OverloadMetrics:
    admitted: Counter
    shed: Counter
    inflight: Gauge
    breaker_state: Gauge
    breaker_failures: Counter


@functools.cache
def metrics() -> OverloadMetrics:
    return OverloadMetrics(
        admitted=Counter("lastmile_admitted_total", "Requests admitted, per priority class",
                         ["priority"]),
        shed=Counter("lastmile_shed_total", "Requests refused with 429, per priority class and "
                     "reason (rate_limit: the client's limit; overload: admission control)",
                     ["priority", "reason"]),
        # multiprocess modes matter only under PROMETHEUS_MULTIPROC_DIR (several API
        # processes): in flight adds up over live processes; a breaker shows its worst state.
        inflight=Gauge("lastmile_inflight", "Requests in flight, per class", ["priority"],
                       multiprocess_mode="livesum"),
        breaker_state=Gauge("lastmile_breaker_state", "Circuit breaker state: 0 closed, "
                            "1 half-open, 2 open", ["name"], multiprocess_mode="max"),
        breaker_failures=Counter("lastmile_breaker_failures_total", "Failed calls through a "
                                 "circuit breaker", ["name"]),
    )
