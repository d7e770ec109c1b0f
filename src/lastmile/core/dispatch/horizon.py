"""Rolling horizon: which matched pairs to commit now and which to postpone.

Reyes et al. (2018) re-optimise every few minutes and commit an assignment only
when waiting longer would make the courier late: a courier is idle, sits where
it is, and can still be used for something better next round. A matched pair
(courier c, bundle b) is committed now iff

- c can take instructions now (free and on shift), and
- c must leave within ``commit_slack_s`` to be at the merchant by the ready
  time: ``ready_b - pickup_service/2 - travel_cb <= now + commit_slack_s``.

The shift end needs no clause of its own: the pair was matched only if
``pickup <= shift end``, and leaving at the latest departure still picks up at
``ready_b``, no later than that pickup.

Pairs whose courier is busy (free later) or that can wait are postponed; their
orders stay open and are re-matched next round.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def should_commit(
    *,
    now_s: float,
    courier_free_s: float,
    courier_shift_start_s: float,
    ready_s: float,
    travel_s: float,
    pickup_service_s: float,
    commit_slack_s: float,
) -> bool:
    """True when the pair must be committed in this round (see module rule)."""
    if courier_free_s > now_s or courier_shift_start_s > now_s:
        return False
    latest_departure_s = ready_s - pickup_service_s / 2 - travel_s
    return latest_departure_s <= now_s + commit_slack_s


def commit_mask(
    *,
    now_s: float,
    courier_free_s: NDArray[np.float64],
    courier_shift_start_s: NDArray[np.float64],
    ready_s: NDArray[np.float64],
    travel_s: NDArray[np.float64],
    pickup_service_s: float,
    commit_slack_s: float,
) -> NDArray[np.bool_]:
    """``should_commit`` elementwise over matched pairs (equal arrays, one entry a pair):
    the same comparisons on the same floats, so the same answer pair by pair."""
    busy = (courier_free_s > now_s) | (courier_shift_start_s > now_s)
    latest_departure_s = ready_s - pickup_service_s / 2 - travel_s
    out: NDArray[np.bool_] = ~busy & (latest_departure_s <= now_s + commit_slack_s)
    return out
