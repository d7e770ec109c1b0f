"""One arm against control as an estimate with a standard error, and the ``Effect`` built from
it: the interval and p-value (Student t with the estimator's degrees of freedom, or normal),
the relative change, and the always-valid interval of ``sequential``.

Every estimator (Welch, delta method, CUPED, cluster-robust OLS, diff-in-diff, paired t)
returns an ``Estimate``; only this module turns one into an ``Effect``, so intervals and
p-values are computed one way for every design.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import special

from lastmile.core.experiments.observations import Effect
from lastmile.core.experiments.sequential import DEFAULT_TUNING_N, msprt


@dataclass(frozen=True, slots=True, kw_only=True)
class Estimate:
    """An effect (variant minus control, in the metric's unit) and its standard error."""

    effect: float
    se: float
    df: float | None
    """Degrees of freedom of the t reference distribution; ``None``: normal (large sample)."""
    control_mean: float
    variant_mean: float
    n_control: int
    n_variant: int
    method: str
    n_sequential: int
    """The sample size the always-valid interval accrues over (observations: units, or rows
    of a clustered design, whose per-row variance ``se**2 * n`` then carries the design
    effect); it scales the mixture against ``tuning_n``."""
    baseline: float | None = None
    """What ``relative`` divides by; ``None``: the control mean (diff-in-diff passes the
    treated arm's counterfactual mean)."""


def critical_value(alpha: float, df: float | None) -> float:
    """Two-sided critical value: ``t_{1-alpha/2, df}``, or the normal's when ``df`` is None."""
    # scipy.special's ufuncs: the same functions as scipy.stats' t and norm without their
    # per-call overhead (~1 ms each), which A/A runs of thousands of analyses feel.
    if df is None or math.isinf(df):
        return float(special.ndtri(1 - alpha / 2))
    return float(special.stdtrit(df, 1 - alpha / 2))


def two_sided_p(z: float, df: float | None) -> float:
    """Two-sided p-value of the statistic ``z`` (t with ``df``, or normal)."""
    if math.isnan(z):
        return float("nan")
    if df is None or math.isinf(df):
        return float(2 * special.ndtr(-abs(z)))
    return float(2 * special.stdtr(df, -abs(z)))


def to_effect(est: Estimate, *, variant: str, metric: str, alpha: float,
              tuning_n: int = DEFAULT_TUNING_N) -> Effect:
    """The ``Effect`` of ``est`` at level ``1 - alpha``. A zero standard error (both arms
    constant) gives a degenerate interval at the effect and p-value 1 when the effect is 0,
    else 0; NaN never leaks into the interval."""
    if est.se > 0:
        half = critical_value(alpha, est.df) * est.se
        p = two_sided_p(est.effect / est.se, est.df)
    else:
        half = 0.0
        p = 1.0 if est.effect == 0 else 0.0
    base = est.control_mean if est.baseline is None else est.baseline
    relative = est.effect / base if base != 0 else float("nan")
    seq = msprt(effect=est.effect, se=est.se, n=est.n_sequential, alpha=alpha,
                tuning_n=tuning_n)
    return Effect(
        variant=variant, metric=metric, control_mean=est.control_mean,
        variant_mean=est.variant_mean, effect=est.effect, relative=relative,
        ci=(est.effect - half, est.effect + half), p_value=p, n_control=est.n_control,
        n_variant=est.n_variant, method=est.method, sequential_ci=seq.ci,
        sequential_p_value=seq.p_value)
