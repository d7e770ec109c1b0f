"""LightGBM ETA with quantile outputs, and the two stages (checkout first, explore on top).

Checkout model: three LightGBM boosters with the quantile (pinball) loss at 10%, 50% and 90%
on the click-to-door duration's excess over the heuristic (the boosters learn the
correction; trees approximate an identity on the heuristic poorly). Point = the 50% quantile (it minimises absolute error). The
three are sorted per row (quantile regressions can cross) and the interval is then
conformalised on a calibration slice the boosters never saw (split conformal quantile
regression, Romano et al. 2019, one side at a time): the 10% bound moves by the 90% quantile
of ``p10 - y`` and the 90% bound by the 90% quantile of ``y - p90``, so each tail holds about
10% of held-out deliveries whatever the boosters' own calibration.

Explore head (the seed's sequential training, 004 L397-419): the checkout boosters are
frozen; the explore stage fills the unknown cart with the merchant's typical cart (median
items and subtotal per merchant in training, else overall) and has its own conformal
offsets, fitted on the calibration slice with imputed carts. For the same order the served
checkout point never leaves ``explore point +- tolerance_s`` (``TwoStageEta.checkout``).

Pure: training and inference take arrays; the caller reads and writes model text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np

from lastmile.core.eta.engine import no_queue_point
from lastmile.core.eta.features import (
    NUMERIC_COLUMNS,
    EtaEstimate,
    EtaFeatures,
    numeric_matrix,
)
from lastmile.core.eta.table import EtaTable, column
from lastmile.core.eta.weibull import supply_pressure

QUANTILES = (0.1, 0.5, 0.9)
DERIVED_COLUMNS = ("heuristic_s", "orders_30min", "idle_now", "supply_pressure",
                   "food_minus_courier_s", "reach_excess_s", "reach_3_excess_s",
                   "queue_point_s", "queue_excess_s", "ahead_per_courier",
                   "assign_delay_30min_s", "pickup_delay_30min_s")
BASES = ("heuristic", "queue")
"""What the boosters learn the excess over: the heuristic's no-queue point, or the queue's
point (``queue_point_s``: the greedy queue's pickup plus the trip; the heuristic's where the
queue is unknown)."""
TOLERANCE_S = 300.0
"""Explore and checkout points of one order never differ by more than this (5 minutes)."""
DEFAULT_PARAMS: Mapping[str, Any] = {
    "learning_rate": 0.15, "num_leaves": 7, "min_data_in_leaf": 40,
    "feature_fraction": 0.9, "lambda_l2": 1.0, "num_threads": 1, "verbose": -1,
    "seed": 0, "deterministic": True, "force_row_wise": True,
}
ROUNDS = 50  # x 7 leaves: as accurate as 300 x 31 (docs/eta.md "Models"), ~15x faster

_ITEMS, _SUBTOTAL = column("items"), column("subtotal_minor")
_PREP = column("prep_mean_s")
_HEURISTIC = len(NUMERIC_COLUMNS)  # the first derived column
_ORDERS = [column(f"orders_per_min_{i}") for i in range(6)]
_REACH, _REACH_3 = column("courier_reach_s"), column("courier_reach_3_s")
_QUEUE = len(NUMERIC_COLUMNS) + DERIVED_COLUMNS.index("queue_point_s")
_BASE_COLUMN = {"heuristic": _HEURISTIC, "queue": _QUEUE}
_ASSIGN = [column(f"assign_delay_s_{i}") for i in range(6)]
_PICKUP = [column(f"pickup_delay_s_{i}") for i in range(6)]


def _nanmean_rows(x: np.ndarray) -> np.ndarray:
    """Mean of each row's known values (NaN when none is known), without warnings."""
    known = ~np.isnan(x)
    n = known.sum(axis=1)
    return np.where(n > 0, np.where(known, x, 0.0).sum(axis=1) / np.maximum(n, 1), np.nan)


