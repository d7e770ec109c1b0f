"""Experiments in memory (``lastmile.app.ports_experiments.ExperimentRepo``), following
``adapters/db/repositories_experiments.py``: names unique, state moves compare-and-set,
one exposure per (experiment, unit)."""

from __future__ import annotations

from fake_repos import Table
from lastmile.app.ports_experiments import Exposure
from lastmile.core.experiments.definition import Experiment, Layer, State


class MemExperiments:
    def __init__(self, experiments: Table[str, Experiment], layers: Table[str, Layer],
                 exposures: Table[tuple[str, str], tuple[Exposure, int]]):
        self.t, self.layers, self.x = experiments, layers, exposures

    def add(self, experiment: Experiment) -> bool:
        if experiment.id in self.t or self.by_name(experiment.name) is not None:
            return False
        self.t.put(experiment.id, experiment)
        return True

    def get(self, experiment_id: str) -> Experiment | None:
        return self.t.get(experiment_id)

    def by_name(self, name: str) -> Experiment | None:
        return next((e for e in self.t.rows() if e.name == name), None)

    def list(self, *, state: State | None = None, layer: str | None = None,
             limit: int = 100) -> list[Experiment]:
        found = sorted(self.t.rows(), key=lambda e: (e.created_at, e.id))
        return [e for e in found if (state is None or e.state is state)
                and (layer is None or e.layer == layer)][:limit]

    def move(self, experiment: Experiment, *, expected: State) -> bool:
        stored = self.t.get(experiment.id)
        if stored is None or stored.state is not expected:
            return False
        self.t.put(experiment.id, experiment)
        return True

    def layer(self, name: str) -> Layer | None:
        return self.layers.get(name)

    def add_layer(self, layer: Layer, *, at: float) -> bool:
        if layer.name in self.layers:
            return False
        self.layers.put(layer.name, layer)
        return True

    def expose(self, exposure: Exposure) -> bool:
        key = (exposure.experiment_id, exposure.unit)
        if key in self.x:
            return False
        self.x.put(key, (exposure, len(self.x.rows())))
        return True

    def exposures(self, experiment_id: str, *, limit: int) -> list[Exposure]:
        rows = [e for e, _ in self.x.rows() if e.experiment_id == experiment_id]
        return sorted(rows, key=lambda e: (e.first_at, e.unit))[:limit]
