"""Sample ratio mismatch: a chi-square goodness-of-fit test of the randomised units per arm
against the intended split. A mismatch means assignment or logging is broken, and no effect
measured on the data can be trusted (Fabijan et al., "Diagnosing sample ratio mismatch",
KDD 2019)."""

from __future__ import annotations

from collections.abc import Mapping

from scipy import special

from lastmile.core.errors import InvalidInput

SRM_P = 0.001
"""Threshold on the p-value (GrowthBook's default ``srm_threshold``): strict, because the
check runs on every look at every experiment."""


def sample_ratio_mismatch(counts: Mapping[str, int], *,
                          shares: Mapping[str, float] | None = None,
                          threshold: float = SRM_P) -> str | None:
    """A ``sample_ratio_mismatch: ...`` warning when the chi-square p-value of ``counts``
    (units per arm) against ``shares`` (default: equal) is below ``threshold``; else None.
    Shares need not sum to 1 (they are normalised); an arm absent from ``shares`` is an
    error, as is a share <= 0."""
    arms = sorted(counts)
    if len(arms) < 2 or sum(counts.values()) == 0:
        return None
    if shares is None:
        weights = [1.0] * len(arms)
    else:
        for arm in arms:
            if arm not in shares or not shares[arm] > 0:
                raise InvalidInput("share_invalid",
                                   f"arm {arm!r} needs a share > 0 (got {shares.get(arm)})",
                                   field="shares")
        weights = [float(shares[a]) for a in arms]
    total = sum(counts[a] for a in arms)
    expected = [total * w / sum(weights) for w in weights]
    stat = sum((counts[a] - e) ** 2 / e for a, e in zip(arms, expected, strict=True))
    p = float(special.chdtrc(len(arms) - 1, stat))  # Pearson's chi-square, k - 1 df
    if p >= threshold:
        return None
    seen = ", ".join(f"{a}={counts[a]}" for a in arms)
    want = ", ".join(f"{a}={e:.1f}" for a, e in zip(arms, expected, strict=True))
    return (f"sample_ratio_mismatch: units per arm {seen}, expected {want} "
            f"(chi-square p={p:.2g} < {threshold}): check assignment and logging "
            f"before reading any effect")
