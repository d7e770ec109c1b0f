"""Cluster-robust regression for designs whose units share something: a courier's orders
(courier A/B), a switchback window's orders, a market's periods (market A/B).

The effect is the coefficient of the treatment indicator in a weighted least-squares fit
(weights = the ratio metric's denominators, so the coefficient is the difference of
``sum(numerator) / sum(denominator)`` between arms) with fixed effects and an optional
covariate, and its standard error is the Liang-Zeger sandwich summed over clusters with the
CR1 small-sample factor ``G/(G-1) (N-1)/(N-K)`` and a t reference on ``G - 1`` degrees of
freedom: ``statsmodels`` WLS with ``cov_type="cluster"``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from statsmodels.regression.linear_model import WLS

from lastmile.core.errors import InvalidInput

Floats = NDArray[np.float64]

MIN_CLUSTERS = 30
"""Below this many clusters the sandwich understates the variance and the t on ``G - 1``
degrees of freedom only partly corrects it (Cameron and Miller, "A practitioner's guide to
cluster-robust inference", 2015, section VI: problems appear from 20-50 clusters down), so
the analysis warns ``too_few_clusters``."""


def codes(labels: Sequence[object]) -> NDArray[np.int64]:
    """Integer codes ``0..k-1`` of ``labels`` (first-seen order does not matter: sorted)."""
    _, inverse = np.unique(np.asarray([str(v) for v in labels]), return_inverse=True)
    return np.asarray(inverse, dtype=np.int64).reshape(-1)


def dummies(labels: Sequence[object], *, base: object | None = None) -> Floats:
    """One-hot columns of ``labels``, one per level except ``base`` (default: the first
    level in sorted order), which the intercept absorbs; zero columns for one level."""
    text = [str(v) for v in labels]
    levels = sorted(set(text))
    dropped = levels[0] if base is None else str(base)
    kept = {lv: i for i, lv in enumerate(lv for lv in levels if lv != dropped)}
    out = np.zeros((len(text), len(kept)))
    for row, lv in enumerate(text):
        col = kept.get(lv)
        if col is not None:
            out[row, col] = 1.0
    return out


def cluster_fit(*, y: Floats, treatment: Floats, clusters: Sequence[object],
                weights: Floats | None = None, controls: Floats | None = None
                ) -> tuple[float, float, float, int]:
    """Fit ``y = a + tau * treatment + controls @ b`` (weighted) with cluster-robust errors;
    returns ``(tau, se, df, G)`` with ``df = G - 1``. Needs >= 2 clusters; a constant
    outcome gives se 0."""
    groups = codes(clusters)
    g = int(groups.max()) + 1 if len(groups) else 0
    if g < 2:
        raise InvalidInput("too_few_clusters",
                           f"cluster-robust errors need >= 2 clusters (got {g})",
                           field="observations")
    cols = [np.ones(len(y)), treatment]
    if controls is not None and controls.shape[1]:
        cols.extend(controls.T)
    x = np.column_stack(cols)
    if len(y) <= x.shape[1]:  # statsmodels' cluster covariance divides by n - k
        raise InvalidInput("too_few_units",
                           f"a fit of {x.shape[1]} parameters needs more than {x.shape[1]} "
                           f"observations (got {len(y)})", field="observations")
    w = np.ones(len(y)) if weights is None else weights
    fit = WLS(y, x, weights=w).fit(cov_type="cluster", cov_kwds={"groups": groups},
                                       use_t=True)
    tau = float(fit.params[1])
    se = float(np.sqrt(max(float(fit.cov_params()[1, 1]), 0.0)))
    df = float(getattr(fit, "df_resid_inference", g - 1))
    return tau, se, df, g
