"""How good an ETA model is on realised deliveries (the issue's evaluation, item 6).

- ``mae_s``, ``p50_abs_err_s``, ``p90_abs_err_s``: absolute error of the point, seconds.
- ``coverage80`` (= ``inside_window``): share of deliveries inside the promised window
  ``[p10, p90]``; ``late_share``: after the window's end (the one definition of late).
- ``pit``: a probability-integral-transform histogram at the levels every model states
  (below p10, p10..point, point..p90, above p90, as densities: 1.0 each when calibrated);
  a model with a full distribution also gets a 10-bin one (``pit_histogram``).
- "couriers short": rows whose supply pressure (orders of the last 5 minutes per idle
  courier + 1) is above 1: fewer idle couriers than new orders.
"""

from __future__ import annotations

import numpy as np

from lastmile.core.eta.weibull import supply_pressure

PIT_LEVELS = (0.0, 0.1, 0.5, 0.9, 1.0)


def short_supply(matrix: np.ndarray) -> np.ndarray:
    """Rows where couriers are short: supply pressure above 1."""
    return np.asarray(supply_pressure(matrix) > 1.0)


def metrics(point: np.ndarray, p10: np.ndarray, p90: np.ndarray,
            total_s: np.ndarray) -> dict[str, float | int | list[float]]:
    """The evaluation figures of one model on one set of deliveries (empty -> zero orders)."""
    n = len(total_s)
    if n == 0:
        return {"orders": 0}
    err = np.abs(point - total_s)
    inside = float(np.mean((total_s >= p10) & (total_s <= p90)))
    below = np.mean(total_s < p10)
    mid_lo = np.mean((total_s >= p10) & (total_s < point))
    mid_hi = np.mean((total_s >= point) & (total_s <= p90))
    above = np.mean(total_s > p90)
    widths = np.diff(PIT_LEVELS)
    pit = [round(float(v / w), 4) for v, w in zip((below, mid_lo, mid_hi, above), widths,
                                                     strict=True)]
    return {
        "orders": n,
        "mae_s": round(float(err.mean()), 2),
        "p50_abs_err_s": round(float(np.quantile(err, 0.5)), 2),
        "p90_abs_err_s": round(float(np.quantile(err, 0.9)), 2),
        "coverage80": round(inside, 4),
        "inside_window": round(inside, 4),
        "late_share": round(float(above), 4),
        "bias_s": round(float(np.mean(point - total_s)), 2),
        "window_s": round(float(np.mean(p90 - p10)), 2),
        "pit": pit,
    }


def pit_histogram(pit_values: np.ndarray, bins: int = 10) -> list[float]:
    """Densities of the PIT values in ``bins`` equal bins of [0, 1] (1.0 each if calibrated)."""
    if len(pit_values) == 0:
        return []
    counts, _ = np.histogram(np.clip(pit_values, 0.0, 1.0), bins=bins, range=(0.0, 1.0))
    return [round(float(c * bins / len(pit_values)), 4) for c in counts]
