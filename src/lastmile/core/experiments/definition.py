"""An experiment as the platform stores and serves it (pure): its design, arms, layer
range, lifecycle (draft -> running -> stopped) and the rule that gives a unit its arm.

Levers: ``dispatch`` (overrides of ``core.dispatch.DispatchPolicy``, served per region
round), ``fees`` (overrides of ``core.pricing.PricingPolicy``, served per quote), ``eta``
(``{"model": "incumbent" | "shadow" | "heuristic"}``, served per quote) and ``other`` (read
by code that calls ``app.experiments.variant`` itself; its params are free). A lever reads
the units its call knows (``Context``): a quote knows the consumer and the region, a
dispatch round only the region.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from lastmile.core.dispatch.model import DispatchPolicy
from lastmile.core.errors import Conflict, DomainError, InvalidInput
from lastmile.core.experiments.assignment import (
    MarketSlot,
    Span,
    Switchback,
    Variant,
    assign,
    bucket,
    layer_salt,
    switchback,
)
from lastmile.core.experiments.observations import CONTROL, DESIGNS, Design
from lastmile.core.pricing import PricingPolicy
from lastmile.core.tenant_config import TenantConfig, parse_tenant_config

UnitKind = Literal["order", "consumer", "courier", "region", "market"]
UNIT_KINDS: tuple[UnitKind, ...] = ("order", "consumer", "courier", "region", "market")
LEVERS = ("dispatch", "fees", "eta", "other")
ETA_MODELS = ("incumbent", "shadow", "heuristic")
# The unit each design randomises (``ab`` may randomise orders or consumers).
DESIGN_UNITS: dict[Design, tuple[UnitKind, ...]] = {
    "ab": ("consumer", "order"), "courier_ab": ("courier",), "switchback": ("region",),
    "market_ab": ("market",), "interleaving": ("consumer",)}
# The units a lever's call knows: a quote its consumer and region, a round its region.
LEVER_UNITS: dict[str, tuple[UnitKind, ...]] = {
    "dispatch": ("region", "market"), "fees": ("consumer", "region", "market"),
    "eta": ("consumer", "region", "market"), "other": UNIT_KINDS}
NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,62}$")
LAYER = re.compile(r"^[a-z0-9_][a-z0-9_\-]{0,63}$")
MAX_VARIANTS = 10
MAX_PARAMS = 20


class State(StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    STOPPED = "stopped"


_MOVES = {(State.DRAFT, State.RUNNING), (State.RUNNING, State.STOPPED),
          (State.DRAFT, State.STOPPED)}


@dataclass(frozen=True, slots=True, kw_only=True)
class Layer:
    """Experiments of one layer never share a unit; ``holdout`` of its units are in none."""

    name: str
    holdout: float = 0.0

    def __post_init__(self) -> None:
        if not LAYER.match(self.name):
            raise InvalidInput("invalid_layer", f"layer must be 1-64 lowercase letters, "
                               f"digits, _ or - (got {self.name!r})", field="layer")
        if not (math.isfinite(self.holdout) and 0.0 <= self.holdout < 1.0):
            raise InvalidInput("invalid_holdout", f"holdout must be in [0, 1) (got "
                               f"{self.holdout})", field="holdout")


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    """What the calling lever knows about the exposure: the time and the units at hand."""

    at_s: float
    consumer_id: str | None = None
    order_id: str | None = None
    courier_id: str | None = None
    region_id: str | None = None

    def unit(self, kind: UnitKind) -> str | None:
        if kind == "consumer":
            return self.consumer_id
        if kind == "order":
            return self.order_id
        if kind == "courier":
            return self.courier_id
        return self.region_id  # region (switchback) and market (market A/B)


@dataclass(frozen=True, slots=True, kw_only=True)
class Assignment:
    experiment_id: str
    unit: str
    """The randomised unit: the id given, or ``region@window`` in a switchback."""
    variant: Variant
    counts: bool = True
    """False for a switchback's burn-in or wash-out: served, recorded, not analysed."""

    @property
    def config(self) -> dict[str, Any]:
        return self.variant.config


