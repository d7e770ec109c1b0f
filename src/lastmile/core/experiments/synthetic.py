"""Seeded synthetic experiments with a known truth, one generator per design: the A/A and
recovery checks of the statistics (tests, ``bench/experiments_stats.py``) and the default
simulation of ``lastmile experiment power``. Each takes a numpy ``Generator`` and returns
observations; the effect injected is additive on the per-unit value.

The clustered generators give units of a cluster a shared random shock (variance ``icc``
of the total): orders of one courier, or orders of one region x window that compete for the
same couriers, are correlated; that is the interference a naive per-order test ignores.
"""

from __future__ import annotations

import numpy as np

from lastmile.core.errors import InvalidInput
from lastmile.core.experiments.observations import CONTROL, Observation
from lastmile.core.experiments.paired import InterleavingCredit

TREATMENT = "treatment"
WEEK_S = 7 * 86400.0


def _arm(treated: bool) -> str:
    return TREATMENT if treated else CONTROL


def ab(rng: np.random.Generator, *, n: int, effect: float = 0.0, sd: float = 1.0,
       covariate_corr: float = 0.0, ratio: bool = False, treated_share: float = 0.5
       ) -> tuple[Observation, ...]:
    """``n`` independent units, each treated with probability ``treated_share``. With
    ``covariate_corr`` each unit has a pre-period covariate correlated that much with its
    outcome; with ``ratio`` each unit is a consumer with 1+ orders (denominator) and the
    value sums the orders' outcomes (the metric is per order)."""
    treated = rng.random(n) < treated_share
    if ratio:
        orders = rng.poisson(2.0, n) + 1.0
        person = rng.normal(0.0, sd, n)
        values = orders * (10.0 + person + effect * treated) + rng.normal(0, sd, n) * np.sqrt(orders)
        return tuple(Observation(unit=f"u{i}", variant=_arm(bool(treated[i])),
                                 value=float(values[i]), denominator=float(orders[i]))
                     for i in range(n))
    x = rng.normal(0.0, 1.0, n)
    e = rng.normal(0.0, 1.0, n)
    y = 10.0 + sd * (covariate_corr * x + np.sqrt(1 - covariate_corr**2) * e) + effect * treated
    return tuple(Observation(unit=f"u{i}", variant=_arm(bool(treated[i])), value=float(y[i]),
                             covariate=float(x[i]) if covariate_corr else None)
                 for i in range(n))


def clustered(rng: np.random.Generator, *, clusters: int, cluster_size: float, icc: float,
              effect: float = 0.0, sd: float = 1.0) -> tuple[Observation, ...]:
    """Courier A/B (or any cluster-randomised design): ``clusters`` clusters of Poisson
    ``cluster_size`` (at least 1) units, each cluster assigned as a whole; the units of a
    cluster share a shock of variance ``icc * sd^2``."""
    out: list[Observation] = []
    treated = rng.random(clusters) < 0.5
    sizes = rng.poisson(cluster_size - 1, clusters) + 1
    shocks = rng.normal(0.0, sd * np.sqrt(icc), clusters)
    for c in range(clusters):
        noise = rng.normal(0.0, sd * np.sqrt(1 - icc), sizes[c])
        for j in range(sizes[c]):
            out.append(Observation(unit=f"o{c}_{j}", variant=_arm(bool(treated[c])),
                                   value=float(10.0 + shocks[c] + noise[j] + effect * treated[c]),
                                   cluster=f"c{c}"))
    return tuple(out)


def switchback(rng: np.random.Generator, *, regions: int, windows: int,
               orders_per_window: float, icc: float, effect: float = 0.0, sd: float = 1.0
               ) -> tuple[Observation, ...]:
    """Orders in a switchback: every region x window is assigned at random; its orders share
    the window's shock (the fleet state they compete for); regions differ in level
    (stratum = region, cluster = ``region@window``)."""
    out: list[Observation] = []
    levels = rng.normal(0.0, 2.0 * sd, regions)
    for r in range(regions):
        for w in range(windows):
            t = bool(rng.random() < 0.5)
            k = int(rng.poisson(orders_per_window - 1)) + 1
            shock = rng.normal(0.0, sd * np.sqrt(icc))
            ys = 10.0 + levels[r] + shock + rng.normal(0.0, sd * np.sqrt(1 - icc), k) + effect * t
            cell = f"r{r}@w{w}"
            out.extend(Observation(unit=f"{cell}#{j}", variant=_arm(t), value=float(ys[j]),
                                   cluster=cell, stratum=f"r{r}", time_s=w * 3600.0)
                       for j in range(k))
    return tuple(out)


