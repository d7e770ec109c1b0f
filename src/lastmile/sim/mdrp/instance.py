"""Load a Grubhub MDRP instance folder (Reyes et al. 2018, grubhub/mdrplib).

Files are tab separated with a header line; times are integer minutes from the
start of the day, positions metres. Travel time between two points is
``ceil(euclidean metres / meters_per_minute)`` minutes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from lastmile.core.errors import InvalidInput

FILES = ("restaurants.txt", "orders.txt", "couriers.txt", "instance_parameters.txt")


@dataclass(frozen=True, slots=True, kw_only=True)
class Restaurant:
    restaurant_id: str
    x: float
    y: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Order:
    order_id: str
    x: float
    y: float
    placement_time: int
    restaurant_id: str
    ready_time: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Courier:
    courier_id: str
    x: float
    y: float
    on_time: int
    off_time: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Parameters:
    meters_per_minute: float
    pickup_service_min: int
    dropoff_service_min: int
    target_c2d_min: int
    max_c2d_min: int
    pay_per_order: float
    pay_per_hour: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Instance:
    name: str
    restaurants: dict[str, Restaurant]
    orders: tuple[Order, ...]
    couriers: tuple[Courier, ...]
    params: Parameters

    def travel_min(self, ax: float, ay: float, bx: float, by: float) -> int:
        """ceil(euclidean metres / meters_per_minute), the MDRP travel time."""
        return math.ceil(math.hypot(ax - bx, ay - by) / self.params.meters_per_minute)


def _rows(path: Path) -> list[list[str]]:
    if not path.is_file():
        raise InvalidInput("missing_file", f"instance file {path} does not exist", field=path.name)
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    return [ln.split("\t") for ln in lines[1:]]


def _num(value: str) -> float:
    return float(value)


def _int(value: str) -> int:
    return int(round(float(value)))


def _service_min(value: float, name: str) -> int:
    """A service time the rules can split in two halves of whole minutes.

    Pickup and drop-off happen half a service after arrival and the courier
    leaves half a service later; solution files hold integer minutes, so an odd
    or fractional service time has no exact schedule (flooring the half would
    let the simulator and the checker both skip half a minute of service).
    """
    if not (math.isfinite(value) and value >= 0 and value == int(value) and int(value) % 2 == 0):
        raise InvalidInput(
            "invalid_service_time",
            f"{name} must be an even whole number of minutes >= 0 (got {value:g})",
            field=name,
        )
    return int(value)


def load_instance(folder: Path) -> Instance:
    """Read the four input files of an instance folder.

    Raises InvalidInput when a file is missing, an order names an unknown
    restaurant, or a service time is not an even whole number of minutes.
    """
    folder = Path(folder)
    restaurants = {
        r[0]: Restaurant(restaurant_id=r[0], x=_num(r[1]), y=_num(r[2]))
        for r in _rows(folder / "restaurants.txt")
    }
    orders = tuple(
        Order(
            order_id=r[0],
            x=_num(r[1]),
            y=_num(r[2]),
            placement_time=_int(r[3]),
            restaurant_id=r[4],
            ready_time=_int(r[5]),
        )
        for r in _rows(folder / "orders.txt")
    )
    couriers = tuple(
        Courier(
            courier_id=r[0], x=_num(r[1]), y=_num(r[2]), on_time=_int(r[3]), off_time=_int(r[4])
        )
        for r in _rows(folder / "couriers.txt")
    )
    p = [_num(v) for v in _rows(folder / "instance_parameters.txt")[0]]
    params = Parameters(
        meters_per_minute=p[0],
        pickup_service_min=_service_min(p[1], "pickup service minutes"),
        dropoff_service_min=_service_min(p[2], "dropoff service minutes"),
        target_c2d_min=int(p[3]),
        max_c2d_min=int(p[4]),
        pay_per_order=p[5],
        pay_per_hour=p[6],
    )
    for o in orders:
        if o.restaurant_id not in restaurants:
            raise InvalidInput(
                "unknown_restaurant",
                f"order {o.order_id} names restaurant {o.restaurant_id!r}, "
                "expected one of restaurants.txt",
                field="restaurant",
            )
    return Instance(
        name=folder.name, restaurants=restaurants, orders=orders, couriers=couriers, params=params
    )
