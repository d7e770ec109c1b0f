"""Who gets which variant: deterministic hashing of an experiment's salt and a unit (pure).

Every decision here is a function of strings and numbers, never of a clock or a random
generator: the same experiment, unit and time give the same variant in every process, on
every day, so nothing needs storing to serve it (market A/B stores its allocation, which
is a function of every market at once).

- ``bucket(salt, unit)``: SHA-256 of ``salt:unit``, its first 8 bytes as a fraction in
  ``[0, 1)``. Uniform, and independent between salts (an experiment's salt and its
  layer's are different strings, so a unit's place in the layer says nothing about its
  variant).
- ``pick(variants, u)``: the variant whose share of the cumulative weights holds ``u``.
- ``in_layer``: layers make experiments mutually exclusive. A layer hashes each unit once
  (with the layer's own salt); its first ``holdout`` share is held out of every experiment
  of the layer; each experiment owns a disjoint range of the rest (``allocate``). Two
  experiments of one layer never take one unit: their ranges do not overlap.
- ``switchback``: the unit is ``region@window`` (window ``floor((t - origin) / window_s)``);
  an exposure in the first ``burn_in_s`` of a window whose previous window had another
  variant, or in the last ``wash_out_s`` of one whose next window has another, does not
  count for analysis (carry-over across the switch; seed 003: network effects at the
  "temporal borders between clusters").
- ``stratify``: market A/B with stratified randomisation (seed 003: "split all markets into,
  say, nine strata (high/medium/low based on each metric), and then randomly assign an
  equal number of markets in each stratum to treatment and control").
- ``team_draft``: interleaving of N rankers, with the competitive items tagged (seed 004).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lastmile.core.errors import InvalidInput

_SCALE = float(2**64)


def bucket(salt: str, unit: str) -> float:
    """``unit``'s place in ``[0, 1)`` under ``salt``: SHA-256 of ``salt:unit`` (UTF-8), the
    first 8 bytes as an unsigned big-endian integer over 2**64. Deterministic across
    processes and versions (unlike ``hash()``)."""
    digest = hashlib.sha256(f"{salt}:{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


@dataclass(frozen=True, slots=True, kw_only=True)
class Variant:
    """One arm: its name, its weight (any positive number; shares are weight / total) and
    the parameter overrides a lever reads from it (``{"late_weight": 0.9}``)."""

    name: str
    weight: float = 1.0
    params: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if not self.name:
            raise InvalidInput("invalid_variant", "variant name must be non-empty",
                               field="variants.name")
        if not (math.isfinite(self.weight) and self.weight > 0):
            raise InvalidInput("invalid_variant", f"variant weight must be > 0 (got "
                               f"{self.weight}) for variant {self.name}",
                               field="variants.weight")

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.params)


def pick(variants: Sequence[Variant], u: float) -> Variant:
    """The variant of a unit at ``u`` in ``[0, 1)``: variants take consecutive slices of
    ``[0, 1)`` in their order, each ``weight / total`` wide. ``u`` outside ``[0, 1)`` is
    clamped (the last slice takes the float rounding at 1)."""
    if not variants:
        raise InvalidInput("invalid_variants", "an experiment needs at least one variant",
                           field="variants")
    total = sum(v.weight for v in variants)
    edge = 0.0
    for v in variants:
        edge += v.weight / total
        if u < edge:
            return v
    return variants[-1]


def assign(salt: str, unit: str, variants: Sequence[Variant]) -> Variant:
    """A unit's variant in a plain (order, consumer or courier) A/B test."""
    return pick(variants, bucket(salt, unit))


