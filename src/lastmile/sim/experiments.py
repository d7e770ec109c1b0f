"""Experiments on the simulator: seeded city days run with experiments created in the
simulated platform's own database, served through the real ``variant`` call by the real
levers, and read back through the real observation builder (docs/experiments.md,
"Validation").

A ``Day`` is one seeded run of a scenario with some ``Trial``s (experiments) in it. Before
the world starts every trial is created (a draft); ``pre_h`` simulated hours later all are
started, so consumers have a pre-period (CUPED covariates) and markets a ``pre`` period
(the diff-in-diff); at the end they are stopped and each one's observations are built by
``app.experiments_data.observations`` exactly as the ops API builds them.

Levers:

- ``fees``: the platform's own fee lever (``app.ordering`` asks ``experiments.overrides``
  on every quote and placement): consumer A/B, switchback by region x window, market A/B.
- ``other`` with a courier unit: the platform has no courier-side lever yet (courier
  messaging), so the simulated courier app calls ``variant`` for the courier each time it
  accepts an offer, the way such a lever would (``CourierLever``): courier A/B.

The validation city (``validation_city``) turns off surge (``surge_cap = 1``), sets the base
delivery fee to 4.50 (every quote's fees then exceed the 5.00 the simulated consumers
start to mind) and makes demand ignore the quoted wait: a fee change of ``d`` then changes
every order's delivery fee by exactly ``d`` and every quote's conversion by the same factor
``exp(-d / 1500)`` whatever the basket or distance, so the orders of both arms are alike and
the true effect on ``delivery_fee_minor`` per order is exactly ``d``. That is the known
effect the recovery checks look for.

``run_days`` plays many days on local processes (default) or on a Dask cluster
(``dask_address``), with a progress callback; results come back in the order given.
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import os
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lastmile.core.experiments.assignment import Variant
from lastmile.core.experiments.observations import Design, Observation
from lastmile.core.geo import Point
from lastmile.core.pricing import PricingPolicy
from lastmile.sim.actions import DirectActions
from lastmile.sim.model import WorldConfig
from lastmile.sim.scenarios import CitySpec, Scenario, ShiftPattern

BASE_FEE_MINOR = 450
VALIDATION_PRICING = PricingPolicy(base_delivery_fee_minor=BASE_FEE_MINOR, surge_cap=1.0)
"""No surge, fees above the consumers' 5.00 threshold: a fee change's effect is exact."""
VALIDATION_WORLD = WorldConfig(dispatch_every_s=60.0, ping_every_s=600.0)
"""A dispatch round a minute and sparse pings: the same city for a third of the CPU."""


def validation_city(*, regions: int = 6, per_h: float = 10.0,
                    couriers: Sequence[int] = (3, 4, 5), hours: float = 4.0,
                    start_h: float = 11.0) -> Scenario:
    """``regions`` small markets (4 km half-width, 6 restaurants, 40 consumers each)
    0.2 degrees apart, their fleets cycling through ``couriers`` (so markets differ: the
    market A/B stratifies on fleet size), ``per_h`` orders an hour per market with a small
    lunch bump, everyone on shift all run. Demand ignores the quoted wait (see the module
    docstring)."""
    cities = tuple(CitySpec(
        key=f"m{i}", name=f"Market {i}", market=f"market-{i}", time_zone="America/Los_Angeles",
        centre=Point(lat=36.0 + 0.2 * i, lng=-121.0), half_km=4.0, merchants=6, clusters=2,
        consumers=40, couriers=couriers[i % len(couriers)]) for i in range(regions))
    return Scenario(
        name="validation-city", description=f"{regions} small markets for experiment "
        "validation (sim.experiments)", cities=cities, start_h=start_h, hours=hours,
        base_per_h=per_h, lunch_peak=0.5, dinner_peak=0.0,
        shifts=(ShiftPattern(start_h=start_h - 0.1, end_h=start_h + hours + 1, share=1.0,
                             jitter_min=0.0),),
        eta_tolerance_min=24 * 60.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Trial:
    """One experiment in a simulated day."""

    name: str
    design: Design
    lever: str = "fees"
    """``fees`` (the platform's fee lever) or ``other`` (courier A/B: ``CourierLever``)."""
    treatment: tuple[tuple[str, Any], ...] = ()
    """The treatment arm's params; () is an A/A test."""
    metric: str = "click_to_door_min"
    layer: str | None = None
    share: float = 1.0
    window_s: float = 1_800.0
    burn_in_s: float = 300.0
    shift: float = 0.0
    """A documented injected effect: added to each treatment order's value of the metric
    in the observations (``value += shift * denominator``); 0: none."""
    salt: str = ""

    @property
    def unit(self) -> str:
        return {"ab": "consumer", "courier_ab": "courier", "switchback": "region",
                "market_ab": "market"}[self.design]


@dataclass(frozen=True, slots=True, kw_only=True)
class Day:
    seed: int
    scenario: Scenario
    trials: tuple[Trial, ...] = ()
    pricing: PricingPolicy = VALIDATION_PRICING
    pre_h: float = 1.0
    config: WorldConfig = VALIDATION_WORLD
    tag: str = ""
    """The caller's label (which check the day is for)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DayResult:
    seed: int
    tag: str
    observations: dict[str, tuple[Observation, ...]]
    """Per trial name, its observations (units prefixed with ``<seed>/`` so days pool)."""
    city: dict[str, tuple[float, int]] = field(default_factory=dict)
    """Per metric, the sum and count over every order placed after the start: the whole
    city's mean (the truth of a global-effect comparison)."""
    orders: int = 0
    cpu_s: float = 0.0


class CourierLever(DirectActions):
    """The simulated courier app's side of a courier A/B test: each accepted offer asks
    ``variant`` for the courier (the exposure the platform records), as a courier-side
    lever (messaging, incentives) would when it shows the courier something."""

    def __init__(self, *args: Any, trials: Sequence[str], region_of: dict[str, str],
                 **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.trials, self.region_of = tuple(trials), region_of

    def accept(self, courier_id: str, offer_id: str) -> None:
        from lastmile.app import experiments
        from lastmile.core.experiments.definition import Context

        ctx = Context(at_s=self.s.clock.now(), courier_id=courier_id,
                      region_id=self.region_of.get(courier_id))
        for name in self.trials:
            experiments.variant(self.s, name, courier_id, ctx)
        super().accept(courier_id, offer_id)


def _spec(trial: Trial, seed: int, strata: dict[str, list[float]]) -> Any:
    from lastmile.app.experiments import NewExperiment

    return NewExperiment(
        name=trial.name, lever=trial.lever, design=trial.design, unit=trial.unit,  # type: ignore[arg-type]
        variants=(Variant(name="control"), Variant(name="treatment", params=trial.treatment)),
        layer=trial.layer, share=trial.share, window_s=trial.window_s,
        burn_in_s=trial.burn_in_s if trial.design == "switchback" else 0.0,
        strata_metrics=strata if trial.design == "market_ab" else None,
        salt=f"{trial.salt or trial.name}/{seed}")


def _shifted(obs: Sequence[Observation], shift: float, seed: int) -> tuple[Observation, ...]:
    out = []
    for o in obs:
        value = o.value + shift * o.denominator if shift and o.variant != "control" else o.value
        out.append(replace(o, unit=f"{seed}/{o.unit}", value=value,
                           cluster=None if o.cluster is None else f"{seed}/{o.cluster}",
                           stratum=None if o.stratum is None else f"{seed}/{o.stratum}"))
    return tuple(out)


def run_day(day: Day) -> DayResult:
    """Play one seeded day with its trials (module docstring). Deterministic."""
    from lastmile.adapters.clock import ManualClock, SequentialIds
    from lastmile.app import experiments, experiments_data
    from lastmile.app.experiments_data import order_value
    from lastmile.bootstrap import build
    from lastmile.settings import Settings
    from lastmile.sim.city import build_city
    from lastmile.sim.simulate_command import ManualDriver
    from lastmile.sim.world import World

    cpu = time.process_time()
    scenario = day.scenario
    with tempfile.TemporaryDirectory(prefix="lastmile-exp-") as tmp:
        clock = ManualClock(start=scenario.day_start + scenario.start_h * 3600)
        container = build(Settings(data_dir=Path(tmp)), clock=clock, ids=SequentialIds(),
                          rng=random.Random(day.seed))
        container.services = replace(container.services, pricing=day.pricing)
        container.tracking.services = container.services
        services = container.services
        try:
            city = build_city(services, scenario, random.Random(day.seed))
            fleet = {r.id: float(r.spec.couriers) for r in city.regions}
            strata = {rid: [n] for rid, n in fleet.items()}
            for trial in day.trials:
                experiments.create(services, _spec(trial, day.seed, strata))
            actions = CourierLever(
                services, container.tracking,
                trials=[t.name for t in day.trials if t.design == "courier_ab"],
                region_of={c.id: c.region_id for c in city.couriers})
            world = World(city=city, scenario=scenario, actions=actions,
                          driver=ManualDriver(clock), seed=day.seed, config=day.config)
            start_at = world.log.start + day.pre_h * 3600.0

            def starter() -> Any:
                yield world.env.timeout(start_at - world.env.now)
                for trial in day.trials:
                    experiments.start(services, trial.name)

            world.env.process(starter())
            world.run()
            for trial in day.trials:
                experiments.stop(services, trial.name)
            observed = {t.name: _shifted(experiments_data.observations(
                services, t.name, metric=t.metric), t.shift, day.seed) for t in day.trials}
            with services.uow(read_only=True) as uow:
                orders = [o for r in city.regions
                          for o in uow.orders.list(region_id=r.id, limit=1_000_000)
                          if o.placed_at >= start_at]
            totals: dict[str, tuple[float, int]] = {}
            for metric in experiments_data.METRICS:
                got = [v for o in orders if (v := order_value(o, metric)) is not None]
                totals[metric] = (float(sum(got)), len(got))
        finally:
            container.close()
    return DayResult(seed=day.seed, tag=day.tag, observations=observed, city=totals,
                     orders=len(orders), cpu_s=time.process_time() - cpu)


Progress = Callable[[int, int], None]


def run_days(days: Sequence[Day], *, dask_address: str | None = None,
             processes: int | None = None, on_progress: Progress | None = None
             ) -> list[DayResult]:
    """``run_day`` for every day, results in the order given: on the Dask cluster at
    ``dask_address`` (``dask.distributed``), else on ``processes`` local processes
    (default: one per core; 1 runs in this process)."""
    total, done = len(days), 0
    out: list[DayResult | None] = [None] * total

    def tick() -> None:
        if on_progress is not None:
            on_progress(done, total)

    if dask_address is not None:
        from distributed import Client, as_completed

        with Client(dask_address) as client:  # type: ignore[no-untyped-call]
            futures = client.map(run_day, list(days), pure=False)
            index = {f.key: i for i, f in enumerate(futures)}
            for fut in as_completed(futures):  # type: ignore[no-untyped-call]
                out[index[fut.key]] = fut.result()
                done += 1
                tick()
    elif processes == 1 or total <= 1:
        for i, d in enumerate(days):
            out[i] = run_day(d)
            done += 1
            tick()
    else:
        workers = min(total, processes or os.cpu_count() or 1)
        with cf.ProcessPoolExecutor(max_workers=workers) as pool:
            pending = {pool.submit(run_day, d): i for i, d in enumerate(days)}
            for fut in cf.as_completed(pending):
                out[pending[fut]] = fut.result()
                done += 1
                tick()
    return [r for r in out if r is not None]


def pooled(results: Sequence[DayResult], name: str) -> tuple[Observation, ...]:
    """One trial's observations over many days (units are prefixed by their day's seed)."""
    return tuple(o for r in results for o in r.observations.get(name, ()))


def city_mean(results: Sequence[DayResult], metric: str) -> float:
    """The whole city's mean of ``metric`` per order over the days (orders after the
    start)."""
    total = sum(r.city[metric][0] for r in results)
    n = sum(r.city[metric][1] for r in results)
    return total / n if n else math.nan
