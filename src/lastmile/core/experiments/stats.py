"""The analysis entry point: ``analyze`` reads one metric's observations and returns every
variant against control with intervals, p-values, always-valid intervals and warnings;
``analyze_interleaving`` does the same for an interleaving experiment.

Per design (docs/experiments.md, "Analysis"):

- ``ab``: independent units. Welch's difference in means; a ratio metric (any denominator
  other than 1) by the delta method; CUPED when every unit has a pre-experiment covariate.
  When the units carry a ``cluster`` (orders of consumers randomised as consumers), the
  cluster-robust regression of the clustered designs instead.
- ``courier_ab``, ``switchback``: cluster-robust OLS (``statsmodels``, CR1), the cluster
  being the observation's ``cluster`` or else its unit; stratum fixed effects when strata
  are given; the covariate as a regressor (CUPED's regression form) when every unit has one.
- ``market_ab``: difference-in-differences on each market's post minus pre mean with
  stratum fixed effects, robust across markets (``diff_in_diff``), and a parallel-trends
  check on the pre-periods.

Warnings are stable codes followed by a sentence: ``sample_ratio_mismatch``,
``too_few_clusters``, ``parallel_trends_rejected``, ``parallel_trends_untested``,
``cuped_skipped``. Errors are ``InvalidInput`` with a stable code and the field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from lastmile.core.errors import InvalidInput
from lastmile.core.experiments import means
from lastmile.core.experiments.clustered import MIN_CLUSTERS, cluster_fit, dummies
from lastmile.core.experiments.diff_in_diff import diff_in_diff
from lastmile.core.experiments.estimates import Estimate, to_effect
from lastmile.core.experiments.observations import (
    CONTROL,
    DESIGNS,
    Analysis,
    Design,
    Effect,
    Observation,
)
from lastmile.core.experiments.paired import InterleavingCredit, paired_preference
from lastmile.core.experiments.sequential import DEFAULT_TUNING_N
from lastmile.core.experiments.srm import sample_ratio_mismatch


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 0.5:
        raise InvalidInput("alpha_invalid", f"alpha must be in (0, 0.5) (got {alpha})",
                           field="alpha")


def _floats(values: Sequence[float]) -> np.ndarray:
    return np.asarray(values, dtype=float)


def _is_ratio(obs: Sequence[Observation]) -> bool:
    return any(o.denominator != 1.0 for o in obs)


def _cuped_usable(obs: Sequence[Observation], cuped: bool, warnings: list[str],
                  variant: str) -> bool:
    """CUPED needs a covariate on every unit; a partial set is warned about, not guessed."""
    have = sum(o.covariate is not None for o in obs)
    if not cuped or have == 0:
        return False
    if have < len(obs):
        warnings.append(f"cuped_skipped: {len(obs) - have} of {len(obs)} observations of "
                        f"{variant!r} vs control lack a covariate; analysed without CUPED")
        return False
    return True


def _unit_level(ctl: Sequence[Observation], var: Sequence[Observation], *, cuped: bool,
                warnings: list[str], variant: str) -> Estimate:
    both = [*ctl, *var]
    if _is_ratio(both):
        if cuped and any(o.covariate is not None for o in both):
            warnings.append(f"cuped_skipped: {variant!r} is a ratio metric; the delta method "
                            f"is used without CUPED")
        return means.ratio_delta(_floats([o.value for o in ctl]),
                                 _floats([o.denominator for o in ctl]),
                                 _floats([o.value for o in var]),
                                 _floats([o.denominator for o in var]))
    if _cuped_usable(both, cuped, warnings, variant):
        return means.cuped(_floats([o.value for o in ctl]),
                           _floats([o.covariate or 0.0 for o in ctl]),
                           _floats([o.value for o in var]),
                           _floats([o.covariate or 0.0 for o in var]))
    return means.welch(_floats([o.value for o in ctl]), _floats([o.value for o in var]))


def _clustered(ctl: Sequence[Observation], var: Sequence[Observation], *, cuped: bool,
               warnings: list[str], variant: str) -> Estimate:
    both = [*ctl, *var]
    y = _floats([o.value / o.denominator for o in both])
    w = _floats([o.denominator for o in both])
    treat = _floats([1.0 if o.variant == variant else 0.0 for o in both])
    controls = [dummies([o.stratum or "" for o in both])]
    if _cuped_usable(both, cuped, warnings, variant):
        controls.append(_floats([o.covariate or 0.0 for o in both]).reshape(-1, 1))
    clusters = [o.cluster or o.unit for o in both]
    tau, se, df, g = cluster_fit(y=y, treatment=treat, clusters=clusters, weights=w,
                                 controls=np.column_stack(controls))
    if g < MIN_CLUSTERS:
        warnings.append(f"too_few_clusters: {variant!r} vs control has {g} clusters (fewer "
                        f"than {MIN_CLUSTERS}); cluster-robust errors are too small with few "
                        f"clusters, read the p-value as optimistic")
    return Estimate(
        effect=tau, se=se, df=df,
        control_mean=float(sum(o.value for o in ctl) / sum(o.denominator for o in ctl)),
        variant_mean=float(sum(o.value for o in var) / sum(o.denominator for o in var)),
        n_control=len({o.cluster or o.unit for o in ctl}),
        n_variant=len({o.cluster or o.unit for o in var}),
        method="cluster_robust", n_sequential=len(both))


def _market(ctl: Sequence[Observation], var: Sequence[Observation], *, control: str,
            variant: str, alpha: float, warnings: list[str]) -> Estimate:
    est, p_trend = diff_in_diff([*ctl, *var], control=control, variant=variant)
    if est.n_control + est.n_variant < MIN_CLUSTERS:
        warnings.append(f"too_few_clusters: {variant!r} vs control has "
                        f"{est.n_control + est.n_variant} markets (fewer than "
                        f"{MIN_CLUSTERS}); the errors are too small with few markets")
    if p_trend is None:
        warnings.append(f"parallel_trends_untested: {variant!r} has fewer than two "
                        f"pre-periods (pre observations with distinct time_s)")
    elif p_trend < alpha:
        warnings.append(f"parallel_trends_rejected: {variant!r} and control moved "
                        f"differently before the start (p={p_trend:.3g} < {alpha}); "
                        f"the diff-in-diff is biased, consider a synthetic control")
    return est


def _arms(observations: Sequence[Observation], *, design: str, control: str
          ) -> dict[str, list[Observation]]:
    """Observations by variant, after the checks every design shares."""
    if design not in DESIGNS:
        raise InvalidInput("design_unknown", f"design must be one of {', '.join(DESIGNS)} "
                           f"(got {design!r})", field="design")
    if design == "interleaving":
        raise InvalidInput("design_interleaving",
                           "interleaving is analysed per unit pair: use analyze_interleaving",
                           field="design")
    arms: dict[str, list[Observation]] = {}
    for o in observations:
        arms.setdefault(o.variant, []).append(o)
    if control not in arms:
        raise InvalidInput("control_missing", f"no observation has the control variant "
                           f"{control!r} (variants: {', '.join(sorted(arms)) or 'none'})",
                           field="control")
    if len(arms) < 2:
        raise InvalidInput("variant_missing", f"only the control {control!r} has observations",
                           field="observations")
    return arms


def analyze(observations: Sequence[Observation], *, design: Design, metric: str = "value",
            alpha: float = 0.05, cuped: bool = True, control: str = CONTROL,
            shares: Mapping[str, float] | None = None,
            tuning_n: int = DEFAULT_TUNING_N) -> Analysis:
    """Every variant in ``observations`` against ``control`` on one metric, at level
    ``1 - alpha``, by the method the ``design`` calls for (module docstring). ``shares`` is
    the intended traffic split for the sample-ratio check (default equal); ``tuning_n`` the
    always-valid interval's tuning (``sequential``). Raises ``InvalidInput`` for an unknown
    design, ``interleaving`` (use ``analyze_interleaving``), no control, no variant, or an
    arm too small for a variance."""
    _check_alpha(alpha)
    arms = _arms(observations, design=design, control=control)
    warnings: list[str] = []
    randomised = {v: len({o.cluster or o.unit for o in obs}) for v, obs in arms.items()}
    srm = sample_ratio_mismatch(randomised, shares=shares)
    if srm:
        warnings.append(srm)
    effects: list[Effect] = []
    for variant in sorted(v for v in arms if v != control):
        ctl, var = arms[control], arms[variant]
        if design == "market_ab":
            est = _market(ctl, var, control=control, variant=variant, alpha=alpha,
                          warnings=warnings)
        elif design == "ab" and all(o.cluster is None for o in [*ctl, *var]):
            est = _unit_level(ctl, var, cuped=cuped, warnings=warnings, variant=variant)
        else:
            est = _clustered(ctl, var, cuped=cuped, warnings=warnings, variant=variant)
        effects.append(to_effect(est, variant=variant, metric=metric, alpha=alpha,
                                 tuning_n=tuning_n))
    return Analysis(design=design, alpha=alpha, effects=tuple(effects), warnings=tuple(warnings))


def analyze_interleaving(credits: Sequence[InterleavingCredit], *, ranker_a: str = CONTROL,
                         ranker_b: str = "treatment", metric: str = "value",
                         alpha: float = 0.05, remove_non_engaged: bool = True,
                         tuning_n: int = DEFAULT_TUNING_N) -> Analysis:
    """Ranker B against ranker A by a paired t-test over units of the credit each got on
    competitive items (``paired``); ``control_mean`` and ``variant_mean`` are A's and B's
    mean credit per unit, ``n_control == n_variant`` the engaged units kept."""
    _check_alpha(alpha)
    est, _dropped = paired_preference(credits, remove_non_engaged=remove_non_engaged)
    effect = to_effect(est, variant=ranker_b, metric=metric, alpha=alpha, tuning_n=tuning_n)
    return Analysis(design="interleaving", alpha=alpha, effects=(effect,))
