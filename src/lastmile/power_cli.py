"""``lastmile power mde|weeks|simulate``: how long an experiment must run, what it can
detect, and power by simulation on local processes or a Dask cluster (docs/experiments.md,
"Analysis")."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lastmile.core.errors import DomainError

if TYPE_CHECKING:
    from lastmile.core.experiments.power import Clustering

power_app = typer.Typer(
    help="Experiment power: the minimum detectable effect, the duration in whole weeks, and "
    "power by simulation (local processes, or a Dask cluster with --dask).",
    no_args_is_help=True)
console = Console()

Sd = Annotated[float, typer.Option(help="standard deviation of the metric per unit")]
UnitsPerWeek = Annotated[float, typer.Option(help="units (orders, consumers) entering per week")]
Alpha = Annotated[float, typer.Option(help="two-sided significance level")]
Power = Annotated[float, typer.Option(help="probability of detecting the effect")]
Share = Annotated[float, typer.Option(help="share of units treated")]
Icc = Annotated[float, typer.Option(help="intra-cluster correlation (0: independent units)")]
ClusterSize = Annotated[float, typer.Option(
    help="units per cluster: per week for --grows-weekly (couriers), else fixed (windows)")]
Cv = Annotated[float, typer.Option(help="coefficient of variation of cluster sizes")]
Grows = Annotated[bool, typer.Option(
    help="clusters gain units each week (courier A/B) instead of more clusters (switchback)")]


def _clustering(icc: float, cluster_size: float, cv: float, grows_weekly: bool
                ) -> Clustering | None:
    """None for independent units (the defaults), else the clustering (validated)."""
    from lastmile.core.experiments.power import Clustering

    if icc == 0 and cluster_size == 1:
        return None
    return Clustering(icc=icc, cluster_size=cluster_size, cv=cv, grows_weekly=grows_weekly)


def _fail(exc: DomainError) -> typer.Exit:
    console.print(f"[red]{exc.message}[/red]")
    return typer.Exit(2)


@power_app.command("mde")
def mde_command(sd: Sd, units_per_week: UnitsPerWeek,
                weeks: Annotated[int, typer.Option(help="whole weeks the experiment runs")] = 2,
                alpha: Alpha = 0.05, power: Power = 0.8, treated_share: Share = 0.5,
                icc: Icc = 0.0, cluster_size: ClusterSize = 1.0, cv: Cv = 0.0,
                grows_weekly: Grows = False) -> None:
    """The minimum detectable effect after WEEKS whole weeks, as one JSON line."""
    from lastmile.core.experiments.power import mde_after_weeks

    try:
        cl = _clustering(icc, cluster_size, cv, grows_weekly)
        value = mde_after_weeks(weeks=weeks, sd=sd, units_per_week=units_per_week, alpha=alpha,
                                power=power, treated_share=treated_share,
                                clustering=cl)
    except DomainError as exc:
        raise _fail(exc) from exc
    print(json.dumps({"weeks": weeks, "mde": round(value, 6), "relative_to_sd": round(value / sd, 6)}))


@power_app.command("weeks")
def weeks_command(effect: Annotated[float, typer.Option(help="the effect to detect (absolute)")],
                  sd: Sd, units_per_week: UnitsPerWeek, alpha: Alpha = 0.05, power: Power = 0.8,
                  treated_share: Share = 0.5, icc: Icc = 0.0, cluster_size: ClusterSize = 1.0,
                  cv: Cv = 0.0, grows_weekly: Grows = False,
                  max_weeks: Annotated[int, typer.Option(help="give up after")] = 52) -> None:
    """Whole weeks needed to detect EFFECT (null when MAX_WEEKS are not enough), as JSON."""
    from lastmile.core.experiments.power import weeks_needed

    try:
        cl = _clustering(icc, cluster_size, cv, grows_weekly)
        weeks = weeks_needed(effect=effect, sd=sd, units_per_week=units_per_week, alpha=alpha,
                             power=power, treated_share=treated_share,
                             clustering=cl,
                             max_weeks=max_weeks)
    except DomainError as exc:
        raise _fail(exc) from exc
    print(json.dumps({"effect": effect, "weeks": weeks}))


@power_app.command("simulate")
def simulate_command(
    design: Annotated[str, typer.Option(help="ab, courier_ab, switchback or market_ab")] = "ab",
    effect: Annotated[float, typer.Option(help="injected effect, in units of --sd")] = 0.0,
    units: Annotated[int, typer.Option(help="orders per experiment (markets for market_ab)")] = 400,
    cluster_size: ClusterSize = 1.0, icc: Icc = 0.0, sd: Sd = 1.0,
    simulations: Annotated[int, typer.Option(help="seeded experiments to run")] = 200,
    seed: Annotated[int, typer.Option(help="seed all simulation seeds are spawned from")] = 0,
    alpha: Alpha = 0.05,
    dask: Annotated[str | None, typer.Option(
        help="Dask scheduler address (tcp://host:8786); default: local processes")] = None,
    processes: Annotated[int | None, typer.Option(
        help="local processes (default: one per core; 1: in this process)")] = None,
) -> None:
    """Power by simulation: SIMULATIONS seeded synthetic experiments of DESIGN analysed end
    to end; the share rejecting at ALPHA with its Wilson interval, as one JSON line (an
    --effect 0 run is an A/A test: its share should contain ALPHA)."""
    from functools import partial

    from lastmile.adapters.power_runner import simulate_power
    from lastmile.core.experiments.synthetic import SIMULATED_DESIGNS, simulated_p_value

    if design not in SIMULATED_DESIGNS:
        console.print(f"[red]--design must be one of {', '.join(SIMULATED_DESIGNS)} "
                      f"(got {design!r})[/red]")
        raise typer.Exit(2)
    if simulations < 1 or units < 2:
        console.print(f"[red]--simulations must be >= 1 and --units >= 2 "
                      f"(got {simulations}, {units})[/red]")
        raise typer.Exit(2)
    sim = partial(simulated_p_value, design=design, effect=effect * sd, units=units,
                  cluster_size=cluster_size, icc=icc, sd=sd)
    try:
        with Progress(TextColumn(f"simulating {design}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=Console(stderr=True)) as bar:
            task = bar.add_task("sims", total=simulations)
            res = simulate_power(sim, simulations=simulations, seed=seed, alpha=alpha,
                                 dask_address=dask, processes=processes,
                                 on_progress=lambda done, _total: bar.update(task, completed=done))
    except DomainError as exc:
        raise _fail(exc) from exc
    print(json.dumps({"design": design, "effect": effect, "units": units, "icc": icc,
                      "cluster_size": cluster_size, "simulations": res.simulations,
                      "rejections": res.rejections, "power": res.power,
                      "power_ci": [round(res.ci[0], 4), round(res.ci[1], 4)],
                      "alpha": alpha, "backend": "dask" if dask else "processes"}))
