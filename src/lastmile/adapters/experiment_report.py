"""An experiment's analysis for people: a rich table and a PNG of the effect with its
intervals over time (matplotlib, Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.table import Table

from lastmile.core.experiments.observations import Analysis
from lastmile.core.experiments.report import TABLE_COLUMNS, Look, effect_row


def analysis_table(analysis: Analysis, *, title: str | None = None) -> Table:
    """One row per variant against control; warnings as the caption."""
    table = Table(title=title or f"{analysis.design} analysis (alpha {analysis.alpha})")
    for col in TABLE_COLUMNS:
        table.add_column(col, justify="left" if col in ("variant", "metric", "method") else "right")
    for e in analysis.effects:
        table.add_row(*effect_row(e))
    if analysis.warnings:
        table.caption = "\n".join(f"! {w}" for w in analysis.warnings)
    return table


def write_effect_plot(looks: Sequence[Look], path: Path, *, title: str = "effect over time",
                      unit: str = "days", scale_s: float = 86400.0) -> Path:
    """The effect at each look with its fixed-horizon interval (band) and its always-valid
    interval (dashed); a line at 0. The file written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [look.time_s / scale_s for look in looks]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.fill_between(t, [look.ci[0] for look in looks], [look.ci[1] for look in looks],
                    alpha=0.25, label="confidence interval (fixed horizon)")
    ax.plot(t, [look.sequential_ci[0] for look in looks], "--", color="C1",
            label="always-valid interval")
    ax.plot(t, [look.sequential_ci[1] for look in looks], "--", color="C1")
    ax.plot(t, [look.effect for look in looks], "o-", color="C0", label="effect")
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel(f"time since start ({unit})")
    ax.set_ylabel("effect (variant - control)")
    ax.set_title(title)
    ax.legend(loc="best")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
