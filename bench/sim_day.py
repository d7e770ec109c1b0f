"""Wall time of a simulated day: a scenario through ``run_scenario`` (the real use cases,
SQLite in a temporary folder, a manual clock), as orders per wall second.

Prints one JSON line per simulated hour (``sim_h``, orders placed and delivered so far,
wall seconds, orders placed per wall second in that hour) and a last summary line:

    {"scenario", "seed", "regions", "processes", "scale", "start_h", "hours", "orders_placed",
     "orders_delivered", "couriers", "wall_s", "cpu_s", "build_s", "world_s", "settle_s",
     "build_cpu_s", "settle_cpu_s",
     "orders_per_wall_s", "orders_per_cpu_s", "split_s": {action: seconds}, "split_calls": {action: calls}}

``build_s`` is the platform and city set-up (until the world's first event), ``world_s``
the world's run, ``settle_s`` the end: the ledger relay and the KPIs (``build_cpu_s`` and
``settle_cpu_s`` their CPU time); ``cpu_s`` this process's CPU time
(on a shared machine wall time also holds waiting for a core). ``split_s`` is the
CPU time spent inside each ``DirectActions`` call (the platform's use cases; ``dispatch``
holds the engine's ``plan_round``, also shown alone as ``engine``); ``world_own`` is
the world's CPU time minus all of those: the simulated city's own code (event heap, couriers).

Parts of the day while iterating: ``--regions N`` keeps the first N regions (cities) of the
scenario, ``--scale F`` multiplies demand and every city's couriers, merchants and
consumers, ``--from-h H --hours N`` plays N simulated hours from hour H (cold: no orders
open at H).

``--processes N`` deals the regions round-robin to N worker processes, each playing its
group through ``run_scenario`` with its own SQLite database and seed ``seed + k`` (group 0
keeps the scenario's seed): the regions of a simulated city share nothing (no order,
courier or consumer crosses one), so each group is the same platform code on its own
shard. The hourly lines then carry their ``group``; the summary sums orders, CPU seconds
and the split over the groups (``cpu_s`` is all processes' CPU, ``wall_s`` the whole run's,
``build_s``/``world_s``/``settle_s`` the slowest group's).

    PYTHONPATH=src nice -n 10 .venv/bin/python bench/sim_day.py --scenario bigcity \
        --regions 1 --from-h 11 --hours 2
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
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


def play(sc: Scenario, seed: int | None, *, bar: bool, group: int | None = None) -> dict[str, Any]:
    """Run ``sc`` in this process; the summary's fields (see the module docstring)."""
    split = Split()
    split.install()
    start = sc.day_start + sc.start_h * 3600
    total = sc.hours * 3600
    t0 = time.perf_counter()
    c0 = time.process_time()
    marks: dict[str, float] = {}
    state = {"next_hour": start + 3600, "placed_at_hour": 0, "wall_at_hour": 0.0, "tick": 0.0}
    console = Console(stderr=True)
    tag = {} if group is None else {"group": group}

    def delivered(log: WorldLog) -> int:
        return sum(1 for o in log.orders.values() if o.delivered_at is not None)

    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                  TimeElapsedColumn(), console=console, disable=not bar) as progress_bar:
        task = progress_bar.add_task(sc.name, total=total, info="")

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
                    **tag, "sim_h": round((state["next_hour"] - sc.day_start) / 3600, 2),
                    "placed": placed, "delivered": delivered(log),
                    "wall_s": round(now - t0, 1),
                    "orders_per_wall_s": round((placed - state["placed_at_hour"])
                                               / max(wall, 1e-9), 1)}), flush=True)
                state["next_hour"] += 3600
                state["placed_at_hour"], state["wall_at_hour"] = placed, now
            if now - state["tick"] >= 1.0:
                state["tick"] = now
                progress_bar.update(task, completed=min(total, t - start),
                                    info=f"{len(log.orders)} placed")
            marks["world_end"] = now - t0
            marks["world_end_cpu"] = time.process_time() - c0

        result = run_scenario(sc, seed=seed, progress=progress)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    world_cpu = marks.get("world_end_cpu", cpu) - marks.get("build_cpu", cpu)
    build = marks.get("build", wall)
    world = marks.get("world_end", wall) - build
    in_actions = sum(v for k, v in split.seconds.items() if k != "engine")
    seconds = dict(split.seconds)
    seconds["world_own"] = world_cpu - in_actions
    return {"orders_placed": result.kpis["orders_placed"],
            "orders_delivered": result.kpis["orders_delivered"], "wall_s": wall, "cpu_s": cpu,
            "build_s": build, "world_s": world, "settle_s": wall - build - world,
            "build_cpu_s": marks.get("build_cpu", cpu),
            "settle_cpu_s": cpu - marks.get("world_end_cpu", cpu),
            "split_s": seconds, "split_calls": dict(split.calls)}


