"""The experiments' port (``app.experiments``); ``adapters.db.repositories_experiments`` and
``tests.fake_repos_experiments`` implement it."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Protocol

from lastmile.core.experiments.definition import Experiment, Layer, State


@dataclass(frozen=True, slots=True, kw_only=True)
class Exposure:
    """The first time a randomised unit was served an experiment's variant."""

    experiment_id: str
    unit: str
    variant: str
    counts: bool
    first_at: float
    region_id: str | None = None


class ExperimentRepo(Protocol):
    def add(self, experiment: Experiment) -> bool:
        """Store a new experiment; False when its name is taken in the tenant."""
        ...
    def get(self, experiment_id: str) -> Experiment | None: ...
    def by_name(self, name: str) -> Experiment | None: ...
    def list(self, *, state: State | None = None, layer: str | None = None,
             limit: int = 100) -> list[Experiment]:
        """Oldest first (by creation time, then id)."""
        ...
    def move(self, experiment: Experiment, *, expected: State) -> bool:
        """Save a state change when the stored state is still ``expected``."""
        ...
    def layer(self, name: str) -> Layer | None: ...
    def add_layer(self, layer: Layer, *, at: float) -> bool:
        """False when the tenant has the layer already."""
        ...
    def expose(self, exposure: Exposure) -> bool:
        """Record a unit's first exposure; False when it has one (the first stays)."""
        ...
    def exposures(self, experiment_id: str, *, limit: int) -> builtins.list[Exposure]:
        """The experiment's exposures, first first."""
        ...