def market(rng: np.random.Generator, *, markets: int, pre: int, post: int,
           effect: float = 0.0, trend_gap: float = 0.0, sd: float = 1.0
           ) -> tuple[Observation, ...]:
    """Market A/B over weekly periods: markets in 3 strata by level (terciles), an equal
    number treated per stratum; common weekly shocks per stratum, market-specific noise;
    ``effect`` added to treated markets after the start, ``trend_gap`` per week to treated
    markets throughout (a parallel-trends violation)."""
    base = rng.normal(100.0, 20.0, markets)
    strata = np.searchsorted(np.quantile(base, [1 / 3, 2 / 3]), base)
    treated = np.zeros(markets, dtype=bool)
    for s in range(3):
        members = rng.permutation(np.nonzero(strata == s)[0])
        treated[members[: len(members) // 2]] = True
    weeks = pre + post
    shocks = rng.normal(0.0, 2.0 * sd, (3, weeks))
    t = np.arange(weeks)
    y = (base[:, None] + shocks[strata] + rng.normal(0.0, sd, (markets, weeks))
         + effect * (treated[:, None] & (t >= pre)[None, :]) + trend_gap * treated[:, None] * t)
    out = [Observation(unit=f"m{m}", variant=_arm(bool(treated[m])), value=float(y[m, k]),
                       period="post" if k >= pre else "pre", time_s=k * WEEK_S,
                       stratum=f"s{strata[m]}")
           for m in range(markets) for k in range(weeks)]
    return tuple(out)


def interleaving(rng: np.random.Generator, *, users: int, lift: float = 0.0,
                 engaged_share: float = 0.3, clicks_mean: float = 2.0
                 ) -> tuple[InterleavingCredit, ...]:
    """Users of an interleaved list: an ``engaged_share`` of them click competitive items
    (Poisson, mean ``clicks_mean``, at least one); each click goes to ranker B with
    probability ``(1 + lift) / 2``. The others engage with none (dilution)."""
    engaged = rng.random(users) < engaged_share
    clicks = np.where(engaged, rng.poisson(clicks_mean - 1, users) + 1, 0)
    to_b = rng.binomial(clicks, (1 + lift) / 2)
    return tuple(InterleavingCredit(unit=f"u{i}", credit_a=float(clicks[i] - to_b[i]),
                                    credit_b=float(to_b[i])) for i in range(users))


SIMULATED_DESIGNS = ("ab", "courier_ab", "switchback", "market_ab")


def simulated_p_value(seed: int, *, design: str, effect: float, units: int,
                      cluster_size: float = 1.0, icc: float = 0.0, sd: float = 1.0) -> float:
    """One seeded synthetic experiment of ``design`` analysed end to end; its p-value. The
    unit of power by simulation (``lastmile power simulate``, ``adapters/power_runner``):
    module level, so it pickles to other processes and Dask workers. ``units`` counts
    orders (ab, courier_ab, switchback: ``units / cluster_size`` couriers or
    4 regions x windows) or markets (market_ab, 2 pre and 2 post weeks)."""
    from lastmile.core.experiments.stats import analyze

    rng = np.random.default_rng(seed)
    size = max(cluster_size, 1.0)
    if design == "ab":
        obs = ab(rng, n=units, effect=effect, sd=sd)
    elif design == "courier_ab":
        obs = clustered(rng, clusters=max(int(units / size), 4), cluster_size=size, icc=icc,
                        effect=effect, sd=sd)
    elif design == "switchback":
        obs = switchback(rng, regions=4, windows=max(int(units / (4 * size)), 2),
                         orders_per_window=size, icc=icc, effect=effect, sd=sd)
    elif design == "market_ab":
        obs = market(rng, markets=max(units, 6), pre=2, post=2, effect=effect, sd=sd)
    else:
        raise InvalidInput("design_unknown", f"design must be one of "
                           f"{', '.join(SIMULATED_DESIGNS)} (got {design!r})", field="design")
    return analyze(obs, design=design).effects[0].p_value  # type: ignore[arg-type]
