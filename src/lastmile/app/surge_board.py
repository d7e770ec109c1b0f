"""Where each region's surge state lives between rounds (``core.surge.SurgeState``).

In memory, per (tenant, region), guarded by a lock: one process's quotes share one state.
Several API processes each keep their own and advance it from the same counts, so they
agree to within one round; a shared store (Redis) is the next step when that matters.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from decimal import Decimal

from lastmile.core.surge import ONE, CellSurge, SurgeState


@dataclass(frozen=True, slots=True)
class Indexed:
    """A state and its cells by id, built once per round (quotes look up one cell each)."""

    state: SurgeState
    by_cell: dict[str, CellSurge]

    def multiplier(self, cell: str) -> Decimal:
        found = self.by_cell.get(cell)
        return found.multiplier if found else ONE


@dataclass(slots=True)
class SurgeBoard:
    _states: dict[tuple[str, str], Indexed] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, tenant: str, region_id: str) -> Indexed | None:
        return self._states.get((tenant, region_id))

    def put(self, tenant: str, region_id: str, state: SurgeState) -> Indexed:
        indexed = Indexed(state=state, by_cell=dict(state.cells))
        self._states[(tenant, region_id)] = indexed
        return indexed
