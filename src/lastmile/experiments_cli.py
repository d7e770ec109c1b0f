"""``lastmile experiment create|list|show|start|stop|analyze`` (docs/experiments.md)."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from lastmile.cli_support import DataDir, DbUrl, TenantOpt, as_tenant, platform_services

if TYPE_CHECKING:
    from lastmile.core.experiments.definition import Experiment

T = TypeVar("T")
experiment_app = typer.Typer(
    help="Experiments on the platform's levers (dispatch, fees, eta): A/B by consumer or "
    "order, courier A/B, switchback by region and time window, market A/B with strata.",
    no_args_is_help=True)
console = Console()

Ref = Annotated[str, typer.Argument(help="the experiment's id or name")]


def _doc(e: Experiment) -> dict[str, Any]:
    return {"id": e.id, "name": e.name, "lever": e.lever, "design": e.design,
            "unit": e.unit_kind, "state": e.state.value,
            "variants": [{"name": v.name, "weight": v.weight, "params": v.config}
                         for v in e.variants],
            "layer": e.layer, "share": [e.span.low, e.span.high], "window_s": e.window_s,
            "burn_in_s": e.burn_in_s, "wash_out_s": e.wash_out_s,
            "allocation": [dataclasses.asdict(s) for s in e.allocation],
            "created_at": e.created_at, "started_at": e.started_at,
            "stopped_at": e.stopped_at}


def _variant(raw: str) -> Any:
    """``NAME[:WEIGHT][=JSON]``, e.g. ``treatment:2={"late_weight": 0.5}``."""
    from lastmile.core.experiments.assignment import Variant
    from lastmile.core.experiments.definition import params_from

    head, _, body = raw.partition("=")
    name, _, weight = head.partition(":")
    params = json.loads(body) if body else {}
    if not isinstance(params, dict):
        raise ValueError(f"--variant {raw!r}: the params after = must be a JSON object")
    return Variant(name=name, weight=float(weight) if weight else 1.0,
                   params=params_from(params))


@experiment_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="lowercase letters, digits, _ and -")],
    lever: Annotated[str, typer.Option(help="dispatch, fees, eta or other")],
    design: Annotated[str, typer.Option(
        help="ab, courier_ab, switchback, market_ab or interleaving")] = "ab",
    variant: Annotated[list[str] | None, typer.Option(
        help="NAME[:WEIGHT][=JSON params], repeat; one must be control, e.g. --variant "
        "control --variant 'treatment={\"late_weight\": 0.5}'")] = None,
    unit: Annotated[str | None, typer.Option(help="ab only: consumer (default) or order")]
    = None,
    layer: Annotated[str | None, typer.Option(help="exclusive with its other experiments")]
    = None,
    holdout: Annotated[float | None, typer.Option(help="the layer's held-out share")] = None,
    share: Annotated[float, typer.Option(help="the share of the layer it takes")] = 1.0,
    window_s: Annotated[float, typer.Option(help="switchback window, seconds")] = 3_600.0,
    burn_in_s: Annotated[float, typer.Option(help="excluded after a switch")] = 0.0,
    wash_out_s: Annotated[float, typer.Option(help="excluded before a switch")] = 0.0,
    strata: Annotated[Path | None, typer.Option(
        help="market_ab: a JSON file {market: [metric, ...]} to stratify on")] = None,
    description: str = "",
    tenant: TenantOpt = None, data_dir: DataDir = None, database_url: DbUrl = None,
) -> None:
    """Define an experiment (a draft); prints it as JSON."""
    from lastmile.app import experiments
    from lastmile.app.experiments import NewExperiment
    from lastmile.core.errors import DomainError

    try:
        variants = tuple(_variant(v) for v in (variant or ["control", "treatment"]))
        metrics = json.loads(strata.read_text()) if strata is not None else None
    except (OSError, ValueError, DomainError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    spec = NewExperiment(name=name, lever=lever, design=design,  # type: ignore[arg-type]
                         unit=unit, variants=variants, layer=layer,  # type: ignore[arg-type]
                         holdout=holdout, share=share, window_s=window_s,
                         burn_in_s=burn_in_s, wash_out_s=wash_out_s, strata_metrics=metrics,
                         description=description)
    with platform_services(data_dir, database_url) as svc:
        made = as_tenant(console, tenant, lambda: experiments.create(svc, spec))
    typer.echo(json.dumps(_doc(made), indent=2))


@experiment_app.command("list")
def list_(
    state: Annotated[str | None, typer.Option(help="draft, running or stopped")] = None,
    tenant: TenantOpt = None, data_dir: DataDir = None, database_url: DbUrl = None,
) -> None:
    """The tenant's experiments, oldest first."""
    from lastmile.app import experiments
    from lastmile.core.experiments.definition import State

    if state is not None and state not in {s.value for s in State}:
        console.print(f"[red]--state must be draft, running or stopped (got {state!r})[/red]")
        raise typer.Exit(2)
    with platform_services(data_dir, database_url) as svc:
        found = as_tenant(console, tenant, lambda: experiments.list_experiments(
            svc, state=State(state) if state else None, limit=experiments.MAX_LIST))
    table = Table(title=f"{len(found)} experiment(s)")
    for col in ("name", "id", "lever", "design", "unit", "state", "variants", "layer"):
        table.add_column(col)
    for e in found:
        table.add_row(e.name, e.id, e.lever, e.design, e.unit_kind, e.state.value,
                      ", ".join(f"{v.name}:{v.weight:g}" for v in e.variants), e.layer)
    console.print(table)


