"""Unit-level estimators for an A/B test whose units are independent: Welch's difference in
means, the delta method for ratio metrics, and CUPED (Deng, Xu, Kohavi and Walker 2013).

Each takes the two arms as numpy arrays and returns an ``Estimate``; neither arm may have
fewer than 2 units (a variance needs two).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from lastmile.core.errors import InvalidInput
from lastmile.core.experiments.estimates import Estimate

Floats = NDArray[np.float64]


def _need_two(n: int, arm: str) -> None:
    if n < 2:
        raise InvalidInput("too_few_units",
                           f"arm {arm!r} needs >= 2 units for a variance (got {n})",
                           field="observations")


def welch(control: Floats, variant: Floats, *, method: str = "welch") -> Estimate:
    """Difference in means with Welch's unequal-variance standard error and the
    Welch-Satterthwaite degrees of freedom (what ``scipy.stats.ttest_ind(equal_var=False)``
    computes). Two constant arms give se 0 and df None."""
    nc, nv = len(control), len(variant)
    _need_two(nc, "control")
    _need_two(nv, "variant")
    mc, mv = float(control.mean()), float(variant.mean())
    qc, qv = float(control.var(ddof=1)) / nc, float(variant.var(ddof=1)) / nv
    se = math.sqrt(qc + qv)
    df = (qc + qv) ** 2 / (qc**2 / (nc - 1) + qv**2 / (nv - 1)) if se > 0 else None
    return Estimate(effect=mv - mc, se=se, df=df, control_mean=mc, variant_mean=mv,
                    n_control=nc, n_variant=nv, method=method, n_sequential=nc + nv)


def _ratio_and_variance(num: Floats, den: Floats) -> tuple[float, float]:
    """``sum(num) / sum(den)`` and its delta-method variance:
    ``(var_y / mx^2 - 2 my cov_xy / mx^3 + my^2 var_x / mx^4) / n``."""
    n = len(num)
    mx, my = float(den.mean()), float(num.mean())
    cov = np.cov(num, den, ddof=1)
    vy, vx, cxy = float(cov[0, 0]), float(cov[1, 1]), float(cov[0, 1])
    var = (vy / mx**2 - 2 * my * cxy / mx**3 + my**2 * vx / mx**4) / n
    return my / mx, max(var, 0.0)


def ratio_delta(num_control: Floats, den_control: Floats, num_variant: Floats,
                den_variant: Floats) -> Estimate:
    """Difference of two ratio metrics ``sum(numerator) / sum(denominator)`` (e.g. minutes
    per order over consumers) with delta-method standard errors (Deng, Knoblich and Lu
    2018), normal reference. The arms are independent, so the variances add."""
    nc, nv = len(num_control), len(num_variant)
    _need_two(nc, "control")
    _need_two(nv, "variant")
    rc, vc = _ratio_and_variance(num_control, den_control)
    rv, vv = _ratio_and_variance(num_variant, den_variant)
    return Estimate(effect=rv - rc, se=math.sqrt(vc + vv), df=None, control_mean=rc,
                    variant_mean=rv, n_control=nc, n_variant=nv, method="delta",
                    n_sequential=nc + nv)


def cuped_theta(y: Floats, x: Floats) -> float:
    """CUPED's ``theta = cov(x, y) / var(x)`` (0 when the covariate is constant)."""
    vx = float(x.var(ddof=1))
    if vx == 0:
        return 0.0
    return float(np.cov(x, y, ddof=1)[0, 1]) / vx


def cuped(control: Floats, control_x: Floats, variant: Floats, variant_x: Floats) -> Estimate:
    """Welch on ``y - theta (x - mean(x))``, with ``x`` the unit's pre-experiment value and
    ``theta`` pooled over both arms (pooling keeps the adjustment independent of the
    assignment, so the estimate stays unbiased). The reported means are the raw ones; the
    effect and its error are the adjusted ones (their variance shrinks by ``1 - corr^2``)."""
    y = np.concatenate([control, variant])
    x = np.concatenate([control_x, variant_x])
    theta = cuped_theta(y, x)
    mx = float(x.mean())
    adj = welch(control - theta * (control_x - mx), variant - theta * (variant_x - mx),
                method="cuped")
    return Estimate(effect=adj.effect, se=adj.se, df=adj.df, control_mean=float(control.mean()),
                    variant_mean=float(variant.mean()), n_control=adj.n_control,
                    n_variant=adj.n_variant, method="cuped", n_sequential=adj.n_sequential)
