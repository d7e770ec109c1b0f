"""``lastmile simulate --compare-obedient``: the live path against MDRP-style obedience.

The same scenario and seed (so the same city, the same consumers and the same kitchens:
each has its own random stream) run three times through the real use cases:

- ``obedient``: every offer accepted at once (``accept_p`` 1, no response time), as
  MDRP's couriers do; the dispatcher as today (``acceptance_weight`` 0);
- ``live``: couriers with hidden propensities (``sim.propensity``) that decline, take
  time to answer and let offers expire; the dispatcher as today (learning off);
- ``live_learning``: the same couriers; the dispatcher learns acceptance from its own
  offers (``app.acceptance``, refitted every 10 simulated minutes) and prices it
  (``acceptance_weight``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from rich.table import Table

from lastmile.app.acceptance import AcceptanceLearner
from lastmile.core.dispatch import DispatchPolicy
from lastmile.core.pay import DEFAULT_POLICY, PayPolicy
from lastmile.sim.world import WorldConfig

VARIANTS = ("obedient", "live", "live_learning")
COMPARED = ("orders_placed", "orders_delivered", "orders_cancelled", "offers_made",
            "acceptance_rate", "expired_share", "offers_per_order", "time_to_assignment_min",
            "click_to_door_min", "late_share", "orders_open_at_end", "courier_utilisation",
            "courier_busy_min_per_order", "stacked_share", "orders_moved")


@dataclass(frozen=True, slots=True, kw_only=True)
class Variant:
    config: WorldConfig
    policy: DispatchPolicy
    acceptance: AcceptanceLearner | None


def variant(name: str, *, dispatch_every_s: float, acceptance_weight: float,
            pay: PayPolicy = DEFAULT_POLICY, base: DispatchPolicy | None = None) -> Variant:
    """The world and dispatcher settings of one compared run (module docstring); ``base``
    is the dispatcher's policy (``DispatchPolicy()``; ``simulate --stacking`` /
    ``--reassignment`` turn the live-city policies on in every run)."""
    base = base or DispatchPolicy()
    if name == "obedient":
        return Variant(config=WorldConfig(dispatch_every_s=dispatch_every_s, accept_p=1.0,
                                          respond_s=(0.0, 0.0)),
                       policy=base, acceptance=None)
    live = WorldConfig(dispatch_every_s=dispatch_every_s, propensities=True)
    if name == "live":
        return Variant(config=live, policy=base, acceptance=None)
    if name == "live_learning":
        return Variant(config=live, policy=replace(base, acceptance_weight=acceptance_weight),
                       acceptance=AcceptanceLearner(round_s=dispatch_every_s, pay=pay))
    raise ValueError(f"variant must be one of {VARIANTS} (got {name!r})")


def compare_live(scenario: str, *, seed: int | None, hours: float | None,
                 dispatch_every_s: float = 30.0, acceptance_weight: float = 1.0,
                 progress: Any = None, policy: DispatchPolicy | None = None,
                 ) -> dict[str, dict[str, Any]]:
    """KPIs of each variant, same scenario and seed (``progress(name)`` before each run)."""
    from lastmile.sim.scenarios import get_scenario
    from lastmile.sim.simulate_command import run_scenario

    local_pay = get_scenario(scenario).local_pay()  # offers' hours in the city's time

    out: dict[str, dict[str, Any]] = {}
    for name in VARIANTS:
        if progress is not None:
            progress(name)
        v = variant(name, dispatch_every_s=dispatch_every_s, acceptance_weight=acceptance_weight,
                    pay=local_pay, base=policy)
        out[name] = run_scenario(scenario, seed=seed, hours=hours, config=v.config,
                                 policy=v.policy, acceptance=v.acceptance).kpis
    return out


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        return " / ".join("-" if v is None else str(v) for v in value.values())
    return str(value)


def compare_table(results: dict[str, dict[str, Any]], title: str) -> Table:
    """The compared KPIs side by side (a dict KPI as mean / p50 / p90)."""
    table = Table(title=title)
    table.add_column("KPI")
    for name in results:
        table.add_column(name, justify="right")
    for key in COMPARED:
        table.add_row(key, *(_cell(kpis.get(key)) for kpis in results.values()))
    return table


def compare_summary(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The compared KPIs of each variant (the JSON the command prints)."""
    return {name: {k: kpis.get(k) for k in COMPARED} for name, kpis in results.items()}
