"""``lastmile mdrp``: replay Grubhub MDRP instances through the dispatcher.

Instances: Reyes et al. (2018), "The Meal Delivery Routing Problem", published
in the public repository grubhub/mdrplib. One instance folder writes its three
solution files and ``metrics.json`` straight into ``--out``; several write into
``--out/<instance name>/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lastmile.core.errors import InvalidInput
from lastmile.sim.mdrp.runner import RunOutcome, policy_named, run_instance


def mdrp(
    instance_dirs: Annotated[
        list[Path], typer.Argument(help="MDRP instance folder(s) (orders.txt, couriers.txt, ...)")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output folder (one instance: the files go here)")
    ],
    policy: Annotated[str, typer.Option(help="Dispatch policy: greedy or optimised")] = "optimised",
    tick: Annotated[int, typer.Option(help="Minutes of sim time between dispatch rounds")] = 1,
    prepositioning: Annotated[
        bool, typer.Option("--prepositioning/--no-prepositioning", help="Variant: preposition")
    ] = True,
    updates: Annotated[
        bool, typer.Option("--updates/--no-updates", help="Variant: assignment updates")
    ] = True,
    check: Annotated[bool, typer.Option("--check/--no-check", help="Run feasibility check")] = True,
) -> None:
    """Run MDRP instance(s) and write solution_info_*.txt and metrics.json.

    metrics.json holds total_payment: courier pay in dollars, as the MDRP evaluator computes it.
    """
    console = Console()
    if tick < 1:
        raise typer.BadParameter(f"tick must be >= 1 minute (got {tick})", param_hint="--tick")
    for d in instance_dirs:
        if not (d / "orders.txt").is_file():
            raise typer.BadParameter(
                f"{d} has no orders.txt; expected an MDRP instance folder",
                param_hint="INSTANCE_DIRS",
            )
    try:
        chosen = policy_named(policy, prepositioning=prepositioning, updates=updates)
    except InvalidInput as exc:
        raise typer.BadParameter(exc.message, param_hint="--policy") from exc
    outcomes: list[RunOutcome] = []
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("MDRP", total=len(instance_dirs))
        for d in instance_dirs:
            progress.update(task, description=f"MDRP {d.name}")
            target = out if len(instance_dirs) == 1 else out / d.name
            outcomes.append(run_instance(d, target, policy=chosen, tick_min=tick, check=check))
            progress.advance(task)
    console.print(_summary(outcomes, policy))
    if any(o.violations for o in outcomes):
        raise typer.Exit(code=1)


def _fmt(value: object) -> str:
    return "-" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)


def _summary(outcomes: list[RunOutcome], policy: str) -> Table:
    table = Table(title=f"MDRP ({policy}); instances: Reyes et al. 2018, grubhub/mdrplib")
    for col in (
        "instance",
        "delivered",
        "c2d mean",
        "floor mean",
        "excess",
        "r2p mean",
        "orders/bundle",
        "util",
        "cost/order",
        "feasible",
        "wall s",
    ):
        table.add_column(col, justify="left" if col == "instance" else "right")
    for o in outcomes:
        m = o.metrics
        bundle = m["orders_per_bundle"]
        table.add_row(
            o.instance,
            f"{m['orders_delivered']}/{m['orders']}",
            _fmt(m["c2d_mean"]),
            _fmt(m["floor_mean"]),
            _fmt(m["c2d_excess"]),
            _fmt(m["r2p_mean"]),
            _fmt(bundle["mean"] if isinstance(bundle, dict) else None),
            _fmt(m["utilisation"]),
            _fmt(m["cost_per_order"]),
            _fmt(m["feasible"]),
            _fmt(o.wall_s),
        )
    return table
