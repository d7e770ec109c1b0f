"""Builders for dispatch tests: ``an_order``, ``a_courier``, ``a_snapshot`` as fixtures."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from lastmile.core.dispatch import CourierState, OpenOrder, Snapshot, TravelModel

MIN = 60.0
TRAVEL = TravelModel(metres_per_step=320.0, step_s=60.0)


def _order(**overrides: Any) -> OpenOrder:
    base: dict[str, Any] = {
        "order_id": "o1",
        "merchant_id": "r1",
        "placed_s": 0.0,
        "ready_s": 10 * MIN,
        "pickup_x_m": 0.0,
        "pickup_y_m": 0.0,
        "dropoff_x_m": 1000.0,
        "dropoff_y_m": 0.0,
    }
    return OpenOrder(**{**base, **overrides})


def _courier(**overrides: Any) -> CourierState:
    base: dict[str, Any] = {
        "courier_id": "c1",
        "x_m": 0.0,
        "y_m": 0.0,
        "free_s": 0.0,
        "shift_start_s": 0.0,
        "shift_end_s": 240 * MIN,
    }
    return CourierState(**{**base, **overrides})


def _snapshot(**overrides: Any) -> Snapshot:
    base: dict[str, Any] = {
        "now_s": 0.0,
        "orders": (),
        "couriers": (),
        "travel": TRAVEL,
        "pickup_service_s": 4 * MIN,
        "dropoff_service_s": 4 * MIN,
    }
    return Snapshot(**{**base, **overrides})


@pytest.fixture
def an_order() -> Callable[..., OpenOrder]:
    return _order


@pytest.fixture
def a_courier() -> Callable[..., CourierState]:
    return _courier


@pytest.fixture
def a_snapshot() -> Callable[..., Snapshot]:
    return _snapshot
