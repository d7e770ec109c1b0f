"""The seed's Weibull ETA fitted by interval regression (004 L359-393).

Delivery time is long-tailed: a three-parameter Weibull with shape ``k``, scale ``lam`` and
location ``gamma`` (the earliest possible delivery):

    S(t) = exp(-((t - gamma) / lam) ** k)            for t >= gamma, else 1
    log(-log S(t)) = k * log(t - gamma) - k * log(lam)

Maximum likelihood misbehaved in the seed (``gamma < 0``: a chance of delivery within a
minute), so the fit is least squares on that log-log line instead: group similar deliveries,
histogram them in 6-minute buckets, read the empirical survival ``S(t_j)`` at each bucket edge
(the share of deliveries longer than ``t_j``) and fit ``k``, ``lam`` and ``gamma >= 0``. For a
fixed ``gamma`` the line is an ordinary regression of ``log(-log S)`` on ``log(t - gamma)``;
``gamma`` itself is searched over ``[0, shortest delivery]``.

``WeibullGroups`` predicts per group of similar deliveries: groups are quantile bins of the
heuristic duration crossed with bins of supply pressure (recent orders per idle courier).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar

from lastmile.core.eta.engine import no_queue_point
from lastmile.core.eta.table import EtaTable, column

BUCKET_S = 360.0
"""The seed's 6-minute histogram buckets."""
_GAMMA_GRID = 64


@dataclass(frozen=True, slots=True, kw_only=True)
class WeibullParams:
    k: float
    lam: float
    gamma: float

    def __post_init__(self) -> None:
        if not (self.k > 0 and self.lam > 0 and self.gamma >= 0):
            raise ValueError(f"need k > 0, lam > 0, gamma >= 0 (got {self.k}, {self.lam}, "
                             f"{self.gamma})")


def weibull_quantile(p: float | np.ndarray, k: np.ndarray | float, lam: np.ndarray | float,
                     gamma: np.ndarray | float) -> np.ndarray:
    """The ``p`` quantile, ``gamma + lam * (-log(1 - p)) ** (1 / k)`` (0 < p < 1)."""
    return np.asarray(gamma + lam * (-np.log1p(-np.asarray(p))) ** (1.0 / np.asarray(k)))


def weibull_cdf(t: np.ndarray, k: np.ndarray | float, lam: np.ndarray | float,
                gamma: np.ndarray | float) -> np.ndarray:
    """P(T <= t); 0 before ``gamma``."""
    z = np.maximum(np.asarray(t) - gamma, 0.0) / lam
    return np.asarray(-np.expm1(-(z ** k)))


def survival_points(durations: np.ndarray, bucket: float = BUCKET_S) -> tuple[np.ndarray,
                                                                               np.ndarray]:
    """Bucket edges ``t_j = j * bucket`` and the empirical survival there (share of durations
    above ``t_j``), keeping only edges with 0 < S < 1 (the log-log transform's domain)."""
    d = np.sort(np.asarray(durations, dtype=np.float64))
    if len(d) == 0:
        return np.empty(0), np.empty(0)
    edges = bucket * np.arange(1, math.ceil(d[-1] / bucket) + 1)
    s = 1.0 - np.searchsorted(d, edges, side="right") / len(d)
    keep = (s > 0) & (s < 1)
    return edges[keep], s[keep]


