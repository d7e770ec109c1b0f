"""What a courier is paid, as a validated value (pure).

A ``PayPolicy`` holds the rates of the pay pipeline (``core.pay.pipeline``): base per
order, per kilometre, per minute of the order's trip, the rush-hour multiplier and its
windows, boost windows, and the guaranteed minimum per active hour. Amounts are integer
minor units of ``currency``; the multiplier is a decimal string (``"1.5"``) so it is
exact. Windows are minutes of the local day, ``[start_min, end_min)``; the local day is
UTC shifted by ``utc_offset_min``. A window may not wrap midnight: split it in two.

Every rule broken raises ``InvalidInput`` (422) whose field is the path of the value,
``pay.rush_multiplier``, and whose message names the rule and the value received.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from lastmile.core.errors import InvalidInput
from lastmile.core.money import Money

ROOT = "pay"
MINUTES_PER_DAY = 1_440
MAX_MULTIPLIER = Decimal(5)
MAX_RATE_MINOR = 100_000_000  # a sanity bound, 1,000,000.00 in a two-decimal currency


def _bad(name: str, rule: str, got: object) -> InvalidInput:
    return InvalidInput("invalid_pay_policy", f"{name} must be {rule} (got {got!r})",
                        field=f"{ROOT}.{name}")


def _rate(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_RATE_MINOR:
        raise _bad(name, f"a whole number of minor units in 0..{MAX_RATE_MINOR}", value)


def _window(name: str, start_min: int, end_min: int) -> None:
    for part, v in (("start_min", start_min), ("end_min", end_min)):
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MINUTES_PER_DAY:
            raise _bad(f"{name}.{part}", f"a minute of the day in 0..{MINUTES_PER_DAY}", v)
    if start_min >= end_min:
        raise _bad(name, "a window with start_min < end_min (split one that wraps midnight)",
                   (start_min, end_min))


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeWindow:
    """Minutes ``[start_min, end_min)`` of the local day."""

    start_min: int
    end_min: int

    def __post_init__(self) -> None:
        _window("window", self.start_min, self.end_min)

    def contains(self, minute_of_day: int) -> bool:
        return self.start_min <= minute_of_day < self.end_min

    def label(self) -> str:
        return f"{_hhmm(self.start_min)}-{_hhmm(self.end_min)}"


@dataclass(frozen=True, slots=True, kw_only=True)
class BoostWindow:
    """A flat ``amount_minor`` added to each order delivered inside the window."""

    start_min: int
    end_min: int
    amount_minor: int
    reason: str = "boost"

    def __post_init__(self) -> None:
        _window("boosts", self.start_min, self.end_min)
        _rate("boosts.amount_minor", self.amount_minor)
        if not isinstance(self.reason, str) or not self.reason.strip() or len(self.reason) > 100:
            raise _bad("boosts.reason", "1..100 characters", self.reason)

    @property
    def window(self) -> TimeWindow:
        return TimeWindow(start_min=self.start_min, end_min=self.end_min)


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


@dataclass(frozen=True, slots=True, kw_only=True)
class PayPolicy:
    """The rates of the pay pipeline; the defaults pay nothing but the base per order."""

    currency: str = "USD"
    base_per_order_minor: int = 0
    per_km_minor: int = 0
    per_minute_minor: int = 0
    rush_multiplier: str = "1"
    rush_windows: tuple[TimeWindow, ...] = ()
    boosts: tuple[BoostWindow, ...] = ()
    guarantee_per_hour_minor: int = 0
    utc_offset_min: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.currency, str):
            raise _bad("currency", "a 3-letter ISO 4217 code", self.currency)
        try:
            Money.zero(self.currency)
        except InvalidInput as exc:
            raise _bad("currency", "a 3-letter ISO 4217 code", self.currency) from exc
        for name in ("base_per_order_minor", "per_km_minor", "per_minute_minor",
                     "guarantee_per_hour_minor"):
            _rate(name, getattr(self, name))
        multiplier = _decimal(self.rush_multiplier)
        if multiplier is None or not Decimal(1) <= multiplier <= MAX_MULTIPLIER:
            raise _bad("rush_multiplier", f"a decimal number in 1..{MAX_MULTIPLIER}",
                       self.rush_multiplier)
        if not isinstance(self.rush_windows, tuple) or not all(
                isinstance(w, TimeWindow) for w in self.rush_windows):
            raise _bad("rush_windows", "a tuple of TimeWindow", self.rush_windows)
        if not isinstance(self.boosts, tuple) or not all(
                isinstance(b, BoostWindow) for b in self.boosts):
            raise _bad("boosts", "a tuple of BoostWindow", self.boosts)
        offset = self.utc_offset_min
        if isinstance(offset, bool) or not isinstance(offset, int) or not -840 <= offset <= 840:
            raise _bad("utc_offset_min", "whole minutes in -840..840", offset)

    @property
    def multiplier(self) -> Decimal:
        return Decimal(self.rush_multiplier)

    def minute_of_day(self, at_s: float) -> int:
        """The local minute of the day (0..1439) of the epoch second ``at_s``."""
        return int((at_s // 60 + self.utc_offset_min) % MINUTES_PER_DAY)

    def money(self, amount_minor: int) -> Money:
        return Money(amount_minor=amount_minor, currency=self.currency)


def _decimal(text: object) -> Decimal | None:
    if not isinstance(text, str):
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def policy_from_mapping(raw: dict[str, object], *, base: PayPolicy | None = None) -> PayPolicy:
    """A policy from plain data (settings, JSON): ``base`` with the keys of ``raw`` replaced.

    ``rush_multiplier`` may be a JSON number or a decimal string. Windows are
    ``[[start_min, end_min], ...]``; boosts ``[{"start_min", "end_min",
    "amount_minor", "reason"}, ...]``. An unknown key is refused, naming it.
    """
    fields = {f.name for f in dataclasses.fields(PayPolicy)}
    changes: dict[str, object] = {}
    for key, value in raw.items():
        if key not in fields:
            raise _bad(key, f"one of {sorted(fields)}", key)
        if key == "rush_windows":
            changes[key] = tuple(_window_from(v) for v in _list(key, value))
        elif key == "boosts":
            changes[key] = tuple(_boost_from(v) for v in _list(key, value))
        elif key == "rush_multiplier" and isinstance(value, int | float) \
                and not isinstance(value, bool):
            changes[key] = str(value)  # JSON's 1.5 is the decimal "1.5"
        else:
            changes[key] = value
    return dataclasses.replace(base or PayPolicy(), **changes)  # type: ignore[arg-type]


def _list(name: str, value: object) -> list[object]:
    if not isinstance(value, list | tuple):
        raise _bad(name, "a list", value)
    return list(value)


def _window_from(value: object) -> TimeWindow:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise _bad("rush_windows", "pairs [start_min, end_min]", value)
    start, end = value
    _window("rush_windows", start, end)
    return TimeWindow(start_min=start, end_min=end)


def _boost_from(value: object) -> BoostWindow:
    if not isinstance(value, dict) or not {"start_min", "end_min", "amount_minor"} <= set(value):
        raise _bad("boosts", "objects with start_min, end_min, amount_minor[, reason]", value)
    unknown = set(value) - {"start_min", "end_min", "amount_minor", "reason"}
    if unknown:
        raise _bad("boosts", "objects with start_min, end_min, amount_minor[, reason]",
                   sorted(unknown))
    return BoostWindow(start_min=value["start_min"], end_min=value["end_min"],
                       amount_minor=value["amount_minor"], reason=value.get("reason", "boost"))


# The deployment's default (LASTMILE_PAY_POLICY overrides it, docs/pay.md): 3.00 an order,
# 0.60 a km and 0.15 a minute of the trip, x1.5 at lunch and dinner, 18.00 an active hour
# guaranteed (the flat hourly figure the simulator's KPIs used before the pay engine).
DEFAULT_POLICY = PayPolicy(
    base_per_order_minor=300,
    per_km_minor=60,
    per_minute_minor=15,
    rush_multiplier="1.5",
    rush_windows=(TimeWindow(start_min=11 * 60 + 30, end_min=13 * 60 + 30),
                  TimeWindow(start_min=17 * 60 + 30, end_min=20 * 60 + 30)),
    guarantee_per_hour_minor=1_800,
)
