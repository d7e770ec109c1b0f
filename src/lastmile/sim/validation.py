"""Rates of the simulator's validation runs with honest intervals (bench/experiments.py).

Tests run on the same simulated day share its data, so they are not independent: the
rate's interval is a Wilson interval (statsmodels) on the effective number of tests, the
count divided by the design effect of the day clustering (the variance of the days' rates
over the binomial variance at the mean tests per day, at least 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from statsmodels.stats.proportion import proportion_confint


def rate_interval(per_day: Sequence[Sequence[bool]], *, level: float = 0.95) -> dict[str, Any]:
    """The share of True over every day's tests, with its interval (module docstring)."""
    days = [list(d) for d in per_day if len(d)]
    n = sum(len(d) for d in days)
    if n == 0:
        return {"rate": float("nan"), "ci": [float("nan"), float("nan")], "tests": 0,
                "days": 0, "effective_tests": 0.0}
    k = sum(sum(d) for d in days)
    p = k / n
    deff = 1.0
    if len(days) > 1 and 0 < p < 1:
        m = n / len(days)
        observed = float(np.var([sum(d) / len(d) for d in days], ddof=1))
        deff = max(1.0, observed / (p * (1 - p) / m))
    n_eff = n / deff
    lo, hi = proportion_confint(p * n_eff, n_eff, alpha=1 - level, method="wilson")
    return {"rate": p, "ci": [float(lo), float(hi)], "tests": n, "days": len(days),
            "effective_tests": round(n_eff, 1)}
