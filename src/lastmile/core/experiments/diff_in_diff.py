"""Market A/B: difference-in-differences on market-level pre/post means with stratum fixed
effects, errors robust across markets; and the parallel-trends check on the pre-periods.

Each market's outcome is collapsed to ``delta_m = mean_post_m - mean_pre_m`` (means weighted
by the ratio metric's denominators), and ``delta_m = a + tau * treated_m + d_{s(m)}`` is fitted
with one dummy per stratum but the first, clustered by market (one row per market: CR1 with
``M - 1`` degrees of freedom). In a balanced panel this is the two-way fixed-effects
estimate ``y_mt = a_m + d_{s(m),t} + tau * D_mt``; collapsing first keeps the errors right
under serial correlation of a market's periods (Bertrand, Duflo and Mullainathan, "How much
should we trust differences-in-differences estimates?", 2004, section V.C) and keeps the fit
to M rows. Seed 003 L952: stratify, diff-in-diff, check parallel trends.

The parallel-trends check fits each market's least-squares slope over its pre-periods (by
``time_s``) and tests, the same way, that treated and control slopes are equal; it needs at
least two distinct pre-period times.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from lastmile.core.errors import InvalidInput
from lastmile.core.experiments.clustered import cluster_fit, dummies
from lastmile.core.experiments.estimates import Estimate, two_sided_p
from lastmile.core.experiments.observations import Observation

Floats = NDArray[np.float64]


def _mean(obs: Sequence[Observation]) -> float:
    return sum(o.value for o in obs) / sum(o.denominator for o in obs)


def _cell_means(keys: NDArray[np.int64], value: Floats, den: Floats, size: int) -> Floats:
    """Denominator-weighted mean per key (NaN for a key with no row)."""
    num = np.bincount(keys, weights=value, minlength=size)
    tot = np.bincount(keys, weights=den, minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(num / tot, dtype=float)


def _pre_slopes(pre: Sequence[Observation], markets: dict[str, int]) -> Floats:
    """Least-squares slope per week of each market's per-period means over its pre-periods
    (NaN for a market with fewer than two distinct pre times)."""
    timed = [o for o in pre if o.time_s is not None]
    times = sorted({o.time_s for o in timed if o.time_s is not None})
    slot = {t: i for i, t in enumerate(times)}
    m = np.array([markets[o.unit] for o in timed], dtype=np.int64)
    k = np.array([slot[o.time_s] for o in timed if o.time_s is not None], dtype=np.int64)
    means = _cell_means(m * len(times) + k, np.array([o.value for o in timed]),
                        np.array([o.denominator for o in timed]),
                        len(markets) * len(times)).reshape(len(markets), len(times))
    weeks = np.array(times) / (7 * 86400.0)
    seen = ~np.isnan(means)
    cnt = seen.sum(axis=1)
    tw = np.where(seen, weeks, 0.0)
    t_bar = tw.sum(axis=1) / np.maximum(cnt, 1)
    y_bar = np.where(seen, means, 0.0).sum(axis=1) / np.maximum(cnt, 1)
    dt = np.where(seen, weeks - t_bar[:, None], 0.0)
    dy = np.where(seen, means - y_bar[:, None], 0.0)
    sxx = (dt * dt).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((cnt >= 2) & (sxx > 0), (dt * dy).sum(axis=1) / sxx, np.nan)


def parallel_trends_p(pre: Sequence[Observation], *, variant: str) -> float | None:
    """p-value that treated and control markets had the same pre-period trend (per-market
    slopes compared with stratum fixed effects, robust across markets); None when fewer
    than two distinct pre-period times, or fewer than 2 markets per arm, allow a test."""
    markets: dict[str, int] = {}
    first: dict[str, Observation] = {}
    for o in pre:
        markets.setdefault(o.unit, len(markets))
        first.setdefault(o.unit, o)
    slopes = _pre_slopes(pre, markets)
    units = [u for u in markets if not np.isnan(slopes[markets[u]])]
    treat = np.array([first[u].variant == variant for u in units], dtype=float)
    if treat.sum() < 2 or (1 - treat).sum() < 2:
        return None
    tau, se, df, _g = cluster_fit(y=np.array([slopes[markets[u]] for u in units]),
                                  treatment=treat, clusters=units,
                                  controls=dummies([first[u].stratum or "" for u in units]))
    if se == 0:
        return 1.0 if tau == 0 else 0.0
    return two_sided_p(tau / se, df)


def diff_in_diff(obs: Sequence[Observation], *, control: str, variant: str
                 ) -> tuple[Estimate, float | None]:
    """The diff-in-diff estimate of ``variant`` against ``control`` (``obs`` holds only
    those two arms) and the parallel-trends p-value (None: untestable). Every observation
    needs a ``period``; every market needs pre and post observations. The reported means
    are the post-period ones; ``relative`` divides by the treated arm's counterfactual
    (``variant_mean - effect``)."""
    missing = [o.unit for o in obs if o.period is None]
    if missing:
        raise InvalidInput("period_missing",
                           f"market A/B observations need period 'pre' or 'post' "
                           f"(missing for {len(missing)}, e.g. unit {missing[0]})",
                           field="period")
    markets: dict[str, int] = {}
    first: dict[str, Observation] = {}
    for o in obs:
        markets.setdefault(o.unit, len(markets))
        first.setdefault(o.unit, o)
    m = np.array([markets[o.unit] for o in obs], dtype=np.int64)
    post = np.array([o.period == "post" for o in obs], dtype=np.int64)
    means = _cell_means(2 * m + post, np.array([o.value for o in obs]),
                        np.array([o.denominator for o in obs]), 2 * len(markets))
    means = means.reshape(len(markets), 2)
    gaps = [u for u in markets if np.isnan(means[markets[u]]).any()]
    if gaps:
        raise InvalidInput("did_cell_missing",
                           f"every market needs pre and post observations (market {gaps[0]} "
                           f"lacks one of them; {len(gaps)} such markets)", field="period")
    units = list(markets)
    treat = np.array([first[u].variant == variant for u in units], dtype=float)
    if treat.sum() < 1 or (1 - treat).sum() < 1:
        raise InvalidInput("too_few_units", "diff-in-diff needs treated and control markets",
                           field="observations")
    tau, se, df, _g = cluster_fit(y=means[:, 1] - means[:, 0], treatment=treat, clusters=units,
                                  controls=dummies([first[u].stratum or "" for u in units]))
    post_c = [o for o in obs if o.period == "post" and o.variant != variant]
    post_v = [o for o in obs if o.period == "post" and o.variant == variant]
    mv = _mean(post_v)
    est = Estimate(effect=tau, se=se, df=df, control_mean=_mean(post_c), variant_mean=mv,
                   n_control=int(len(units) - treat.sum()), n_variant=int(treat.sum()),
                   method="diff_in_diff", n_sequential=len(units), baseline=mv - tau)
    p_trend = parallel_trends_p([o for o in obs if o.period == "pre"], variant=variant)
    return est, p_trend
