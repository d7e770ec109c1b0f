"""An analysis as plain data: the JSON document, the rows of the results table, and the
effect with its intervals over time (the analysis re-run on the observations known at each
look), which the adapters render as a rich table and a PNG (adapters/experiment_report.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lastmile.core.errors import InvalidInput
from lastmile.core.experiments.observations import CONTROL, Analysis, Design, Effect, Observation
from lastmile.core.experiments.sequential import SequentialResult, running
from lastmile.core.experiments.stats import analyze


def _num(x: float) -> float | None:
    """JSON has no NaN or infinity: they become null."""
    return x if math.isfinite(x) else None


def _pair(p: tuple[float, float] | None) -> list[float | None] | None:
    return None if p is None else [_num(p[0]), _num(p[1])]


def effect_json(e: Effect) -> dict[str, Any]:
    """One effect as a JSON object (NaN as null)."""
    return {"variant": e.variant, "metric": e.metric, "method": e.method,
            "control_mean": _num(e.control_mean), "variant_mean": _num(e.variant_mean),
            "effect": _num(e.effect), "relative": _num(e.relative), "ci": _pair(e.ci),
            "p_value": _num(e.p_value), "sequential_ci": _pair(e.sequential_ci),
            "sequential_p_value": (None if e.sequential_p_value is None
                                   else _num(e.sequential_p_value)),
            "n_control": e.n_control, "n_variant": e.n_variant}


def analysis_json(a: Analysis) -> dict[str, Any]:
    """The analysis as a JSON object: design, alpha, effects, warnings (codes first)."""
    return {"design": a.design, "alpha": a.alpha, "effects": [effect_json(e) for e in a.effects],
            "warnings": list(a.warnings),
            "warning_codes": [w.split(":", 1)[0] for w in a.warnings]}


TABLE_COLUMNS = ("variant", "metric", "control", "variant mean", "effect", "relative",
                 "CI", "p", "always-valid CI", "n (c/v)", "method")


def _g(x: float) -> str:
    return "-" if not math.isfinite(x) else f"{x:.4g}"


def effect_row(e: Effect) -> tuple[str, ...]:
    """The table row of one effect, formatted (4 significant digits), in ``TABLE_COLUMNS``
    order."""
    seq = "-" if e.sequential_ci is None else f"[{_g(e.sequential_ci[0])}, {_g(e.sequential_ci[1])}]"
    rel = "-" if not math.isfinite(e.relative) else f"{100 * e.relative:+.2f}%"
    return (e.variant, e.metric, _g(e.control_mean), _g(e.variant_mean), f"{e.effect:+.4g}", rel,
            f"[{_g(e.ci[0])}, {_g(e.ci[1])}]", f"{e.p_value:.3g}", seq,
            f"{e.n_control}/{e.n_variant}", e.method)


NOT_YET = frozenset({"control_missing", "variant_missing", "too_few_units", "too_few_clusters",
                     "did_cell_missing"})
"""Errors that only say an early look has too little data; a look with them is left out."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Look:
    """The effect of one variant as known at ``time_s``: the fixed-horizon interval (valid
    only at a horizon fixed in advance) and the always-valid one, made monotone over looks."""

    time_s: float
    effect: float
    ci: tuple[float, float]
    sequential_ci: tuple[float, float]
    sequential_p_value: float


def effect_over_time(observations: Sequence[Observation], *, design: Design,
                     looks_s: Sequence[float], variant: str, metric: str = "value",
                     alpha: float = 0.05, control: str = CONTROL,
                     options: Mapping[str, Any] | None = None) -> tuple[Look, ...]:
    """The analysis re-run at each look on the observations with ``time_s <= look``, for
    ``variant``; looks with too few observations yet are left out. The always-valid intervals
    are intersected across looks and their p-values take the running minimum (both stay
    valid, ``sequential.running``). Every observation needs a ``time_s``."""
    if any(o.time_s is None for o in observations):
        raise InvalidInput("time_missing", "results over time need time_s on every observation",
                           field="time_s")
    looks = sorted(looks_s)
    kept: list[tuple[float, Effect]] = []
    for t in looks:
        seen = [o for o in observations if o.time_s is not None and o.time_s <= t]
        try:
            a = analyze(seen, design=design, metric=metric, alpha=alpha, control=control,
                        **dict(options or {}))
        except InvalidInput as exc:
            if exc.code in NOT_YET:
                continue  # not enough data at this look yet
            raise
        for e in a.effects:
            if e.variant == variant and e.sequential_ci is not None:
                kept.append((t, e))
    seq = running([SequentialResult(ci=e.sequential_ci or e.ci,
                                    p_value=e.sequential_p_value if e.sequential_p_value
                                    is not None else 1.0) for _, e in kept])
    return tuple(Look(time_s=t, effect=e.effect, ci=e.ci, sequential_ci=s.ci,
                      sequential_p_value=s.p_value) for (t, e), s in zip(kept, seq, strict=True))
