"""What an experiment's analysis reads and what it returns: the one schema that serving
(which builds observations from orders, exposures and the ledger), the statistics modules,
the simulator's validation runs and the benchmark share.

An ``Observation`` is one analysis unit's outcome for one metric: an order or a consumer in
an A/B test, a courier in a courier A/B test, one region x time window in a switchback, one
market x period in a market A/B test. Ratio metrics (e.g. minutes of click-to-door per
order over consumers) carry a numerator and a denominator; the analysis uses the delta
method for them. Designs whose units share something (a courier's many orders, a
switchback window's orders) name the cluster, and the analysis uses cluster-robust errors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Design = Literal["ab", "courier_ab", "switchback", "market_ab", "interleaving"]
DESIGNS: tuple[Design, ...] = ("ab", "courier_ab", "switchback", "market_ab", "interleaving")
CONTROL = "control"


@dataclass(frozen=True, slots=True, kw_only=True)
class Observation:
    """One unit's outcome for one metric."""

    unit: str
    """The randomised unit's id (order, consumer, courier, ``region@window``, market)."""
    variant: str
    """The arm it was assigned to (``control`` is the baseline)."""
    value: float
    """The metric's numerator summed over the unit (a plain mean metric: the value)."""
    denominator: float = 1.0
    """The ratio metric's denominator over the unit (1 for a plain mean)."""
    cluster: str | None = None
    """The unit's cluster for cluster-robust errors (a courier, a region x window)."""
    covariate: float | None = None
    """The unit's pre-experiment value of the metric, for CUPED (``None``: not known)."""
    period: Literal["pre", "post"] | None = None
    """Diff-in-diff (market A/B): before or after the treatment started."""
    stratum: str | None = None
    """Stratified designs: the stratum the unit was randomised in."""
    time_s: float | None = None
    """When the outcome happened (seconds from the experiment's start): results over time."""

    def __post_init__(self) -> None:
        if not self.unit:
            raise ValueError("observation unit must be a non-empty id")
        if not self.variant:
            raise ValueError(f"observation variant must be non-empty (unit {self.unit})")
        if not math.isfinite(self.value):
            raise ValueError(f"observation value must be finite (got {self.value}) "
                             f"for unit {self.unit}")
        if not (math.isfinite(self.denominator) and self.denominator > 0):
            raise ValueError(f"observation denominator must be > 0 (got {self.denominator}) "
                             f"for unit {self.unit}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Effect:
    """One arm against control on one metric."""

    variant: str
    metric: str
    control_mean: float
    variant_mean: float
    effect: float
    """Absolute difference, variant minus control, in the metric's unit."""
    relative: float
    """``effect / control_mean`` (NaN when the control mean is 0)."""
    ci: tuple[float, float]
    """Confidence interval of ``effect`` at the analysis's level."""
    p_value: float
    n_control: int
    n_variant: int
    method: str
    """How the error was computed: ``welch``, ``delta``, ``cuped``, ``cluster_robust``,
    ``diff_in_diff``, ``paired_t``, ``msprt`` (short, stable names)."""
    sequential_ci: tuple[float, float] | None = None
    """Always-valid interval: it may be looked at every day without inflating errors."""
    sequential_p_value: float | None = None
    """Always-valid p-value of the mixture SPRT (``sequential.msprt``) at this look."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Analysis:
    """An experiment's result: every variant against control, with warnings."""

    design: Design
    alpha: float
    effects: tuple[Effect, ...]
    warnings: tuple[str, ...] = ()
    """Stable codes with a sentence, e.g. ``sample_ratio_mismatch: ...``,
    ``parallel_trends_rejected: ...``, ``too_few_clusters: ...``."""
