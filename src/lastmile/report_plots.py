"""The plot of a day's courier earnings per hour (matplotlib, Agg backend, PNG)."""

from __future__ import annotations

from pathlib import Path

from lastmile.app.reports import DailySettlement
from lastmile.core.money import minor_exponent


def write_earnings_plot(report: DailySettlement, path: Path) -> Path:
    """One line per currency: the couriers' earnings (pay, tips, top-ups) posted in each
    local hour of the day, in major units; the file written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hours = list(range(24))
    totals: dict[str, list[int]] = {}
    for c in report.settlement.couriers:
        row = totals.setdefault(c.currency, [0] * 24)
        for hour, minor in enumerate(c.earnings_by_hour):
            row[hour] += minor
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for currency, per_hour in sorted(totals.items()):
        scale = 10 ** minor_exponent(currency)
        ax.bar([h + 0.5 for h in hours], [m / scale for m in per_hour], width=0.9, alpha=0.6,
               label=f"couriers' earnings ({currency})")
    ax.set_xlim(0, 24)
    ax.set_xticks(range(0, 25, 3))
    ax.set_xlabel(f"hour of {report.day.isoformat()} ({report.time_zone})")
    ax.set_ylabel("earnings posted (pay + tips + top-ups)")
    ax.set_title(f"Courier earnings per hour, {report.day.isoformat()}")
    if totals:
        ax.legend(loc="upper left")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
