"""Prometheus metrics of the dispatcher, in the default registry (``/metrics`` serves it).

Defined once at import, as prometheus_client expects: a second definition of a name in one
registry is an error, so every user imports them from here.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ROUND_SECONDS = Histogram(
    "lastmile_dispatch_round_seconds",
    "Wall time of one dispatch round for a region: snapshot, plan, offers committed.",
    ["region"],
    # A round loads at most app.dispatching.MAX_OPEN_ORDERS (4,000) orders; the engine's part of
    # such a round is ~0.2-0.4 s (bench/dispatch_scaling.py), the rest is reads and offers.
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
REGIONS_HELD = Gauge(
    "lastmile_dispatch_regions_held",
    "Regions whose lease this dispatcher worker holds.",
    ["worker"],
)
FENCED = Counter(
    "lastmile_dispatch_fenced_total",
    "Dispatch rounds refused by the lease fence (a stale owner's writes).",
    ["region"],
)
