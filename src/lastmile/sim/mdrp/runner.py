"""Run MDRP instances end to end: load, simulate, write, check, measure.

Policies by name: ``greedy`` (nearest idle courier, the floor baseline) and
``optimised`` (bundling + optimal matching + rolling horizon; the variants
``prepositioning`` and ``updates`` switch on or off).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

from lastmile.core.dispatch import DispatchPolicy, PolicyKind
from lastmile.core.errors import InvalidInput
from lastmile.sim.mdrp.feasibility import Violation, check_solution
from lastmile.sim.mdrp.instance import load_instance
from lastmile.sim.mdrp.metrics import compute_metrics
from lastmile.sim.mdrp.pay import courier_statements, delivered_from_solution, payment_metrics
from lastmile.sim.mdrp.simulation import simulate
from lastmile.sim.mdrp.solution import write_solution

POLICIES = ("greedy", "optimised")


def policy_named(name: str, *, prepositioning: bool = True, updates: bool = True) -> DispatchPolicy:
    """The dispatch policy called ``name``; raises InvalidInput for an unknown name."""
    if name not in POLICIES:
        raise InvalidInput(
            "unknown_policy", f"policy must be one of {POLICIES} (got {name!r})", field="policy"
        )
    if name == "greedy":
        return DispatchPolicy(
            kind=PolicyKind.GREEDY, allow_updates=False, allow_prepositioning=False
        )
    # MDRP's rules: one merchant per route, so stacking stays off whatever the default.
    return replace(DispatchPolicy(), allow_prepositioning=prepositioning, allow_updates=updates,
                   allow_stacking=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOutcome:
    instance: str
    out_dir: Path
    metrics: dict[str, object]
    violations: tuple[Violation, ...]
    wall_s: float


def run_instance(
    instance_dir: Path,
    out_dir: Path,
    *,
    policy: DispatchPolicy,
    tick_min: int = 1,
    check: bool = True,
) -> RunOutcome:
    """Simulate one instance, write the three solution files and ``metrics.json`` to ``out_dir``.

    ``metrics.json`` holds ``total_payment``: the couriers' compensation in dollars as the
    MDRP evaluator computes it from the solution files (``sim.mdrp.pay``).
    """
    started = time.perf_counter()
    instance = load_instance(instance_dir)
    result = simulate(instance, policy, tick_min=tick_min)
    write_solution(result, out_dir)
    # Pay is read back from the written orders file, the one the MDRP evaluator reads.
    pay = payment_metrics(courier_statements(instance, delivered_from_solution(instance, out_dir)))
    metrics = {**compute_metrics(result), **pay}
    wall = time.perf_counter() - started
    violations = tuple(check_solution(instance_dir, out_dir)) if check else ()
    metrics = {
        **metrics,
        "wall_s": wall,
        "feasible": not violations if check else None,
        "violations": len(violations),
    }
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return RunOutcome(
        instance=instance.name, out_dir=out_dir, metrics=metrics, violations=violations, wall_s=wall
    )
