"""Synthetic ETA tables: a known rule plus noise, cart-sensitive when asked."""

from __future__ import annotations

import numpy as np

from lastmile.core.eta.features import NUMERIC_COLUMNS
from lastmile.core.eta.table import EtaTable

COL = {name: i for i, name in enumerate(NUMERIC_COLUMNS)}


def a_table(n: int, *, seed: int, cart_s: float = 0.0, with_cart: bool = True,
            merchants: int = 8) -> EtaTable:
    """Rows whose duration is max(prep, 300) + travel + a supply delay + a long-tailed wait
    (+ ``cart_s`` per item beyond the first)."""
    rng = np.random.default_rng(seed)
    m = np.zeros((n, len(NUMERIC_COLUMNS)))
    m[:, COL["hour"]] = rng.integers(10, 22, n)
    m[:, COL["distance_m"]] = rng.uniform(300, 5000, n)
    m[:, COL["travel_s"]] = m[:, COL["distance_m"]] / 4.5 + 240
    m[:, COL["prep_mean_s"]] = rng.choice([480.0, 600.0, 720.0, 900.0], n)
    m[:, COL["prep_p90_s"]] = m[:, COL["prep_mean_s"]] * 1.3
    orders = rng.uniform(0.2, 3.0, n)
    idle = rng.uniform(0, 8, n)
    for i in range(6):
        m[:, COL[f"orders_per_min_{i}"]] = orders
        m[:, COL[f"idle_couriers_{i}"]] = idle
    items = rng.integers(1, 6, n).astype(float)
    m[:, COL["items"]] = items if with_cart else np.nan
    m[:, COL["subtotal_minor"]] = items * 1200 if with_cart else np.nan
    pressure = orders * 5 / (idle + 1)
    total = (np.maximum(m[:, COL["prep_mean_s"]], 300) + m[:, COL["travel_s"]]
             + 120 * pressure + cart_s * (items - 1) + 240 * rng.weibull(1.5, n))
    merchant = np.array([f"m{i % merchants}" for i in range(n)])
    return EtaTable(matrix=m, merchant=merchant, source=np.full(n, f"synthetic-{seed}"),
                    total_s=total)
