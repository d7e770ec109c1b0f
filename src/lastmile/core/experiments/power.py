"""Power, minimum detectable effect and duration in whole weeks, for unit-level and
clustered designs; and the summary of a power-by-simulation run.

Closed forms (normal approximation, two-sided test at ``alpha``)::

    MDE   = (z_{1-alpha/2} + z_{power}) * sd * sqrt(deff) * sqrt(1/n_control + 1/n_variant)
    power = Phi(|effect|/se - z_{1-alpha/2}) + Phi(-|effect|/se - z_{1-alpha/2})

``deff`` is the design effect of clustering (Kish; with unequal cluster sizes
``1 + ((cv^2 + 1) * m - 1) * icc``, Eldridge, Ashby and Kerry 2006), ``m`` the mean cluster
size, ``cv`` its coefficient of variation, ``icc`` the intra-cluster correlation. The
duration is the smallest whole number of weeks whose MDE reaches the target, since
experiments are "usually rounded to weeks to avoid day-of-week effect" (seed 003 L964).
A courier A/B's clusters grow with the weeks (a courier delivers more orders) while their
number stays; a switchback's windows keep their size and grow in number: ``Clustering``
says which.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as st
from statsmodels.stats.proportion import proportion_confint

from lastmile.core.errors import InvalidInput

MAX_WEEKS = 52


def _positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise InvalidInput(f"{name}_invalid", f"{name} must be > 0 (got {value})", field=name)


def _unit_interval(name: str, value: float) -> None:
    if not 0 < value < 1:
        raise InvalidInput(f"{name}_invalid", f"{name} must be in (0, 1) (got {value})",
                           field=name)


@dataclass(frozen=True, slots=True, kw_only=True)
class Clustering:
    """How the design's units cluster."""

    icc: float
    """Intra-cluster correlation of the metric, in [0, 1)."""
    cluster_size: float
    """Mean units per cluster (per week when ``grows_weekly``)."""
    cv: float = 0.0
    """Coefficient of variation of the cluster sizes ("volume imbalance", seed 003 L950)."""
    grows_weekly: bool = False
    """True when clusters gain units every week (couriers), False when more clusters come
    (switchback windows)."""

    def __post_init__(self) -> None:
        if not 0 <= self.icc < 1:
            raise InvalidInput("icc_invalid", f"icc must be in [0, 1) (got {self.icc})",
                               field="icc")
        if not self.cluster_size >= 1:
            raise InvalidInput("cluster_size_invalid",
                               f"cluster_size must be >= 1 (got {self.cluster_size})",
                               field="cluster_size")
        if not self.cv >= 0:
            raise InvalidInput("cv_invalid", f"cv must be >= 0 (got {self.cv})", field="cv")


def design_effect(*, mean_cluster_size: float, icc: float, cv: float = 0.0) -> float:
    """``1 + ((cv^2 + 1) * m - 1) * icc``: how many times the variance of a mean grows when
    units come in clusters (1 for independent units)."""
    return 1 + ((cv * cv + 1) * mean_cluster_size - 1) * icc


def _se(*, sd: float, n_control: float, n_variant: float, deff: float) -> float:
    _positive("sd", sd)
    _positive("n_control", n_control)
    _positive("n_variant", n_variant)
    return sd * math.sqrt(deff) * math.sqrt(1 / n_control + 1 / n_variant)


def mde(*, sd: float, n_control: float, n_variant: float, alpha: float = 0.05,
        power: float = 0.8, deff: float = 1.0) -> float:
    """Smallest absolute effect detected with probability ``power`` (unit of ``sd``)."""
    _unit_interval("alpha", alpha)
    _unit_interval("power", power)
    z = float(st.norm.ppf(1 - alpha / 2) + st.norm.ppf(power))
    return z * _se(sd=sd, n_control=n_control, n_variant=n_variant, deff=deff)


def power_of(*, effect: float, sd: float, n_control: float, n_variant: float,
             alpha: float = 0.05, deff: float = 1.0) -> float:
    """Probability that the two-sided test at ``alpha`` rejects when the true effect is
    ``effect`` (both tails counted)."""
    _unit_interval("alpha", alpha)
    se = _se(sd=sd, n_control=n_control, n_variant=n_variant, deff=deff)
    z = float(st.norm.ppf(1 - alpha / 2))
    d = abs(effect) / se
    return float(st.norm.cdf(d - z) + st.norm.cdf(-d - z))