def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least squares ``y = a * x + b``: (a, b, sum of squared residuals)."""
    xm, ym = x.mean(), y.mean()
    sxx = float(((x - xm) ** 2).sum())
    a = float(((x - xm) * (y - ym)).sum() / sxx) if sxx > 0 else 0.0
    b = float(ym - a * xm)
    return a, b, float(((y - (a * x + b)) ** 2).sum())


def fit_interval_regression(durations: np.ndarray, bucket: float = BUCKET_S) -> WeibullParams:
    """``k``, ``lam``, ``gamma`` by least squares on ``log(-log S(t_j))`` at the bucket edges.

    ``gamma`` is constrained to ``[0, min(durations))`` (no delivery before the location),
    searched on a grid then refined (bounded Brent). Raises ValueError with fewer than three
    usable edges (S strictly between 0 and 1) or a non-increasing log-log line.
    """
    t, s = survival_points(durations, bucket)
    if len(t) < 3:
        raise ValueError(f"need >= 3 histogram edges with 0 < S < 1 (got {len(t)}); "
                         "more deliveries or a smaller bucket")
    y = np.log(-np.log(s))
    upper = min(float(np.min(durations)), float(t[0])) * (1 - 1e-9)

    def sse(gamma: float) -> float:
        return _line(np.log(t - gamma), y)[2]

    grid = np.linspace(0.0, upper, _GAMMA_GRID, endpoint=False) if upper > 0 else np.zeros(1)
    best = int(np.argmin([sse(float(g)) for g in grid]))
    gamma = float(grid[best])
    if upper > 0:
        lo, hi = float(grid[max(0, best - 1)]), float(grid[min(len(grid) - 1, best + 1)])
        hi = upper if best == len(grid) - 1 else hi
        if hi > lo:
            res = minimize_scalar(sse, bounds=(lo, hi), method="bounded")
            if float(res.fun) <= sse(gamma):
                gamma = float(res.x)
    k, b, _ = _line(np.log(t - gamma), y)
    if not k > 0:
        raise ValueError(f"log-log survival does not rise with time (slope {k:.3g})")
    return WeibullParams(k=k, lam=float(math.exp(-b / k)), gamma=gamma)


def supply_pressure(matrix: np.ndarray) -> np.ndarray:
    """Orders placed in the last 5 minutes per idle courier (+1): > 1 means couriers short."""
    return np.asarray(matrix[:, column("orders_per_min_5")] * 5.0
                      / (np.maximum(matrix[:, column("idle_couriers_5")], 0.0) + 1.0))


@dataclass(frozen=True, slots=True, kw_only=True)
class WeibullGroups:
    """One Weibull per (heuristic-duration bin, supply-pressure bin); ``predict_batch`` gives
    the group's median and its 10% and 90% quantiles."""

    point_edges: tuple[float, ...]
    pressure_edges: tuple[float, ...]
    params: tuple[WeibullParams, ...]
    """Row-major over (point bin, pressure bin)."""
    relative: bool = True
    """Fitted on duration / heuristic duration (then scaled back per row), else on seconds."""
    name: str = "weibull"

    def groups(self, matrix: np.ndarray) -> np.ndarray:
        pb = np.searchsorted(np.asarray(self.point_edges), no_queue_point(matrix), side="right")
        sb = np.searchsorted(np.asarray(self.pressure_edges), supply_pressure(matrix),
                             side="right")
        return np.asarray(pb * (len(self.pressure_edges) + 1) + sb)

    def _arrays(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        g = self.groups(matrix)
        k = np.array([p.k for p in self.params])[g]
        lam = np.array([p.lam for p in self.params])[g]
        gamma = np.array([p.gamma for p in self.params])[g]
        return k, lam, gamma

    def predict_batch(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        k, lam, gamma = self._arrays(matrix)
        unit = no_queue_point(matrix) if self.relative else 1.0
        return (unit * weibull_quantile(0.5, k, lam, gamma),
                unit * weibull_quantile(0.1, k, lam, gamma),
                unit * weibull_quantile(0.9, k, lam, gamma))

    def cdf(self, matrix: np.ndarray, total_s: np.ndarray) -> np.ndarray:
        """The probability integral transform of each realised duration (for calibration)."""
        k, lam, gamma = self._arrays(matrix)
        unit = no_queue_point(matrix) if self.relative else 1.0
        return weibull_cdf(total_s / unit, k, lam, gamma)


def fit_weibull_groups(train: EtaTable, *, point_bins: int = 6, pressure_bins: int = 3,
                       min_group: int = 100, bucket: float = BUCKET_S,
                       relative: bool = True) -> WeibullGroups:
    """Quantile bin edges on ``train``, one interval-regression fit per group; a group with
    fewer than ``min_group`` deliveries (or no usable fit) takes its point bin's pooled fit,
    and a point bin without one the whole table's.

    ``relative``: each group fits duration / heuristic duration, with buckets of ``bucket``
    seconds at the table's median heuristic duration (6 minutes at a typical delivery), so a
    group's spread is not smeared by the spread of its heuristic durations."""
    qs = np.linspace(0, 1, point_bins + 1)[1:-1]
    h, p = no_queue_point(train.matrix), supply_pressure(train.matrix)
    point_edges = tuple(float(x) for x in np.unique(np.quantile(h, qs)))
    pressure_edges = tuple(float(x) for x in np.unique(
        np.quantile(p, np.linspace(0, 1, pressure_bins + 1)[1:-1])))
    shell = WeibullGroups(point_edges=point_edges, pressure_edges=pressure_edges, params=())
    g = shell.groups(train.matrix)
    width = len(pressure_edges) + 1
    y = train.total_s / h if relative else train.total_s
    bucket = bucket / float(np.median(h)) if relative else bucket
    overall = fit_interval_regression(y, bucket)
    params: list[WeibullParams] = []
    for pb in range(len(point_edges) + 1):
        in_bin = (g // width) == pb
        pooled = _fit_or(y[in_bin], min_group, bucket, overall)
        for sb in range(width):
            params.append(_fit_or(y[g == pb * width + sb], min_group, bucket, pooled))
    return WeibullGroups(point_edges=point_edges, pressure_edges=pressure_edges,
                         params=tuple(params), relative=relative)


def _fit_or(durations: np.ndarray, min_group: int, bucket: float,
            fallback: WeibullParams) -> WeibullParams:
    if len(durations) < min_group:
        return fallback
    try:
        return fit_interval_regression(durations, bucket)
    except ValueError:
        return fallback
