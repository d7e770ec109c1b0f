"""Plots of a run (matplotlib, Agg backend, PNG next to the JSON summary)."""

from __future__ import annotations

from pathlib import Path

from lastmile.sim.model import WorldLog


def _hours(t: float, start: float) -> float:
    return (t - start) / 3600


def write_plots(log: WorldLog, out_dir: Path, *, title: str) -> list[Path]:
    """Click-to-door over time; active couriers vs open orders over time. Returns the files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    done = sorted((o for o in log.orders.values() if o.delivered_at is not None),
                  key=lambda o: o.placed_at)
    x = [_hours(o.placed_at, log.start) for o in done]
    y = [((o.delivered_at or 0.0) - o.placed_at) / 60 for o in done]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.scatter(x, y, s=10, alpha=0.5, label="delivered order")
    window = 15
    if len(y) >= window:
        rolling = [sorted(y[i - window + 1:i + 1])[window // 2] for i in range(window - 1, len(y))]
        ax.plot(x[window - 1:], rolling, color="crimson", label=f"rolling median ({window})")
    ax.set_xlabel("hours since start (by placement time)")
    ax.set_ylabel("click-to-door (min)")
    ax.set_title(f"{title}: click-to-door")
    ax.legend(loc="upper left")
    fig.tight_layout()
    c2d = out_dir / "click_to_door.png"
    fig.savefig(c2d, dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(9, 4.5))
    t = [_hours(s.t, log.start) for s in log.samples]
    ax.step(t, [s.on_shift for s in log.samples], where="post", label="couriers on shift")
    ax.step(t, [s.busy for s in log.samples], where="post", label="couriers with orders")
    ax.step(t, [s.open_orders for s in log.samples], where="post",
            label="open orders (not picked up)")
    ax.set_xlabel("hours since start")
    ax.set_ylabel("count")
    ax.set_title(f"{title}: supply and demand")
    ax.legend(loc="upper left")
    fig.tight_layout()
    supply = out_dir / "supply_demand.png"
    fig.savefig(supply, dpi=110)
    plt.close(fig)
    return [c2d, supply]