def _play_group(sc: Scenario, seed: int, group: int) -> dict[str, Any]:
    return play(sc, seed, bar=False, group=group)


def region_groups(sc: Scenario, processes: int) -> list[Scenario]:
    """The scenario's regions dealt round-robin to ``processes`` groups (none empty)."""
    if processes < 1:
        raise SystemExit(f"--processes must be >= 1 (got {processes})")
    return [replace(sc, cities=sc.cities[k::processes])
            for k in range(min(processes, len(sc.cities)))]


def merged(parts: list[dict[str, Any]], wall_s: float) -> dict[str, Any]:
    """Groups' summaries as one: orders, CPU and the split summed; the slowest group's
    build, world and settle; the whole run's wall time."""
    out: dict[str, Any] = {k: sum(p[k] for p in parts) for k in (
        "orders_placed", "orders_delivered", "cpu_s", "build_cpu_s", "settle_cpu_s")}
    for k in ("build_s", "world_s", "settle_s"):
        out[k] = max(p[k] for p in parts)
    seconds: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    for p in parts:
        for name, v in p["split_s"].items():
            seconds[name] += v
        for name, n in p["split_calls"].items():
            calls[name] += n
    return {**out, "split_s": dict(seconds), "split_calls": dict(calls), "wall_s": wall_s}


def in_processes(sc: Scenario, seed: int, processes: int) -> dict[str, Any]:
    """Each region group (``region_groups``) in a worker process of its own, running
    ``run_scenario`` with its own database and seed ``seed + k`` (regions share nothing
    in the simulated city: no order, courier or consumer crosses one)."""
    groups = region_groups(sc, processes)
    t0 = time.perf_counter()
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=len(groups), mp_context=ctx) as pool:
        parts = list(pool.map(_play_group, groups, [seed + k for k in range(len(groups))],
                              range(len(groups))))
    return merged(parts, time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default="bigcity")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--regions", type=int, default=None, help="keep the first N regions")
    ap.add_argument("--scale", type=float, default=1.0, help="demand and city size factor")
    ap.add_argument("--from-h", type=float, default=None, help="start at this hour of day")
    ap.add_argument("--hours", type=float, default=None, help="simulated hours to play")
    ap.add_argument("--processes", type=int, default=1,
                    help="play the regions in N processes (round-robin groups, own databases)")
    args = ap.parse_args()

    sc = sliced(get_scenario(args.scenario), regions=args.regions, scale=args.scale,
                from_h=args.from_h, hours=args.hours)
    seed = sc.seed if args.seed is None else args.seed
    if args.processes > 1:
        r = in_processes(sc, seed, args.processes)
    else:
        r = play(sc, args.seed, bar=True)
    seconds = {k: round(v, 2) for k, v in sorted(r["split_s"].items(), key=lambda kv: -kv[1])}
    print(json.dumps({
        "scenario": args.scenario, "seed": seed, "regions": len(sc.cities),
        "processes": args.processes, "scale": args.scale, "start_h": sc.start_h,
        "hours": sc.hours, "orders_placed": r["orders_placed"],
        "orders_delivered": r["orders_delivered"],
        "couriers": sum(c.couriers for c in sc.cities), "wall_s": round(r["wall_s"], 1),
        "cpu_s": round(r["cpu_s"], 1),
        "build_s": round(r["build_s"], 1), "world_s": round(r["world_s"], 1),
        "settle_s": round(r["settle_s"], 1), "build_cpu_s": round(r["build_cpu_s"], 1),
        "settle_cpu_s": round(r["settle_cpu_s"], 1),
        "orders_per_wall_s": round(r["orders_placed"] / r["wall_s"], 2),
        "orders_per_cpu_s": round(r["orders_placed"] / r["cpu_s"], 2),
        "split_s": seconds, "split_calls": r["split_calls"]}), flush=True)


if __name__ == "__main__":
    main()
