"""``lastmile simulate``: a scenario on the real use cases, on a simulated clock.

The platform runs in-process (SQLite in a temporary folder unless ``--data-dir``),
the world advances a ``ManualClock`` event by event and runs the dispatcher on
its tick. Prints the KPIs as a table and JSON; writes ``summary.json`` and the
plots to ``--out``.
"""

from __future__ import annotations

import json
import random
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lastmile.adapters.clock import ManualClock, SequentialIds
from lastmile.sim.model import WorldConfig, WorldLog
from lastmile.sim.scenarios import SCENARIOS, Scenario, get_scenario

if TYPE_CHECKING:
    from lastmile.app.acceptance import AcceptanceLearner
    from lastmile.bootstrap import Container
    from lastmile.core.dispatch import DispatchPolicy
    from lastmile.core.eta.queue import QueueParams
    from lastmile.core.ledger.settlement import Settlement
    from lastmile.core.pricing import PricingPolicy


class ManualDriver:
    """The world moves the manual clock to each event's time."""

    def __init__(self, clock: ManualClock):
        self.clock = clock

    def now(self) -> float:
        return self.clock.now()

    def advance_to(self, t: float) -> None:
        if t > self.clock.now():
            self.clock.set(t)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResult:
    log: WorldLog
    kpis: dict[str, Any]


def run_scenario(name: str | Scenario, *, seed: int | None = None, hours: float | None = None,
                 data_dir: Path | None = None, config: WorldConfig | None = None,
                 progress: Any = None, policy: DispatchPolicy | None = None,
                 acceptance: AcceptanceLearner | None = None,
                 pricing: PricingPolicy | None = None,
                 eta_models: Path | None = None,
                 queue_params: QueueParams | None = None) -> RunResult:
    """Build the platform and the city, play the world, compute the KPIs. Deterministic.

    ``name`` is a named scenario or a ``Scenario`` value (a bench's scaled or sliced one).
    ``policy`` and ``acceptance`` go to the dispatcher (``app.dispatching.dispatch_round``):
    a policy with ``acceptance_weight`` > 0 and a learner price the learnt acceptance.
    ``pricing``: the deployment's pricing policy instead of the default (its ETA heuristic
    among it; bench/eta_calibration.py). ``eta_models``: a folder of ETA model files and
    their registry (docs/eta.md, "Model files"): its incumbent serves the quotes.
    ``queue_params``: ``heuristic-3``'s constants instead of the default (served when the
    pricing policy's ``eta_queue``; bench/eta_calibration.py)."""
    from lastmile.app.acceptance import offer_trails
    from lastmile.bootstrap import build, install_ledger
    from lastmile.settings import Settings
    from lastmile.sim.actions import DirectActions
    from lastmile.sim.city import build_city
    from lastmile.sim.kpis import compute_kpis, ledger_kpis, offer_kpis
    from lastmile.sim.world import World

    scenario = name if isinstance(name, Scenario) else get_scenario(name)
    seed = scenario.seed if seed is None else seed
    cfg = config or WorldConfig()
    with tempfile.TemporaryDirectory(prefix="lastmile-sim-") as tmp:
        clock = ManualClock(start=scenario.day_start + scenario.start_h * 3600)
        container = build(Settings(data_dir=data_dir or Path(tmp), eta_models_dir=eta_models),
                          clock=clock,
                          ids=SequentialIds(), rng=random.Random(seed))
        if pricing is not None or queue_params is not None:
            container.services = replace(
                container.services, pricing=pricing or container.services.pricing,
                queue_params=queue_params or container.services.queue_params)
            container.tracking.services = container.services
        install_ledger(container)
        try:
            city = build_city(container.services, scenario, random.Random(seed))
            actions = DirectActions(container.services, container.tracking, policy=policy,
                                    acceptance=acceptance)
            world = World(city=city, scenario=scenario, actions=actions,
                          driver=ManualDriver(clock), seed=seed, config=cfg, hours=hours)
            log = world.run(progress=progress)
            trails = [t for r in city.regions
                      for t in offer_trails(container.services, r.id, since=log.start)]
            money = ledger_kpis(settle_ledger(container))
        finally:
            container.close()
    local_pay = scenario.local_pay()
    return RunResult(log=log, kpis={**compute_kpis(log, pay_policy=local_pay),
                                    **offer_kpis(log, trails), **money})


ETA_MODELS = ("heuristic-2", "heuristic-3")


def eta_pricing(eta_model: str | None, console: Console) -> PricingPolicy | None:
    """The default pricing policy serving ``eta_model`` (None: None, the policy's own);
    exits with a message for an unknown name."""
    from lastmile.core.pricing import PricingPolicy

    if eta_model is None:
        return None
    if eta_model not in ETA_MODELS:
        console.print(f"[red]unknown --eta-model {eta_model!r}; one of: "
                      f"{', '.join(ETA_MODELS)}[/red]")
        raise typer.Exit(2)
    return replace(PricingPolicy(), eta_queue=eta_model == "heuristic-3")


def settle_ledger(container: Container) -> Settlement:
    """Relay every event still in the outbox (the ledger subscriber posts them), then read
    the ledger's totals (``app.reports.ledger_totals``). The relay runs once, at the end, so
    the run itself (its ids and its events' order) is the same with or without a ledger."""
    from lastmile.adapters.bus.memory import InProcessBus
    from lastmile.adapters.bus.outbox import relay_once
    from lastmile.app.reports import ledger_totals

    bus = container.bus
    if isinstance(bus, InProcessBus):  # JetStream's own consumers post what it carries
        while relay_once(container.services, bus) > 0:
            pass
    return ledger_totals(container.services)