def model_matrix(matrix: np.ndarray) -> np.ndarray:
    """``NUMERIC_COLUMNS`` plus ``DERIVED_COLUMNS``: the heuristic duration, orders in the last
    30 minutes, idle couriers now, supply pressure, prep minus the courier's pickup leg, and
    how much later than the heuristic's pickup the first (third) courier's reach makes it,
    ``max(prep, reach) - max(prep, 300)`` (NaN when the reach is unknown); the queue's point
    (its pickup plus the trip, the heuristic where unknown) and its excess over the
    heuristic, the orders ahead nearby per courier on shift, and the last 30 minutes' mean
    assignment and pickup delays (ratios, sums and maxima trees cannot form by splitting)."""
    h = no_queue_point(matrix)
    prep = matrix[:, _PREP]
    floor = np.maximum(prep, 300.0)
    queue = matrix[:, column("queue_pickup_s")] + matrix[:, column("travel_s")]
    queue = np.where(np.isnan(queue), h, queue)
    extra = np.column_stack([
        h, matrix[:, _ORDERS].sum(axis=1) * 5.0, matrix[:, column("idle_couriers_5")],
        supply_pressure(matrix), prep - 300.0,
        np.maximum(prep, matrix[:, _REACH]) - floor,  # NaN reach stays NaN
        np.maximum(prep, matrix[:, _REACH_3]) - floor,
        queue, queue - h,
        matrix[:, column("orders_ahead_near")] / (matrix[:, column("couriers_on_shift")] + 1.0),
        _nanmean_rows(matrix[:, _ASSIGN]), _nanmean_rows(matrix[:, _PICKUP]),
    ])
    return np.hstack([matrix, extra])


def _conformal_offsets(p10: np.ndarray, p90: np.ndarray, y: np.ndarray,
                       tail: float = 0.1) -> tuple[float, float]:
    """How far to lower p10 and raise p90 (negative narrows) so that ``tail`` of ``y`` falls
    below and ``1 - 2 * tail`` inside. The lower offset is the finite-sample corrected
    ``1 - tail`` quantile of ``p10 - y``; when fewer than ``tail`` fall below it anyway (a
    hard floor: most MDRP orders arrive exactly at food-ready plus the drive), the upper
    bound takes the rest so the window still holds ``1 - 2 * tail``."""
    n = len(y)
    if n == 0:
        return 0.0, 0.0
    level = min(1.0, math.ceil((n + 1) * (1 - tail)) / n)
    lower = float(np.quantile(p10 - y, level, method="higher"))
    below = float(np.mean(y < p10 - lower))
    upper_level = min(1.0, math.ceil((n + 1) * (1 - (2 * tail - below))) / n)
    return lower, float(np.quantile(y - p90, upper_level, method="higher"))


