"""Power by simulation: run a seeded simulation many times, on local processes by default
(``concurrent.futures``) or on a Dask cluster when an address is given
(``dask.distributed``), and summarise the p-values (``core.experiments.power``).

A simulation is a callable ``simulate(seed) -> p_value``; it must be picklable (a
module-level function or a ``functools.partial`` of one) and, on a remote cluster,
importable by the workers. Seeds are spawned from one seed (``simulation_seeds``), and
results are kept in seed order, so a run gives the same answer on 1 process, 8 processes
or a cluster.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
from collections.abc import Callable, Sequence

from lastmile.core.experiments.power import SimulatedPower, simulated_power, simulation_seeds

Simulation = Callable[[int], float]
Progress = Callable[[int, int], None]
"""Called in the caller's process as chunks finish: ``(done, total)`` simulations."""


def _run_chunk(simulate: Simulation, seeds: Sequence[int]) -> list[float]:
    return [float(simulate(s)) for s in seeds]


def _chunks(seeds: Sequence[int], workers: int) -> list[list[int]]:
    # ~4 chunks per worker: progress moves and stragglers even out, with few round trips.
    size = max(1, len(seeds) // (4 * max(workers, 1)))
    return [list(seeds[i:i + size]) for i in range(0, len(seeds), size)]


def run_simulations(simulate: Simulation, seeds: Sequence[int], *,
                    dask_address: str | None = None, processes: int | None = None,
                    on_progress: Progress | None = None) -> list[float]:
    """``simulate(seed)`` for every seed, in seed order. ``dask_address`` (e.g.
    ``tcp://127.0.0.1:8786``): on that Dask cluster; else on ``processes`` local processes
    (default: one per core; 1 runs in this process)."""
    total = len(seeds)
    done = 0
    if dask_address is not None:
        from distributed import Client, as_completed

        # distributed's Client and as_completed carry no annotations (py.typed, untyped defs)
        with Client(dask_address) as client:  # type: ignore[no-untyped-call]
            parts = _chunks(seeds, max(len(client.scheduler_info().get("workers", {})), 1))
            futures = client.map(_run_chunk, [simulate] * len(parts), parts, pure=False)
            index = {f.key: i for i, f in enumerate(futures)}
            results: list[list[float]] = [[] for _ in parts]
            for fut in as_completed(futures):  # type: ignore[no-untyped-call]
                results[index[fut.key]] = fut.result()
                done += len(parts[index[fut.key]])
                if on_progress:
                    on_progress(done, total)
        return [p for part in results for p in part]
    if processes == 1:
        out = []
        for s in seeds:
            out.append(float(simulate(s)))
            done += 1
            if on_progress:
                on_progress(done, total)
        return out
    workers = processes or os.cpu_count() or 1
    with cf.ProcessPoolExecutor(max_workers=workers) as pool:
        parts = _chunks(seeds, workers)
        pending = {pool.submit(_run_chunk, simulate, part): i for i, part in enumerate(parts)}
        results = [[] for _ in parts]
        for fut in cf.as_completed(pending):
            results[pending[fut]] = fut.result()
            done += len(parts[pending[fut]])
            if on_progress:
                on_progress(done, total)
    return [p for part in results for p in part]


def simulate_power(simulate: Simulation, *, simulations: int, seed: int, alpha: float = 0.05,
                   dask_address: str | None = None, processes: int | None = None,
                   on_progress: Progress | None = None) -> SimulatedPower:
    """The share of ``simulations`` seeded runs of ``simulate`` that reject at ``alpha``,
    with its Wilson interval."""
    seeds = simulation_seeds(seed, simulations)
    p_values = run_simulations(simulate, seeds, dask_address=dask_address,
                               processes=processes, on_progress=on_progress)
    return simulated_power(p_values, alpha=alpha)