@experiment_app.command("show")
def show(ref: Ref, tenant: TenantOpt = None, data_dir: DataDir = None,
         database_url: DbUrl = None) -> None:
    """One experiment as JSON."""
    from lastmile.app import experiments

    with platform_services(data_dir, database_url) as svc:
        found = as_tenant(console, tenant, lambda: experiments.get(svc, ref))
    typer.echo(json.dumps(_doc(found), indent=2))


@experiment_app.command("start")
def start(ref: Ref, tenant: TenantOpt = None, data_dir: DataDir = None,
          database_url: DbUrl = None) -> None:
    """draft -> running: the levers serve it from now."""
    from lastmile.app import experiments

    with platform_services(data_dir, database_url) as svc:
        done = as_tenant(console, tenant, lambda: experiments.start(svc, ref))
    console.print(f"experiment {done.name} running")


@experiment_app.command("stop")
def stop(ref: Ref, tenant: TenantOpt = None, data_dir: DataDir = None,
         database_url: DbUrl = None) -> None:
    """running (or draft) -> stopped."""
    from lastmile.app import experiments

    with platform_services(data_dir, database_url) as svc:
        done = as_tenant(console, tenant, lambda: experiments.stop(svc, ref))
    console.print(f"experiment {done.name} stopped")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


@experiment_app.command("analyze")
def analyze(
    ref: Ref,
    metric: Annotated[str, typer.Option(
        help="click_to_door_min, delivery_fee_minor or delivered")] = "click_to_door_min",
    alpha: Annotated[float, typer.Option(help="1 - the intervals' confidence")] = 0.05,
    tenant: TenantOpt = None, data_dir: DataDir = None, database_url: DbUrl = None,
) -> None:
    """Every variant against control on the metric: a table, then the analysis as JSON
    (the last line)."""
    from lastmile.app import experiments_data

    with platform_services(data_dir, database_url) as svc:
        result = as_tenant(console, tenant, lambda: experiments_data.analyze(
            svc, ref, metric=metric, alpha=alpha))
    doc = _finite(dataclasses.asdict(result))
    table = Table(title=f"{ref}: {metric} ({doc['design']}, alpha {alpha})")
    for col in ("variant", "control", "variant mean", "effect", "interval", "p", "method"):
        table.add_column(col)
    for e in doc["effects"]:
        lo, hi = e["ci"]
        table.add_row(e["variant"], f"{e['control_mean']}", f"{e['variant_mean']}",
                      f"{e['effect']}", f"[{lo}, {hi}]", f"{e['p_value']}", e["method"])
    console.print(table)
    for w in doc.get("warnings", []):
        console.print(f"[yellow]{w}[/yellow]")
    typer.echo(json.dumps({"experiment": ref, "metric": metric, **doc}))