def kpi_table(kpis: dict[str, Any], title: str) -> Table:
    table = Table(title=title)
    table.add_column("KPI")
    table.add_column("value", justify="right")
    for key, value in kpis.items():
        if isinstance(value, dict):
            for sub, v in value.items():
                table.add_row(f"{key}.{sub}", "-" if v is None else str(v))
        else:
            table.add_row(key, "-" if value is None else str(value))
    return table


def scenario_or_exit(name: str, console: Console) -> Scenario:
    """The named scenario, or the reason printed and exit code 2."""
    from lastmile.core.errors import DomainError

    try:
        return get_scenario(name)
    except DomainError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(2) from exc


def simulate(
    scenario: Annotated[str, typer.Option(help=f"one of: {', '.join(SCENARIOS)}")] = "normal-day",
    seed: Annotated[int | None, typer.Option(help="random seed (default: the scenario's)")] = None,
    hours: Annotated[float | None, typer.Option(min=0.05, max=48, help="simulated hours "
                                                "(default: the scenario's)")] = None,
    out: Annotated[Path, typer.Option(help="folder for summary.json and the PNG plots")] = Path(
        "sim-out"),
    data_dir: Annotated[Path | None, typer.Option(help="keep the SQLite database here "
                                                  "(default: a temporary folder)")] = None,
    dispatch_every: Annotated[float, typer.Option(help="dispatcher tick, simulated s")] = 30.0,
    compare_obedient: Annotated[bool, typer.Option(
        help="run the live path (propensities, learning off and on) and MDRP-style instant "
             "obedience on the same city and seed; print them side by side")] = False,
    acceptance_weight: Annotated[float, typer.Option(
        min=0, help="--compare-obedient: weight of the learnt acceptance in the dispatcher's "
                    "costs (the live_learning run)")] = 1.0,
    eta_models: Annotated[Path | None, typer.Option(
        help="folder of ETA model files and their registry.json: its incumbent serves the "
             "quotes (docs/eta.md; default: the heuristic)")] = None,
    stacking: Annotated[bool, typer.Option(
        help="live-city policy: stack two nearby merchants' orders on one courier "
             "(allow_stacking, docs/stacking.md)")] = False,
    reassignment: Annotated[bool, typer.Option(
        help="live-city policy: move a held order to a courier who picks it up sooner "
             "(allow_reassignment, docs/reassignment.md)")] = False,
    on_the_go: Annotated[bool, typer.Option(
        help="couriers riding to a door answer offers as they come (default: only once "
             "idle)")] = False,
    eta_model: Annotated[str | None, typer.Option(
        help="the quotes' ETA model without model files: heuristic-3 (the courier queue, "
             "core.eta.queue) or heuristic-2 (from counts); default: the pricing policy's "
             "(docs/eta.md)")] = None,
) -> None:
    """Run a scenario on the real use cases with a simulated clock; print and save the KPIs."""
    from lastmile.core.dispatch import DispatchPolicy
    from lastmile.sim.plots import write_plots

    console = Console()
    sc = scenario_or_exit(scenario, console)
    policy = DispatchPolicy(allow_stacking=stacking, allow_reassignment=reassignment)
    if compare_obedient:
        _compare(sc, seed=seed, hours=hours, out=out, dispatch_every=dispatch_every,
                 acceptance_weight=acceptance_weight, console=console, policy=policy)
        return
    total = (hours or sc.hours) * 3600
    start = sc.day_start + sc.start_h * 3600
    console.print(f"[bold]{sc.name}[/bold]: {sc.description}")
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                  TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("simulating", total=total, info="")

        def progress(t: float, log: WorldLog) -> None:
            bar.update(task, completed=min(total, t - start),
                       info=f"{len(log.orders)} placed, {log.delivered} delivered")

        result = run_scenario(scenario, seed=seed, hours=hours, data_dir=data_dir,
                              config=WorldConfig(dispatch_every_s=dispatch_every,
                                                 offers_on_the_go=on_the_go),
                              progress=progress, eta_models=eta_models, policy=policy,
                              pricing=eta_pricing(eta_model, console))
    summary = {"scenario": sc.name, "seed": sc.seed if seed is None else seed,
               "stacking": stacking, "reassignment": reassignment, "on_the_go": on_the_go,
               **result.kpis}
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    plots = write_plots(result.log, out, title=sc.name)
    console.print(kpi_table(result.kpis, f"{sc.name} (seed {summary['seed']})"))
    typer.echo(json.dumps(summary, indent=2))
    console.print(f"wrote {out / 'summary.json'}, " + ", ".join(str(p) for p in plots))


def _compare(sc: Scenario, *, seed: int | None, hours: float | None, out: Path,
             dispatch_every: float, acceptance_weight: float, console: Console,
             policy: DispatchPolicy) -> None:
    """``--compare-obedient``: ``sim.live_compare``; writes ``compare.json`` to ``out``."""
    from lastmile.sim.live_compare import compare_live, compare_summary, compare_table

    used = sc.seed if seed is None else seed
    results = compare_live(sc.name, seed=used, hours=hours, dispatch_every_s=dispatch_every,
                           acceptance_weight=acceptance_weight, policy=policy,
                           progress=lambda name: console.print(f"running {name} ..."))
    summary = {"scenario": sc.name, "seed": used, "acceptance_weight": acceptance_weight,
               "stacking": policy.allow_stacking, "reassignment": policy.allow_reassignment,
               "runs": compare_summary(results)}
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(summary, indent=2) + "\n")
    console.print(compare_table(results, f"{sc.name} (seed {used}): live path vs obedient"))
    typer.echo(json.dumps(summary))
    console.print(f"wrote {out / 'compare.json'}")
