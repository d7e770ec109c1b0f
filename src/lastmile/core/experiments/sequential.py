"""An always-valid sequential test: the mixture sequential probability ratio test (mSPRT)
of Johari, Koomen, Pekelis and Walsh ("Always valid inference", 2017 / Operations Research
2022) with a normal mixture over the effect, and its confidence sequence.

The estimate ``effect`` is asymptotically normal with variance ``V = se**2``. Against the null
``effect = theta0`` and a mixture ``N(theta0, tau2)`` over the alternative, the likelihood
ratio at the current look is::

    Lambda = sqrt(V / (V + tau2)) * exp(tau2 * (effect - theta0)**2 / (2 * V * (V + tau2)))

``Lambda`` is a nonnegative martingale under the null, so (Ville's inequality) rejecting when
``Lambda >= 1/alpha`` at any look, however often one looks, has type-I error at most alpha.
Inverting it gives the always-valid interval::

    effect +- sqrt(V * (V + tau2) / tau2 * (2 * ln(1/alpha) + ln((V + tau2) / V)))

The mixture variance is ``tau2 = sigma2 * rho2`` with ``sigma2 = V * n`` the per-unit
variance and ``rho2 = (-2 ln alpha + ln(-2 ln alpha + 1)) / N*``, the choice that makes the
interval narrowest at ``N* = tuning_n`` units (Howard, Ramdas, McAuliffe and Sekhon, "Time-
uniform, nonparametric, nonasymptotic confidence sequences", 2021, eq. 161 of the arXiv
version) - the same parameterisation as GrowthBook's sequential testing (default 5,000).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from lastmile.core.errors import InvalidInput

DEFAULT_TUNING_N = 5000
"""Units at which the interval is narrowest (GrowthBook's default ``sequentialTuningParameter``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SequentialResult:
    """The always-valid interval and p-value at one look."""

    ci: tuple[float, float]
    p_value: float


def mixture_variance(*, sigma2: float, alpha: float, tuning_n: int = DEFAULT_TUNING_N) -> float:
    """``tau2``, the variance of the normal mixture over the effect: ``sigma2 * rho2`` with
    ``rho2`` optimal at ``tuning_n`` units (Howard et al. 2021, eq. 161)."""
    if tuning_n < 1:
        raise InvalidInput("sequential_tuning_invalid",
                           f"tuning_n must be >= 1 (got {tuning_n})", field="tuning_n")
    la = -2 * math.log(alpha)
    return sigma2 * (la + math.log(la + 1)) / tuning_n


def msprt(*, effect: float, se: float, n: int, alpha: float, theta0: float = 0.0,
          tuning_n: int = DEFAULT_TUNING_N) -> SequentialResult:
    """The mSPRT at one look: the always-valid interval for the effect and the p-value
    ``min(1, 1/Lambda)`` against ``theta0``. ``se`` is the estimate's standard error, ``n``
    the units (or clusters) it is based on. A zero ``se`` gives a point interval and
    p-value 1 when ``effect == theta0``, else 0."""
    if not 0 < alpha < 1:
        raise InvalidInput("alpha_invalid", f"alpha must be in (0, 1) (got {alpha})",
                           field="alpha")
    if n < 1:
        raise InvalidInput("sequential_n_invalid", f"n must be >= 1 (got {n})", field="n")
    if not se > 0:
        return SequentialResult(ci=(effect, effect), p_value=1.0 if effect == theta0 else 0.0)
    v = se * se
    tau2 = mixture_variance(sigma2=v * n, alpha=alpha, tuning_n=tuning_n)
    half = math.sqrt(v * (v + tau2) / tau2 * (2 * math.log(1 / alpha) + math.log((v + tau2) / v)))
    log_lambda = 0.5 * math.log(v / (v + tau2)) + tau2 * (effect - theta0) ** 2 / (2 * v * (v + tau2))
    p = 1.0 if log_lambda <= 0 else math.exp(-log_lambda)
    return SequentialResult(ci=(effect - half, effect + half), p_value=p)


def running(results: Sequence[SequentialResult]) -> tuple[SequentialResult, ...]:
    """Looks in time order made monotone: each interval intersected with the ones before it
    and each p-value the minimum so far (both stay valid: the guarantee holds for all looks
    at once). An empty intersection (possible only with probability alpha) keeps the last
    interval's midpoint as a point."""
    out: list[SequentialResult] = []
    lo, hi, p = -math.inf, math.inf, 1.0
    for r in results:
        lo, hi, p = max(lo, r.ci[0]), min(hi, r.ci[1]), min(p, r.p_value)
        if lo > hi:
            mid = (r.ci[0] + r.ci[1]) / 2
            lo = hi = mid
        out.append(SequentialResult(ci=(lo, hi), p_value=p))
    return tuple(out)
