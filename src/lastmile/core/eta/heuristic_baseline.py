"""The transparent heuristic ETA as a batch model: preparation, assignment delay, travel.

Today's formula (``core/pricing.py`` ``eta_window`` without a supply snapshot): the later of
the food and a courier reaching the merchant (``PICKUP_LEG_S``), then the drive with its
handovers (``travel_s`` already holds them); the window is ``WINDOW_LOW``..``WINDOW_HIGH``
times that duration. The benchmark's baseline; the ETA engine's heuristic is the served one
(a merger keeps one of the two: this is the same rule, vectorised).
"""

from __future__ import annotations

import numpy as np

from lastmile.core.eta.table import column

PICKUP_LEG_S = 300.0  # PricingPolicy.pickup_leg_s
WINDOW_LOW = 0.8  # PricingPolicy.window_low / window_high
WINDOW_HIGH = 1.35

_PREP = column("prep_mean_s")
_TRAVEL = column("travel_s")


def heuristic_point(matrix: np.ndarray) -> np.ndarray:
    """max(prep_mean_s, PICKUP_LEG_S) + travel_s, seconds, one per row."""
    return np.asarray(np.maximum(matrix[:, _PREP], PICKUP_LEG_S) + matrix[:, _TRAVEL])


class HeuristicBaseline:
    """``predict_batch(matrix) -> (point, p10, p90)``; nothing learnt."""

    name = "heuristic"

    def predict_batch(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        point = heuristic_point(matrix)
        return point, point * WINDOW_LOW, point * WINDOW_HIGH
