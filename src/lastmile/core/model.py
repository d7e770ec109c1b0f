"""Marketplace values: regions, merchants and menus, consumers, couriers.

Orders live in ``core.orders``; their lifecycle in ``core.lifecycle``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import time
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lastmile.core.errors import InvalidInput
from lastmile.core.eta.travel import SPEED_MPS
from lastmile.core.geo import Point, Polygon
from lastmile.core.ids import ConsumerId, CourierId, ItemId, MerchantId, RegionId
from lastmile.core.money import Money
from lastmile.core.tenancy import DEFAULT_TENANT


def _require(ok: bool, code: str, message: str, field: str) -> None:
    if not ok:
        raise InvalidInput(code, message, field=field)


def is_time_zone(name: str) -> bool:
    """True when ``name`` is a key of the IANA time zone database (``Europe/Paris``, ``UTC``).

    A region's local day (opening hours, the dashboard's "today") is computed in
    this zone, so a value the database does not know is refused up front.
    ``America`` names a directory, not a zone (``IsADirectoryError``, an OSError).
    """
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


@dataclass(frozen=True, slots=True, kw_only=True)
class Region:
    """A market: its own currency, time zone and service area (the sharding key)."""

    id: RegionId
    name: str
    market: str
    time_zone: str
    currency: str
    polygon: Polygon
    tax_rate_bp: int = 0

    def __post_init__(self) -> None:
        _require(bool(self.name.strip()), "empty_name", "region name must not be empty", "name")
        _require(
            0 <= self.tax_rate_bp <= 5_000,
            "invalid_tax_rate",
            f"tax_rate_bp must be in [0, 5000] (got {self.tax_rate_bp})",
            "tax_rate_bp",
        )
        _require(
            is_time_zone(self.time_zone),
            "invalid_time_zone",
            f"time_zone must be an IANA zone like Europe/Paris (got {self.time_zone!r})",
            "time_zone",
        )
        Money.zero(self.currency)  # the one currency rule: a 3-letter ISO 4217 code

    def center(self) -> Point:
        lats = [v.lat for v in self.polygon.vertices]
        lngs = [v.lng for v in self.polygon.vertices]
        return Point(lat=sum(lats) / len(lats), lng=sum(lngs) / len(lngs))


@dataclass(frozen=True, slots=True, kw_only=True)
class OpeningWindow:
    """Open on ``weekday`` (0 = Monday) from ``opens`` to ``closes`` local time.

    ``closes`` earlier than ``opens`` means the window runs past midnight.
    """

    weekday: int
    opens: time
    closes: time

    def __post_init__(self) -> None:
        _require(
            0 <= self.weekday <= 6,
            "invalid_weekday",
            f"weekday must be in 0..6 (got {self.weekday})",
            "weekday",
        )

    def covers(self, weekday: int, at: time) -> bool:
        if self.opens <= self.closes:
            return weekday == self.weekday and self.opens <= at < self.closes
        if weekday == self.weekday:
            return at >= self.opens
        return weekday == (self.weekday + 1) % 7 and at < self.closes


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemOption:
    """A choice on an item ("extra cheese") with a price delta in minor units."""

    id: str
    name: str
    price_delta_minor: int = 0

    def __post_init__(self) -> None:
        _require(
            self.price_delta_minor >= 0,
            "invalid_price",
            f"option price_delta_minor must be >= 0 (got {self.price_delta_minor})",
            "price_delta_minor",
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class MenuItem:
    id: ItemId
    name: str
    price: Money
    options: tuple[ItemOption, ...] = ()
    available: bool = True

    def __post_init__(self) -> None:
        _require(bool(self.name.strip()), "empty_name", "item name must not be empty", "name")
        _require(
            self.price.amount_minor >= 0,
            "invalid_price",
            f"price must be >= 0 (got {self.price.amount_minor}) for item {self.id}",
            "price_minor",
        )
        ids = [o.id for o in self.options]
        _require(
            len(ids) == len(set(ids)),
            "duplicate_option",
            f"option ids must be unique within item {self.id}",
            "options",
        )

    def option(self, option_id: str) -> ItemOption:
        for opt in self.options:
            if opt.id == option_id:
                return opt
        raise InvalidInput(
            "unknown_option",
            f"option {option_id!r} does not exist on item {self.id}",
            field="options",
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Merchant:
    id: MerchantId
    region_id: RegionId
    name: str
    location: Point
    prep_time_s: int
    menu: tuple[MenuItem, ...] = ()
    hours: tuple[OpeningWindow, ...] = ()  # empty = always open
    active: bool = True
    version: int = 0  # compare-and-set on save: two menu edits never lose one another
    # The tenant of the row it was loaded from (never written back: rows do not move between
    # tenants); ``core.tenancy.same_world`` checks it. Not part of equality.
    tenant: str = field(default=DEFAULT_TENANT, compare=False)

    def __post_init__(self) -> None:
        _require(bool(self.name.strip()), "empty_name", "merchant name must not be empty", "name")
        _require(
            60 <= self.prep_time_s <= 4 * 3600,
            "invalid_prep_time",
            f"prep_time_s must be in [60, 14400] (got {self.prep_time_s})",
            "prep_time_s",
        )
        ids = [i.id for i in self.menu]
        _require(len(ids) == len(set(ids)), "duplicate_item", "menu item ids must be unique", "menu")

    def item(self, item_id: str) -> MenuItem:
        for it in self.menu:
            if it.id == item_id:
                return it
        raise InvalidInput(
            "unknown_item",
            f"item {item_id!r} is not on the menu of merchant {self.id}",
            field="items",
        )

    def is_open(self, weekday: int, at: time) -> bool:
        return not self.hours or any(w.covers(weekday, at) for w in self.hours)


@dataclass(frozen=True, slots=True, kw_only=True)
class Address:
    label: str
    location: Point
    line1: str = ""
    instructions: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Consumer:
    id: ConsumerId
    region_id: RegionId
    name: str
    addresses: tuple[Address, ...] = ()
    tenant: str = field(default=DEFAULT_TENANT, compare=False)  # as ``Merchant.tenant``
    phone: str | None = None  # normalised (``parse_phone``); unique within the tenant


_PHONE = re.compile(r"^\+?[0-9]{6,15}$")  # E.164 allows at most 15 digits


def parse_phone(value: str, *, field: str = "phone") -> str:
    """A phone number as stored: spaces, dots, hyphens and parentheses dropped, a leading
    ``+`` kept, then 6-15 digits (``"+1 (650) 555-0100"`` -> ``"+16505550100"``)."""
    digits = re.sub(r"[\s.()\-]", "", value) if isinstance(value, str) else ""
    if not _PHONE.match(digits):
        raise InvalidInput("invalid_phone",
                           f"{field} must be 6-15 digits, optionally after a '+' (got "
                           f"{value!r:.40})", field=field)
    return digits


class Vehicle(StrEnum):
    BICYCLE = "bicycle"
    SCOOTER = "scooter"
    CAR = "car"
    WALKING = "walking"


# Typical urban speeds in m/s: the travel model's one table (core.eta.travel.SPEED_MPS).
VEHICLE_SPEED_MPS = {v: SPEED_MPS[v.value] for v in Vehicle}


class CourierStatus(StrEnum):
    OFFLINE = "offline"
    IDLE = "idle"
    BUSY = "busy"


@dataclass(frozen=True, slots=True, kw_only=True)
class Courier:
    """A courier; ``shift_id`` and ``shift_ends_at`` are set while on shift."""

    id: CourierId
    region_id: RegionId
    name: str
    vehicle: Vehicle
    status: CourierStatus = CourierStatus.OFFLINE
    location: Point | None = None
    shift_id: str | None = None
    shift_started_at: float | None = None
    shift_ends_at: float | None = None
    device_id: str | None = None
    active_order_ids: tuple[str, ...] = ()
    banned: bool = False
    version: int = 0  # compare-and-set on save: an accept never loses a release's change

    @property
    def on_shift(self) -> bool:
        return self.status is not CourierStatus.OFFLINE