@dataclass(frozen=True, slots=True, kw_only=True)
class Experiment:
    id: str
    name: str
    lever: str
    design: Design
    unit_kind: UnitKind
    variants: tuple[Variant, ...]
    salt: str
    layer: str
    span: Span
    state: State = State.DRAFT
    window_s: float = 3_600.0
    burn_in_s: float = 0.0
    wash_out_s: float = 0.0
    allocation: tuple[MarketSlot, ...] = ()
    description: str = ""
    created_at: float = 0.0
    started_at: float | None = None
    stopped_at: float | None = None

    def __post_init__(self) -> None:
        check_definition(self)

    @property
    def timing(self) -> Switchback:
        return Switchback(origin_s=self.started_at or 0.0, window_s=self.window_s,
                          burn_in_s=self.burn_in_s, wash_out_s=self.wash_out_s)

    def variant_named(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        raise InvalidInput("unknown_variant", f"experiment {self.name} has no variant "
                           f"{name!r}", field="variant")

    def moved(self, to: State, *, at: float) -> Experiment:
        """The experiment in state ``to`` (409 ``invalid_transition`` for any move but
        draft -> running -> stopped and draft -> stopped)."""
        if (self.state, to) not in _MOVES:
            raise Conflict("invalid_transition", f"experiment {self.name} is "
                           f"{self.state.value}; it cannot become {to.value}",
                           current_state=self.state.value)
        if to is State.RUNNING:
            return dataclasses.replace(self, state=to, started_at=at)
        return dataclasses.replace(self, state=to, stopped_at=at)


def check_definition(e: Experiment) -> None:
    """The rules a stored experiment keeps; InvalidInput naming the field."""
    if not NAME.match(e.name):
        raise InvalidInput("invalid_name", f"name must be 1-63 lowercase letters, digits, _ "
                           f"or - starting with a letter or digit (got {e.name!r})",
                           field="name")
    if e.lever not in LEVERS:
        raise InvalidInput("invalid_lever", f"lever must be one of {', '.join(LEVERS)} (got "
                           f"{e.lever!r})", field="lever")
    if e.design not in DESIGNS:
        raise InvalidInput("invalid_design", f"design must be one of {', '.join(DESIGNS)} "
                           f"(got {e.design!r})", field="design")
    if e.unit_kind not in DESIGN_UNITS[e.design]:
        raise InvalidInput("invalid_unit", f"a {e.design} experiment randomises "
                           f"{' or '.join(DESIGN_UNITS[e.design])}, not {e.unit_kind}",
                           field="unit")
    if e.unit_kind not in LEVER_UNITS[e.lever]:
        raise InvalidInput("invalid_unit", f"the {e.lever} lever knows "
                           f"{', '.join(LEVER_UNITS[e.lever])} at its call, not "
                           f"{e.unit_kind}", field="unit")
    names = [v.name for v in e.variants]
    if not 2 <= len(names) <= MAX_VARIANTS:
        raise InvalidInput("invalid_variants", f"an experiment needs 2..{MAX_VARIANTS} "
                           f"variants (got {len(names)})", field="variants")
    if len(set(names)) != len(names) or CONTROL not in names:
        raise InvalidInput("invalid_variants", f"variant names must be distinct and include "
                           f"{CONTROL!r} (got {names})", field="variants")
    for i, v in enumerate(e.variants):
        check_params(e.lever, v.params, field=f"variants[{i}].params")
    Switchback(origin_s=0.0, window_s=e.window_s, burn_in_s=e.burn_in_s,
               wash_out_s=e.wash_out_s)
    if e.design == "market_ab" and e.allocation:
        unknown = sorted({s.variant for s in e.allocation} - set(names))
        if unknown:
            raise InvalidInput("invalid_allocation", f"allocation names unknown variants "
                               f"{unknown}", field="strata_metrics")


def check_params(lever: str, params: tuple[tuple[str, Any], ...], *, field: str) -> None:
    """A variant's overrides must make a valid policy of its lever."""
    if len(params) > MAX_PARAMS:
        raise InvalidInput("invalid_params", f"at most {MAX_PARAMS} params (got "
                           f"{len(params)})", field=field)
    raw = dict(params)
    for key, value in raw.items():
        if not isinstance(value, str | int | float | bool) or (
                isinstance(value, float) and not math.isfinite(value)):
            raise InvalidInput("invalid_params", f"{key} must be a finite number, a string "
                               f"or a boolean (got {value!r})", field=f"{field}.{key}")
    if lever in ("fees", "dispatch"):
        section = "fees" if lever == "fees" else "dispatch"
        try:
            parse_tenant_config({section: raw})
        except DomainError as exc:
            inner = (exc.field or "").removeprefix(f"config.{section}")
            raise InvalidInput(exc.code, exc.message.replace(f"config.{section}", field),
                               field=f"{field}{inner}") from exc
    elif lever == "eta":
        unknown = sorted(set(raw) - {"model"})
        if unknown or raw.get("model", "incumbent") not in ETA_MODELS:
            raise InvalidInput("invalid_params", f"an eta variant takes only model in "
                               f"{', '.join(ETA_MODELS)} (got {raw})", field=field)


def params_from(raw: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(raw.items()))


def assignment(e: Experiment, unit: str, at_s: float, *,
               holdout: float = 0.0) -> Assignment | None:
    """The arm of ``unit`` at ``at_s`` when the experiment serves it, else None: not
    running then, held out of its layer, outside its layer range, a market outside the
    allocation, or a switchback before its start."""
    if e.state is not State.RUNNING or e.started_at is None or at_s < e.started_at:
        return None
    if e.stopped_at is not None and at_s >= e.stopped_at:
        return None
    u = bucket(layer_salt(e.layer), unit)
    if u < holdout or not e.span.holds(u):
        return None
    if e.design == "switchback":
        slot = switchback(e.salt, unit, at_s, e.timing, e.variants)
        if slot is None:
            return None
        return Assignment(experiment_id=e.id, unit=slot.unit, variant=slot.variant,
                          counts=slot.counts)
    if e.design == "market_ab":
        arm = next((s.variant for s in e.allocation if s.market == unit), None)
        if arm is None:
            return None
        return Assignment(experiment_id=e.id, unit=unit, variant=e.variant_named(arm))
    return Assignment(experiment_id=e.id, unit=unit, variant=assign(e.salt, unit, e.variants))


def pricing_with(base: PricingPolicy, params: Mapping[str, Any]) -> PricingPolicy:
    """``base`` with a fees variant's params (``base`` itself for none)."""
    return TenantConfig(fees=params_from(params)).pricing(base) if params else base


def dispatch_with(base: DispatchPolicy, params: Mapping[str, Any]) -> DispatchPolicy:
    """``base`` with a dispatch variant's params (``kind`` given as its value)."""
    return TenantConfig(dispatch=params_from(params)).dispatch_policy(base) if params else base
