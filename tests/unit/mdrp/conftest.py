"""A tiny MDRP instance written by the test itself, in the instances' format."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

PARAMS_HEADER = (
    "meters_per_minute\tpickup service minutes\tdropoff service minutes\t"
    "target click-to-door\tmaximum click-to-door\tpay per order\t"
    "guaranteed pay per hour"
)

RESTAURANTS = (("r1", 0, 0), ("r2", 3200, 0))
ORDERS = (  # order, x, y, placement, restaurant, ready
    ("o1", 640, 0, 0, "r1", 10),
    ("o2", 0, 960, 2, "r1", 11),
    ("o3", 3200, 640, 5, "r2", 20),
    ("o4", 1000, 1000, 30, "r2", 45),
)
COURIERS = (("c1", 100, 0, 0, 120), ("c2", 3000, 0, 0, 60))
PARAMS = (320, 4, 4, 40, 90, 10, 15)


def _write(path: Path, header: str, rows: Sequence[Sequence[object]]) -> None:
    path.write_text("\n".join([header, *("\t".join(str(v) for v in r) for r in rows)]) + "\n")


def write_instance(
    folder: Path,
    *,
    restaurants: Sequence[Sequence[object]] = RESTAURANTS,
    orders: Sequence[Sequence[object]] = ORDERS,
    couriers: Sequence[Sequence[object]] = COURIERS,
    params: Sequence[object] = PARAMS,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    _write(folder / "restaurants.txt", "restaurant\tx\ty", restaurants)
    _write(folder / "orders.txt", "order\tx\ty\tplacement_time\trestaurant\tready_time", orders)
    _write(folder / "couriers.txt", "courier\tx\ty\ton_time\toff_time", couriers)
    _write(folder / "instance_parameters.txt", PARAMS_HEADER, [params])
    return folder


@pytest.fixture
def tiny_instance(tmp_path: Path) -> Path:
    return write_instance(tmp_path / "0o100t100s1p100")


@pytest.fixture
def instance_writer(tmp_path: Path) -> Callable[..., Path]:
    def make(name: str = "inst", **kw: Sequence[object]) -> Path:
        return write_instance(tmp_path / name, **kw)

    return make
