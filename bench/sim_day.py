"""Wall time of a simulated day: a scenario through ``run_scenario`` (the real use cases,
SQLite in a temporary folder, a manual clock), as orders per wall second.

Prints one JSON line per simulated hour (``sim_h``, orders placed and delivered so far,
wall seconds, orders placed per wall second in that hour) and a last summary line:

    {"scenario", "seed", "regions", "scale", "start_h", "hours", "orders_placed",
     "orders_delivered", "couriers", "wall_s", "cpu_s", "build_s", "world_s", "settle_s",
     "orders_per_wall_s", "orders_per_cpu_s", "split_s": {action: seconds}, "split_calls": {action: calls}}

``build_s`` is the platform and city set-up (until the world's first event), ``world_s``
the world's run, ``settle_s`` the end: the ledger relay and the KPIs; ``cpu_s`` this process's CPU time
(on a shared machine wall time also holds waiting for a core). ``split_s`` is the
CPU time spent inside each ``DirectActions`` call (the platform's use cases; ``dispatch``
holds the engine's ``plan_round``, also shown alone as ``engine``); ``world_own`` is
the world's CPU time minus all of those: the simulated city's own code (event heap, couriers).

Parts of the day while iterating: ``--regions N`` keeps the first N regions (cities) of the
scenario, ``--scale F`` multiplies demand and every city's couriers, merchants and
consumers, ``--from-h H --hours N`` plays N simulated hours from hour H (cold: no orders
open at H).

    PYTHONPATH=src nice -n 10 .venv/bin/python bench/sim_day.py --scenario bigcity \
        --regions 1 --from-h 11 --hours 2
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402

from lastmile.app import dispatching  # noqa: E402
from lastmile.sim import actions as sim_actions  # noqa: E402
from lastmile.sim.scenarios import Scenario, get_scenario  # noqa: E402
from lastmile.sim.simulate_command import run_scenario  # noqa: E402
from lastmile.sim.world import WorldLog  # noqa: E402

_ACTIONS = ("quote", "place", "confirm", "mark_ready", "cancel", "start_shift", "end_shift",
            "ping", "current_offer", "accept", "decline", "arrive", "pick_up", "deliver",
            "dispatch")


class Split:
    """CPU seconds and calls inside each timed function (patched in for this process)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def timed(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] += time.process_time() - t0
                self.calls[name] += 1
        return wrapper

    def install(self) -> None:
        for name in _ACTIONS:
            setattr(sim_actions.DirectActions, name,
                    self.timed(name, getattr(sim_actions.DirectActions, name)))
        dispatching.plan_round = self.timed("engine", dispatching.plan_round)  # type: ignore[attr-defined]


def sliced(scenario: Scenario, *, regions: int | None, scale: float, from_h: float | None,
           hours: float | None) -> Scenario:
    cities = scenario.cities[:regions] if regions else scenario.cities
    if scale != 1.0:
        cities = tuple(replace(c, couriers=max(1, round(c.couriers * scale)),
                               merchants=max(1, round(c.merchants * scale)),
                               clusters=max(1, min(c.clusters, round(c.merchants * scale))),
                               consumers=max(1, round(c.consumers * scale))) for c in cities)
    start_h = scenario.start_h if from_h is None else from_h
    return replace(scenario, cities=cities, base_per_h=scenario.base_per_h * scale,
                   start_h=start_h, hours=hours or scenario.hours - (start_h - scenario.start_h))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default="bigcity")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--regions", type=int, default=None, help="keep the first N regions")
    ap.add_argument("--scale", type=float, default=1.0, help="demand and city size factor")
    ap.add_argument("--from-h", type=float, default=None, help="start at this hour of day")
    ap.add_argument("--hours", type=float, default=None, help="simulated hours to play")
    args = ap.parse_args()

    sc = sliced(get_scenario(args.scenario), regions=args.regions, scale=args.scale,
                from_h=args.from_h, hours=args.hours)
    split = Split()
    split.install()
    start = sc.day_start + sc.start_h * 3600
    total = sc.hours * 3600
    t0 = time.perf_counter()
    c0 = time.process_time()
    marks: dict[str, float] = {}
    state = {"next_hour": start + 3600, "placed_at_hour": 0, "wall_at_hour": 0.0, "tick": 0.0}
    console = Console(stderr=True)

    def delivered(log: WorldLog) -> int:
        return sum(1 for o in log.orders.values() if o.delivered_at is not None)

    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                  TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task(sc.name, total=total, info="")

        def progress(t: float, log: WorldLog) -> None:
            now = time.perf_counter()
            if "build" not in marks:
                marks["build"] = now - t0
                marks["build_cpu"] = time.process_time() - c0
                state["wall_at_hour"] = now
            while t >= state["next_hour"]:
                placed = len(log.orders)
                wall = now - state["wall_at_hour"]
                print(json.dumps({
                    "sim_h": round((state["next_hour"] - sc.day_start) / 3600, 2),
                    "placed": placed, "delivered": delivered(log),
                    "wall_s": round(now - t0, 1),
                    "orders_per_wall_s": round((placed - state["placed_at_hour"])
                                               / max(wall, 1e-9), 1)}), flush=True)
                state["next_hour"] += 3600
                state["placed_at_hour"], state["wall_at_hour"] = placed, now
            if now - state["tick"] >= 1.0:
                state["tick"] = now
                bar.update(task, completed=min(total, t - start),
                           info=f"{len(log.orders)} placed")
            marks["world_end"] = now - t0
            marks["world_end_cpu"] = time.process_time() - c0

        result = run_scenario(sc, seed=args.seed, progress=progress)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    world_cpu = marks.get("world_end_cpu", cpu) - marks.get("build_cpu", cpu)
    build = marks.get("build", wall)
    world = marks.get("world_end", wall) - build
    in_actions = sum(v for k, v in split.seconds.items() if k != "engine")
    seconds = {k: round(v, 2) for k, v in sorted(split.seconds.items(), key=lambda kv: -kv[1])}
    seconds["world_own"] = round(world_cpu - in_actions, 2)
    print(json.dumps({
        "scenario": args.scenario, "seed": sc.seed if args.seed is None else args.seed,
        "regions": len(sc.cities), "scale": args.scale, "start_h": sc.start_h,
        "hours": sc.hours, "orders_placed": result.kpis["orders_placed"],
        "orders_delivered": result.kpis["orders_delivered"],
        "couriers": sum(c.couriers for c in sc.cities), "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "build_s": round(build, 1), "world_s": round(world, 1),
        "settle_s": round(wall - build - world, 1),
        "orders_per_wall_s": round(result.kpis["orders_placed"] / wall, 2),
        "orders_per_cpu_s": round(result.kpis["orders_placed"] / cpu, 2),
        "split_s": seconds, "split_calls": dict(split.calls)}), flush=True)


if __name__ == "__main__":
    main()
