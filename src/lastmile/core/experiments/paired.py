"""Interleaving analysis (seed 004 L776-794): a paired t-test over units of each unit's
credit to ranker B minus its credit to ranker A, counted on competitive items only.

Dilution removal (004 L615): the caller passes credits on competitive items only (items both
rankers placed at the same turn are not evidence for either), and units that engaged with
no competitive item are dropped instead of counted as ties ("If a user does not take an
action, we simply remove the exposure"). Credits may be rates: each unit's credit divided by
its competitive exposures (click rate, checkout conversion, subtotal per exposure).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lastmile.core.errors import InvalidInput
from lastmile.core.experiments.estimates import Estimate
from lastmile.core.experiments.observations import Observation


@dataclass(frozen=True, slots=True, kw_only=True)
class InterleavingCredit:
    """One unit's (user's, session's) outcome credited to each ranker on competitive items."""

    unit: str
    credit_a: float
    credit_b: float
    exposures: float = 1.0
    """Competitive items shown to the unit; credits are divided by it (1: raw credits)."""

    def __post_init__(self) -> None:
        for name, v in (("credit_a", self.credit_a), ("credit_b", self.credit_b)):
            if not math.isfinite(v):
                raise InvalidInput("credit_invalid",
                                   f"{name} must be finite (got {v}) for unit {self.unit}",
                                   field=name)
        if not (math.isfinite(self.exposures) and self.exposures > 0):
            raise InvalidInput("exposures_invalid",
                               f"exposures must be > 0 (got {self.exposures}) for unit "
                               f"{self.unit}", field="exposures")


def credits_from_observations(observations: Sequence[Observation], *, ranker_a: str,
                              ranker_b: str) -> tuple[InterleavingCredit, ...]:
    """Pair observations by unit: the one with variant ``ranker_a`` and the one with
    ``ranker_b`` (value = credit on competitive items, denominator = competitive exposures,
    taken from A's). A unit missing one of the two counts as 0 credit for that ranker."""
    a: dict[str, Observation] = {}
    b: dict[str, Observation] = {}
    for o in observations:
        if o.variant == ranker_a:
            a[o.unit] = o
        elif o.variant == ranker_b:
            b[o.unit] = o
    out = []
    for unit in sorted(set(a) | set(b)):
        oa, ob = a.get(unit), b.get(unit)
        either = oa if oa is not None else ob
        exposures = either.denominator if either is not None else 1.0
        out.append(InterleavingCredit(unit=unit, credit_a=oa.value if oa else 0.0,
                                      credit_b=ob.value if ob else 0.0, exposures=exposures))
    return tuple(out)


def paired_preference(credits: Sequence[InterleavingCredit], *,
                      remove_non_engaged: bool = True) -> tuple[Estimate, int]:
    """Mean over units of ``(credit_b - credit_a) / exposures`` with the paired t-test's
    standard error (what ``scipy.stats.ttest_rel`` tests); returns it and the number of units dropped
    for not engaging (both credits 0). Needs >= 2 units left."""
    kept = [c for c in credits if not (remove_non_engaged and c.credit_a == 0 and c.credit_b == 0)]
    if len(kept) < 2:
        raise InvalidInput("too_few_units",
                           f"the paired t-test needs >= 2 engaged units (got {len(kept)} of "
                           f"{len(credits)})", field="credits")
    a = np.array([c.credit_a / c.exposures for c in kept])
    b = np.array([c.credit_b / c.exposures for c in kept])
    d = b - a
    n = len(d)
    se = float(d.std(ddof=1)) / math.sqrt(n)
    est = Estimate(effect=float(d.mean()), se=se, df=float(n - 1), control_mean=float(a.mean()),
                   variant_mean=float(b.mean()), n_control=n, n_variant=n, method="paired_t",
                   n_sequential=n)
    return est, len(credits) - n