# -- layers and holdouts -------------------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class Span:
    """A half-open range ``[low, high)`` of a layer's hash space."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.low < self.high <= 1.0:
            raise InvalidInput("invalid_span", f"a layer range must satisfy 0 <= low < high "
                               f"<= 1 (got [{self.low}, {self.high}))", field="share")

    @property
    def width(self) -> float:
        return self.high - self.low

    def holds(self, u: float) -> bool:
        return self.low <= u < self.high


def layer_salt(layer: str) -> str:
    return f"layer:{layer}"


def allocate(taken: Sequence[Span], *, holdout: float, share: float) -> Span:
    """A free range ``share`` wide of a layer whose ranges ``taken`` are held by its other
    experiments, after the holdout ``[0, holdout)``: the lowest gap wide enough (first
    fit). Raises InvalidInput (field ``share``) when no gap is wide enough."""
    if not 0.0 <= holdout < 1.0:
        raise InvalidInput("invalid_holdout", f"holdout must be in [0, 1) (got {holdout})",
                           field="holdout")
    if not 0.0 < share <= 1.0:
        raise InvalidInput("invalid_share", f"share must be in (0, 1] (got {share})",
                           field="share")
    start = holdout
    for span in sorted(taken, key=lambda s: s.low):
        if span.high <= start:
            continue
        if span.low - start >= share - 1e-12:
            break
        start = max(start, span.high)
    end = min(1.0, start + share)
    if end - start < share - 1e-12:
        free = 1.0 - holdout - sum(s.width for s in taken)
        raise InvalidInput("layer_full", f"share {share} does not fit in the layer (about "
                           f"{max(free, 0.0):.4f} free in pieces after a holdout of "
                           f"{holdout})", field="share")
    return Span(low=start, high=end)


def in_layer(layer: str, unit: str, span: Span) -> bool:
    """Whether ``unit`` falls in the experiment's range of its layer (a held-out unit, below
    the layer's holdout, falls in no experiment's range)."""
    return span.holds(bucket(layer_salt(layer), unit))


def held_out(layer: str, unit: str, holdout: float) -> bool:
    return bucket(layer_salt(layer), unit) < holdout


# -- switchback ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class Switchback:
    """Switchback timing: windows of ``window_s`` from ``origin_s`` (the experiment's start),
    ``burn_in_s`` and ``wash_out_s`` excluded around a switch of variant."""

    origin_s: float
    window_s: float
    burn_in_s: float = 0.0
    wash_out_s: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.window_s) and self.window_s > 0):
            raise InvalidInput("invalid_window", f"window_s must be > 0 (got "
                               f"{self.window_s})", field="window_s")
        for name in ("burn_in_s", "wash_out_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise InvalidInput("invalid_window", f"{name} must be >= 0 (got {value})",
                                   field=name)
        if self.burn_in_s + self.wash_out_s >= self.window_s:
            raise InvalidInput("invalid_window", f"burn_in_s + wash_out_s must be < window_s "
                               f"(got {self.burn_in_s} + {self.wash_out_s} >= "
                               f"{self.window_s})", field="burn_in_s")


@dataclass(frozen=True, slots=True, kw_only=True)
class SwitchbackSlot:
    unit: str
    """``region@window``: the randomised unit and the analysis cluster."""
    window: int
    variant: Variant
    counts: bool
    """False in a burn-in or wash-out period: the exposure is served but not analysed."""


def window_unit(region: str, window: int) -> str:
    return f"{region}@{window}"


def switchback(salt: str, region: str, at_s: float, timing: Switchback,
               variants: Sequence[Variant]) -> SwitchbackSlot | None:
    """The variant of ``region`` at ``at_s`` (None before the origin). Each ``region@window``
    is randomised on its own (``assign``). Burn-in applies only after a switch (the previous
    window of the region had another variant) and wash-out only before one: with no switch
    there is nothing to carry over."""
    if at_s < timing.origin_s:
        return None
    window = math.floor((at_s - timing.origin_s) / timing.window_s)
    offset = at_s - timing.origin_s - window * timing.window_s
    variant = assign(salt, window_unit(region, window), variants)
    counts = True
    if offset < timing.burn_in_s and window > 0:
        counts = assign(salt, window_unit(region, window - 1), variants).name == variant.name
    if counts and offset >= timing.window_s - timing.wash_out_s:
        counts = assign(salt, window_unit(region, window + 1), variants).name == variant.name
    return SwitchbackSlot(unit=window_unit(region, window), window=window, variant=variant,
                          counts=counts)


# -- market A/B with stratified randomisation -----------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class MarketSlot:
    market: str
    variant: str
    stratum: str
    """``"i.j"``: the market's level (0 = lowest) on each metric."""


def levels(values: Sequence[float], n: int) -> list[int]:
    """Each value's quantile level 0..n-1 by rank (ties broken by position): with ``n = 3``
    the terciles. Levels by rank, not by cut points, so every level holds ``len / n``
    values (to one), whatever the values' spread."""
    order = sorted(range(len(values)), key=lambda i: (values[i], i))
    out = [0] * len(values)
    for rank, i in enumerate(order):
        out[i] = rank * n // len(values)
    return out


def stratify(salt: str, metrics: Mapping[str, Sequence[float]], arms: Sequence[str], *,
             per_metric: int = 3) -> tuple[MarketSlot, ...]:
    """Assign each market to an arm within strata: markets are levelled on each of their
    metrics (``per_metric`` quantile levels, so two metrics and 3 levels make 9 strata);
    inside a stratum markets are ordered by ``bucket(salt, market)`` and dealt to the arms
    in turn, starting at an arm chosen by ``bucket(salt, stratum)``. Every stratum thus
    holds equal counts per arm, to one (an odd market goes to a salt-chosen arm).

    Raises InvalidInput (field ``strata_metrics``) for no market, markets with different
    numbers of metrics, or a non-finite metric."""
    if not metrics:
        raise InvalidInput("invalid_strata", "market A/B needs at least one market's metrics",
                           field="strata_metrics")
    if len(arms) < 2:
        raise InvalidInput("invalid_strata", f"market A/B needs at least 2 arms (got "
                           f"{len(arms)})", field="variants")
    if per_metric < 1:
        raise InvalidInput("invalid_strata", f"per_metric must be >= 1 (got {per_metric})",
                           field="per_metric")
    markets = sorted(metrics)
    width = {len(metrics[m]) for m in markets}
    if len(width) != 1:
        raise InvalidInput("invalid_strata", f"every market needs the same number of metrics "
                           f"(got {sorted(width)})", field="strata_metrics")
    for m in markets:
        if not all(isinstance(x, int | float) and math.isfinite(x) for x in metrics[m]):
            raise InvalidInput("invalid_strata", f"metrics of market {m} must be finite "
                               f"numbers (got {list(metrics[m])})",
                               field=f"strata_metrics.{m}")
    k = width.pop()
    per = [levels([float(metrics[m][j]) for m in markets], per_metric) for j in range(k)]
    strata: dict[str, list[str]] = {}
    for i, m in enumerate(markets):
        strata.setdefault(".".join(str(p[i]) for p in per) or "all", []).append(m)
    out: list[MarketSlot] = []
    for stratum, members in sorted(strata.items()):
        members.sort(key=lambda m: (bucket(salt, m), m))
        first = int(bucket(salt, f"stratum:{stratum}") * len(arms))
        for i, m in enumerate(members):
            out.append(MarketSlot(market=m, variant=arms[(first + i) % len(arms)],
                                  stratum=stratum))
    return tuple(sorted(out, key=lambda s: s.market))


# -- interleaving --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class Drafted:
    item: str
    ranker: int
    """Index of the ranker (captain) whose pick placed the item."""
    competitive: bool
    """Scored in the analysis: the rankers disagreed on it (seed 004)."""


def team_draft(rankings: Sequence[Sequence[str]], seed: str, *,
               limit: int | None = None) -> tuple[Drafted, ...]:
    """Team-draft interleaving of N ranked lists with competitiveness tagging (seed 004
    L752-772). In each turn the captains pick in an order drawn from ``bucket(seed,
    turn:i)`` (not stated in the source; a seeded order avoids position bias). When every
    captain's most preferred untaken item differs, each takes it and the turn's N items
    are competitive. When two want the same item (a collision), the captains pick in turn,
    each its most preferred item still untaken, and every item of the turn is
    non-competitive; likewise a turn in which some captain has nothing left. So
    competitive items come in groups of N, one per captain. ``limit``: stop after this many
    items (a competitive group the limit cuts is non-competitive). An item id appearing twice in one list counts once."""
    lists = [list(dict.fromkeys(r)) for r in rankings]
    n = len(lists)
    if n < 2:
        raise InvalidInput("invalid_rankings", f"interleaving needs at least 2 rankings "
                           f"(got {n})", field="rankings")
    cap = limit if limit is not None else len({i for r in lists for i in r})
    taken: set[str] = set()
    heads = [0] * n
    out: list[Drafted] = []
    turn = 0
    while len(out) < cap:
        order = sorted(range(n), key=lambda c: (bucket(seed, f"turn:{turn}:{c}"), c))
        wants = [_next(lists[c], heads, c, taken) for c in range(n)]
        if all(w is not None for w in wants) and len(set(wants)) == n:
            whole = len(out) + n <= cap  # a group cut by the limit is not scored
            for c in order:
                out.append(Drafted(item=str(wants[c]), ranker=c, competitive=whole))
                taken.add(str(wants[c]))
        else:
            picked = False
            for c in order:
                item = _next(lists[c], heads, c, taken)
                if item is None:
                    continue
                out.append(Drafted(item=item, ranker=c, competitive=False))
                taken.add(item)
                picked = True
            if not picked:
                break
        turn += 1
    return tuple(out[:cap])


def _next(ranked: list[str], heads: list[int], c: int, taken: set[str]) -> str | None:
    """The captain's most preferred untaken item (its head moves past taken ones)."""
    while heads[c] < len(ranked) and ranked[heads[c]] in taken:
        heads[c] += 1
    return ranked[heads[c]] if heads[c] < len(ranked) else None
