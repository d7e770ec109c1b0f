"""``lastmile demo``: run a synthetic city through the real API in accelerated time."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from lastmile.sim.model import WorldLog
from lastmile.sim.scenarios import SCENARIOS

if TYPE_CHECKING:
    from lastmile.sim.demo import DemoRun

_REFRESH_WALL_S = 0.25
_CALL_BUDGET_PER_S = 60.0


def _live_line(log: WorldLog) -> str:
    orders = list(log.orders.values())
    delivered = [o for o in orders if o.delivered_at is not None]
    c2d = sorted(((o.delivered_at or 0.0) - o.placed_at) / 60 for o in delivered)
    p50 = f"{c2d[len(c2d) // 2]:.0f} min" if c2d else "-"
    on_shift = log.on_shift()
    waiting = sum(1 for o in orders if o.open)
    cancelled = sum(1 for o in orders if o.cancelled_at is not None)
    return (f"{len(orders)} placed, {len(delivered)} delivered, {waiting} waiting, "
            f"{cancelled} cancelled | c2d p50 {p50} | {on_shift} couriers on shift")


def _play(run: DemoRun, console: Console, total: float) -> WorldLog:
    """Run the world with a live progress bar until its end or Ctrl-C; returns its log."""
    start = run.world.log.start
    last = [0.0]
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                  TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("live", total=total, info="")

        def progress(t: float, log: WorldLog) -> None:
            wall = time.monotonic()
            if wall - last[0] >= _REFRESH_WALL_S:
                last[0] = wall
                lag = max(0.0, run.clock.now() - t)
                bar.update(task, completed=min(total, t - start),
                           info=f"{_live_line(log)} | world lag {lag:.0f} s")

        try:
            log: WorldLog = run.world.run(progress=progress, stop=run.stop)
        except KeyboardInterrupt:
            log = run.world.log
            log.end = run.clock.now()
            run.world.close_books(log.end)
            bar.update(task, info=_live_line(log))
            return log
        bar.update(task, completed=total, info=_live_line(log))
    return log


def demo(
    scenario: Annotated[str, typer.Option(help=f"one of: {', '.join(SCENARIOS)}")] = "lunch",
    minutes: Annotated[float, typer.Option(min=1, max=24 * 60, help="simulated minutes to run")
                       ] = 120.0,
    speed: Annotated[float | None, typer.Option(min=1, max=600, help="simulated seconds per "
                                                "wall second (default: 60, lower for big "
                                                "fleets so HTTP keeps up)")] = None,
    port: Annotated[int, typer.Option(min=1, max=65535, help="port of the API server")] = 8765,
    seed: Annotated[int | None, typer.Option(help="random seed (default: the scenario's)")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="folder for the SQLite file, kept "
                                                  "(default: a temporary folder, deleted at "
                                                  "the end)")] = None,
    dispatch_every: Annotated[float, typer.Option(help="dispatcher tick, simulated s")] = 30.0,
    eta_models: Annotated[Path | None, typer.Option(
        help="folder of ETA model files and their registry.json: its incumbent serves the "
             "quotes (docs/eta.md; default: the heuristic)")] = None,
    eta_model: Annotated[str | None, typer.Option(
        help="the quotes' ETA model without model files: heuristic-3 (the courier queue, "
             "core.eta.queue) or heuristic-2 (from counts); default: the pricing policy's "
             "(docs/eta.md)")] = None,
) -> None:
    """Seed a city and run it live through the HTTP API with the dispatcher; print KPIs."""

    from lastmile.sim.demo import start_demo
    from lastmile.sim.kpis import compute_kpis, ledger_kpis
    from lastmile.sim.simulate_command import (
        eta_pricing,
        kpi_table,
        scenario_or_exit,
        settle_ledger,
    )

    console = Console()
    sc = scenario_or_exit(scenario, console)
    pricing = eta_pricing(eta_model, console)
    seed = sc.seed if seed is None else seed
    if speed is None:
        # Each courier makes ~3 calls per simulated minute (pings, offer polls); one process
        # on 2 cores serves ~60 calls a wall second comfortably, so big fleets run slower.
        speed = min(60.0, _CALL_BUDGET_PER_S * 20 / sum(c.couriers for c in sc.cities))
    console.print(f"[bold]{sc.name}[/bold]: {sc.description}")
    console.print(f"seeding the city and starting the API on 127.0.0.1:{port} ...")
    try:
        run = start_demo(sc, seed=seed, minutes=minutes, speed=speed, port=port,
                         data_dir=data_dir, dispatch_every_s=dispatch_every,
                         eta_models=eta_models, pricing=pricing)
    except RuntimeError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    console.print("ops dashboard (one per region):" if len(run.setup.city.regions) > 1
                  else "ops dashboard:")
    # The URL on a line of its own and never wrapped, so it can be copied whole.
    for url in run.dashboard_urls():
        console.print(url, soft_wrap=True, highlight=False)
    console.print(f"API docs: http://127.0.0.1:{port}/docs   ({minutes:g} simulated minutes at "
                  f"x{speed:g}: about {minutes * 60 / speed:.0f} s; Ctrl-C stops early)")
    dispatcher = run.container.dispatcher
    money: dict[str, object] = {}
    try:
        log = _play(run, console, minutes * 60)
        money = ledger_kpis(settle_ledger(run.container))  # before the server goes
    finally:  # an error or a second Ctrl-C still stops the server and frees the port
        run.close()
    local_pay = sc.local_pay()
    kpis = {**compute_kpis(log, pay_policy=local_pay), **money}
    kpis["http_calls"] = run.actions.calls
    if dispatcher is not None:
        kpis["dispatch_rounds"] = dispatcher.stats.rounds
        kpis["dispatch_errors"] = dispatcher.stats.errors
    console.print(kpi_table(kpis, f"{sc.name} live demo (seed {seed}, x{speed:g})"))
    typer.echo(json.dumps({"scenario": sc.name, "seed": seed, **kpis}, indent=2))