@dataclass(frozen=True, slots=True, kw_only=True)
class QuantileGbm:
    """The frozen checkout model: three boosters and its conformal offsets."""

    boosters: tuple[lgb.Booster, lgb.Booster, lgb.Booster]
    lower_offset_s: float = 0.0
    upper_offset_s: float = 0.0
    name: str = "lightgbm"
    base: str = "heuristic"
    """One of ``BASES``: what the boosters' outputs are added to."""

    def __post_init__(self) -> None:
        if self.base not in BASES:
            raise ValueError(f"base must be one of {BASES} (got {self.base!r})")

    def raw(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(p10, p50, p90) sorted per row, before the conformal offsets."""
        x = model_matrix(matrix)
        base = x[:, _BASE_COLUMN[self.base]]
        q = np.sort(np.column_stack([base + np.asarray(b.predict(x, num_threads=1))
                                     for b in self.boosters]), axis=1)
        return q[:, 0], q[:, 1], q[:, 2]

    def predict_batch(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        p10, p50, p90 = self.raw(matrix)
        return _window(p10, p50, p90, self.lower_offset_s, self.upper_offset_s)


def _window(p10: np.ndarray, p50: np.ndarray, p90: np.ndarray, lower: float,
            upper: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point and interval with offsets, kept ordered and non-negative."""
    point = np.maximum(p50, 0.0)
    return point, np.clip(p10 - lower, 0.0, point), np.maximum(p90 + upper, point)


def train_quantile_gbm(fit: EtaTable, calibrate: EtaTable, *, rounds: int = ROUNDS,
                       params: Mapping[str, Any] | None = None,
                       base: str = "heuristic") -> QuantileGbm:
    """Boosters on ``fit``; conformal offsets on ``calibrate`` (disjoint deliveries, ideally
    whole other days or instances). Deterministic for the same tables."""
    if base not in BASES:
        raise ValueError(f"base must be one of {BASES} (got {base!r})")
    x = model_matrix(fit.matrix)
    boosters = tuple(
        lgb.train({**DEFAULT_PARAMS, **(params or {}), "objective": "quantile", "alpha": a},
                  lgb.Dataset(x, label=fit.total_s - x[:, _BASE_COLUMN[base]],
                              free_raw_data=True),
                  num_boost_round=rounds)
        for a in QUANTILES)
    model = QuantileGbm(boosters=(boosters[0], boosters[1], boosters[2]), base=base)
    p10, _, p90 = model.raw(calibrate.matrix)
    lower, upper = _conformal_offsets(p10, p90, calibrate.total_s)
    return QuantileGbm(boosters=model.boosters, lower_offset_s=lower, upper_offset_s=upper,
                       base=base)


@dataclass(frozen=True, slots=True, kw_only=True)
class TwoStageEta:
    """Checkout model (frozen) + the explore head's parameters."""

    checkout_model: QuantileGbm
    typical_cart: Mapping[str, tuple[float, float]]
    """merchant id -> (items, subtotal_minor) medians of its training orders."""
    overall_cart: tuple[float, float]
    explore_lower_offset_s: float = 0.0
    explore_upper_offset_s: float = 0.0
    tolerance_s: float = TOLERANCE_S
    name: str = "lightgbm"
    meta: Mapping[str, Any] = field(default_factory=dict)

    def impute_cart(self, matrix: np.ndarray, merchants: np.ndarray) -> np.ndarray:
        """The explore rows as checkout rows: cart columns set to the merchant's typical cart."""
        out = matrix.copy()
        carts = np.array([self.typical_cart.get(str(m), self.overall_cart) for m in merchants],
                         dtype=np.float64).reshape(len(merchants), 2)
        out[:, _ITEMS], out[:, _SUBTOTAL] = carts[:, 0], carts[:, 1]
        return out

    def explore(self, matrix: np.ndarray,
                merchants: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Explore ETA (cart columns ignored): point, p10, p90 in seconds."""
        p10, p50, p90 = self.checkout_model.raw(self.impute_cart(matrix, merchants))
        return _window(p10, p50, p90, self.explore_lower_offset_s, self.explore_upper_offset_s)

    def checkout(self, matrix: np.ndarray,
                 merchants: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Checkout ETA; rows without a cart (NaN items) fall back to the explore estimate.

        The point is clipped into ``explore point +- tolerance_s`` and the window shifted with
        it, so the two stages of one order never disagree by more than ``tolerance_s``."""
        e_point, e10, e90 = self.explore(matrix, merchants)
        has = ~np.isnan(matrix[:, _ITEMS])
        if not has.any():
            return e_point, e10, e90
        c_point, c10, c90 = self.checkout_model.predict_batch(matrix[has])
        clipped = np.clip(c_point, e_point[has] - self.tolerance_s,
                          e_point[has] + self.tolerance_s)
        shift = clipped - c_point
        point, p10, p90 = e_point.copy(), e10.copy(), e90.copy()
        point[has] = clipped
        p10[has] = np.clip(c10 + shift, 0.0, clipped)
        p90[has] = np.maximum(c90 + shift, clipped)
        return point, p10, p90

    def estimates(self, rows: Sequence[EtaFeatures]) -> list[EtaEstimate]:
        """One ``EtaEstimate`` per row, at the row's own stage (explore rows have no cart),
        named ``self.name``: the serving path for features built one by one."""
        matrix = numeric_matrix(list(rows))
        merchants = np.array([r.merchant_id for r in rows], dtype=str)
        point, p10, p90 = self.checkout(matrix, merchants)
        return [EtaEstimate(point_s=float(a), p10_s=float(b), p90_s=float(c), model=self.name)
                for a, b, c in zip(point, p10, p90, strict=True)]

    def predict_batch(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The learned-model Protocol (no merchant ids: typical carts fall back to overall)."""
        return self.checkout(matrix, np.full(len(matrix), "", dtype=str))


def typical_carts(table: EtaTable) -> tuple[dict[str, tuple[float, float]], tuple[float, float]]:
    """Median (items, subtotal_minor) per merchant over rows with a cart, and overall."""
    has = ~np.isnan(table.matrix[:, _ITEMS])
    if not has.any():
        return {}, (math.nan, math.nan)
    items, sub, who = table.matrix[has, _ITEMS], table.matrix[has, _SUBTOTAL], table.merchant[has]
    per = {str(m): (float(np.median(items[who == m])), float(np.median(sub[who == m])))
           for m in np.unique(who)}
    return per, (float(np.median(items)), float(np.median(sub)))


def train_two_stage(fit: EtaTable, calibrate: EtaTable, *, rounds: int = ROUNDS,
                    tolerance_s: float = TOLERANCE_S,
                    params: Mapping[str, Any] | None = None,
                    base: str = "heuristic") -> TwoStageEta:
    """Checkout first (boosters + offsets), frozen; then the explore head's carts and offsets.
    ``params`` override ``DEFAULT_PARAMS`` (e.g. ``num_leaves``); ``base`` (``BASES``) is
    what the boosters learn the excess over."""
    checkout_model = train_quantile_gbm(fit, calibrate, rounds=rounds, params=params,
                                        base=base)
    carts, overall = typical_carts(fit)
    head = TwoStageEta(checkout_model=checkout_model, typical_cart=carts, overall_cart=overall,
                       tolerance_s=tolerance_s)
    p10, _, p90 = checkout_model.raw(head.impute_cart(calibrate.matrix, calibrate.merchant))
    lower, upper = _conformal_offsets(p10, p90, calibrate.total_s)
    return TwoStageEta(checkout_model=checkout_model, typical_cart=carts, overall_cart=overall,
                       explore_lower_offset_s=lower, explore_upper_offset_s=upper,
                       tolerance_s=tolerance_s)


MODEL_FORMAT = "lastmile-eta-two-stage"
MODEL_FORMAT_VERSION = 2
"""2: the queue-ahead columns and a choice of base (``target``)."""
_TARGETS = {"heuristic": "total_s - heuristic_s", "queue": "total_s - queue_point_s"}
BOOSTER_NAMES = ("p10", "p50", "p90")


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def to_parts(model: TwoStageEta) -> tuple[dict[str, Any], dict[str, str]]:
    """The model as JSON-able metadata and one LightGBM text per booster (by
    ``BOOSTER_NAMES``); ``model.meta`` (name, version, training data...) is kept as is."""
    meta: dict[str, Any] = {
        **model.meta,
        "format": MODEL_FORMAT, "format_version": MODEL_FORMAT_VERSION, "name": model.name,
        "features": [*NUMERIC_COLUMNS, *DERIVED_COLUMNS], "quantiles": list(QUANTILES),
        "target": _TARGETS[model.checkout_model.base], "tolerance_s": model.tolerance_s,
        "checkout_offsets_s": [model.checkout_model.lower_offset_s,
                               model.checkout_model.upper_offset_s],
        "explore_offsets_s": [model.explore_lower_offset_s, model.explore_upper_offset_s],
        "typical_cart": {m: list(c) for m, c in sorted(model.typical_cart.items())},
        "overall_cart": [_finite_or_none(v) for v in model.overall_cart],
    }
    texts = {n: b.model_to_string() for n, b in zip(BOOSTER_NAMES, model.checkout_model.boosters,
                                                     strict=True)}
    return meta, texts


def from_parts(meta: Mapping[str, Any], texts: Mapping[str, str]) -> TwoStageEta:
    """Inverse of ``to_parts``; raises ValueError naming what is wrong with the metadata."""
    if meta.get("format") != MODEL_FORMAT or meta.get("format_version") != MODEL_FORMAT_VERSION:
        raise ValueError(f"model format must be {MODEL_FORMAT} v{MODEL_FORMAT_VERSION} (got "
                         f"{meta.get('format')} v{meta.get('format_version')})")
    if list(meta.get("features", [])) != [*NUMERIC_COLUMNS, *DERIVED_COLUMNS]:
        raise ValueError("model features differ from this code's NUMERIC_COLUMNS + "
                         "DERIVED_COLUMNS: retrain it")
    missing = [n for n in BOOSTER_NAMES if n not in texts]
    if missing:
        raise ValueError(f"model lacks boosters {missing}")
    base = next((k for k, v in _TARGETS.items() if v == meta.get("target")), None)
    if base is None:
        raise ValueError(f"model target must be one of {sorted(_TARGETS.values())} "
                         f"(got {meta.get('target')!r})")
    b = tuple(lgb.Booster(model_str=texts[n]) for n in BOOSTER_NAMES)
    lo, hi = (float(v) for v in meta["checkout_offsets_s"])
    elo, ehi = (float(v) for v in meta["explore_offsets_s"])
    overall = tuple(math.nan if v is None else float(v) for v in meta["overall_cart"])
    return TwoStageEta(
        checkout_model=QuantileGbm(boosters=(b[0], b[1], b[2]), lower_offset_s=lo,
                                   upper_offset_s=hi, base=base),
        typical_cart={str(m): (float(c[0]), float(c[1]))
                      for m, c in meta["typical_cart"].items()},
        overall_cart=(overall[0], overall[1]), explore_lower_offset_s=elo,
        explore_upper_offset_s=ehi, tolerance_s=float(meta["tolerance_s"]),
        name=str(meta.get("name", "lightgbm")),
        meta={k: meta[k] for k in ("version", "trained_on", "trained_at_utc") if k in meta})