def mde_after_weeks(*, weeks: int, sd: float, units_per_week: float, alpha: float = 0.05,
                    power: float = 0.8, treated_share: float = 0.5,
                    clustering: Clustering | None = None) -> float:
    """The MDE of an experiment run ``weeks`` whole weeks on ``units_per_week`` units split
    ``treated_share`` / ``1 - treated_share`` (the seed's other question: the MDE for a
    duration the metric imposes, e.g. courier retention)."""
    if weeks < 1:
        raise InvalidInput("weeks_invalid", f"weeks must be >= 1 (got {weeks})", field="weeks")
    _unit_interval("treated_share", treated_share)
    n = units_per_week * weeks
    deff = 1.0
    if clustering is not None:
        m = clustering.cluster_size * (weeks if clustering.grows_weekly else 1)
        deff = design_effect(mean_cluster_size=m, icc=clustering.icc, cv=clustering.cv)
    return mde(sd=sd, n_control=n * (1 - treated_share), n_variant=n * treated_share,
               alpha=alpha, power=power, deff=deff)


def weeks_needed(*, effect: float, sd: float, units_per_week: float, alpha: float = 0.05,
                 power: float = 0.8, treated_share: float = 0.5,
                 clustering: Clustering | None = None, max_weeks: int = MAX_WEEKS
                 ) -> int | None:
    """Smallest whole number of weeks whose MDE is at most ``|effect|``; None when even
    ``max_weeks`` is not enough (a courier A/B with a high icc plateaus: more weeks add
    orders to the same couriers, not couriers)."""
    _positive("effect", abs(effect))
    for weeks in range(1, max_weeks + 1):
        if mde_after_weeks(weeks=weeks, sd=sd, units_per_week=units_per_week, alpha=alpha,
                           power=power, treated_share=treated_share,
                           clustering=clustering) <= abs(effect):
            return weeks
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulatedPower:
    """The share of seeded simulations whose test rejected, with a Wilson interval."""

    power: float
    ci: tuple[float, float]
    rejections: int
    simulations: int
    alpha: float


def simulation_seeds(seed: int, n: int) -> tuple[int, ...]:
    """``n`` independent 63-bit seeds spawned from ``seed`` (numpy ``SeedSequence``): the
    same seeds, and so the same results, on any number of processes or Dask workers."""
    if n < 1:
        raise InvalidInput("simulations_invalid", f"simulations must be >= 1 (got {n})",
                           field="simulations")
    children = np.random.SeedSequence(seed).spawn(n)
    return tuple(int(c.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)) for c in children)


def simulated_power(p_values: Sequence[float], *, alpha: float = 0.05,
                    ci_level: float = 0.95) -> SimulatedPower:
    """Power estimated from simulated p-values: the share below ``alpha``, with a Wilson
    score interval (``statsmodels``) at ``ci_level``. Under an A/A simulation this is the
    false-positive rate, which should contain ``alpha``."""
    _unit_interval("alpha", alpha)
    if not p_values:
        raise InvalidInput("simulations_invalid", "no simulated p-value to summarise",
                           field="p_values")
    bad = [p for p in p_values if not 0 <= p <= 1]
    if bad:
        raise InvalidInput("p_value_invalid", f"p-values must be in [0, 1] (got {bad[0]})",
                           field="p_values")
    k = sum(1 for p in p_values if p < alpha)
    lo, hi = proportion_confint(k, len(p_values), alpha=1 - ci_level, method="wilson")
    return SimulatedPower(power=k / len(p_values), ci=(float(lo), float(hi)), rejections=k,
                          simulations=len(p_values), alpha=alpha)


@dataclass(frozen=True, slots=True, kw_only=True)
class Requirement:
    """One experiment's power requirement, for splitting markets between two experiments."""

    effect: float
    sd: float
    units_per_week: float
    """With all markets; a split gives the experiment its share of them."""
    clustering: Clustering | None = None
    alpha: float = 0.05
    power: float = 0.8


@dataclass(frozen=True, slots=True, kw_only=True)
class Split:
    share_first: float
    weeks_first: int | None
    weeks_second: int | None


def split_markets(first: Requirement, second: Requirement, *, step: float = 0.05,
                  max_weeks: int = MAX_WEEKS) -> Split:
    """Geographical separation of two experiments that cannot share markets (seed 003
    L980): the share of volume for ``first`` (on a grid of ``step``) so that both finish
    soonest - the smallest longer duration, then the closest durations ("an inefficient
    split would need four weeks while the other one needs to run for eight weeks").
    A share that leaves either experiment unable to finish within ``max_weeks`` loses."""
    _unit_interval("step", step)
    best: tuple[tuple[int, int], Split] | None = None
    for k in range(1, round(1 / step)):
        p = round(k * step, 10)
        weeks = [weeks_needed(effect=r.effect, sd=r.sd, units_per_week=r.units_per_week * s,
                              alpha=r.alpha, power=r.power, clustering=r.clustering,
                              max_weeks=max_weeks)
                 for r, s in ((first, p), (second, 1 - p))]
        if weeks[0] is None or weeks[1] is None:
            continue
        key = (max(weeks[0], weeks[1]), abs(weeks[0] - weeks[1]))
        if best is None or key < best[0]:
            best = (key, Split(share_first=p, weeks_first=weeks[0], weeks_second=weeks[1]))
    if best is None:
        return Split(share_first=0.5, weeks_first=None, weeks_second=None)
    return best[1]
