"""A tenant's configuration: what may differ per tenant, typed and validated (pure).

Eight keys (``CONFIG_KEYS``), each optional; a key not set means the deployment's default:

- ``currency``: the ISO 4217 code of the tenant's money. A region created without one
  gets it; a region in another currency is refused (``app.catalog.create_region``).
- ``branding``: ``display_name``, ``primary_colour`` (``#RRGGBB``), ``logo_url`` (https
  only), ``support_email``: shown on the tracking page and the ops dashboard.
- ``fees``: overrides of ``core.pricing.PricingPolicy`` fields, checked by the policy's own
  rules on top of the deployment's policy.
- ``region_fees``: per region id, overrides of the same fields on top of ``fees``
  (``{"reg_1": {"surge_cap": 1.5}}``): a region's policy is the deployment's, then the
  tenant's ``fees``, then the region's; each is checked by the policy's rules. At most
  ``MAX_REGION_FEES`` regions; an id is 1-64 letters, digits, ``_`` or ``-``.
- ``dispatch``: overrides of ``core.dispatch.DispatchPolicy`` knobs, checked likewise.
- ``parties``: ``phone_required`` (a consumer must give a phone) and ``phone_unique``. A
  phone, when given, is always unique within its tenant (the database's partial unique
  index on ``(tenant_id, phone)``), so ``phone_unique`` may only be true: a tenant cannot
  switch the index off, and accepting ``false`` would promise what the schema refuses.
- ``pay``: overrides of ``core.pay.PayPolicy`` fields (courier pay, docs/pay.md), in
  the format of ``LASTMILE_PAY_POLICY``, checked by the policy's own rules.
- ``testkit`` (test tenants, ``app.testkit``): ``auto_accept``, the couriers whose offers
  are accepted by themselves.

Every error is an ``InvalidInput`` (422) whose field is the path inside the config,
``config.fees.base_delivery_fee_minor``, and whose message names rule and value.
Changes arrive as a JSON merge patch (RFC 7396, ``merge_patch``): objects merge, ``null``
removes a key.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from lastmile.core.dispatch.model import DispatchPolicy, PolicyKind
from lastmile.core.errors import DomainError, InvalidInput
from lastmile.core.pay.policy import PayPolicy, policy_from_mapping
from lastmile.core.pricing import PricingPolicy

CONFIG_KEYS = ("currency", "branding", "fees", "region_fees", "dispatch", "parties",
               "testkit", "pay")
MAX_REGION_FEES = 200
_REGION_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
MAX_AUTO_ACCEPT = 1_000  # couriers a test tenant may flag (app.testkit)
ROOT = "config"
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
_EMAIL = re.compile(r"^[^@\s<>\"']+@[^@\s<>\"']+\.[^@\s<>\"']+$")
MAX_NAME = 100
MAX_URL = 2_000
MAX_EMAIL = 254


@dataclass(frozen=True, slots=True, kw_only=True)
class Branding:
    display_name: str | None = None
    primary_colour: str | None = None  # "#rrggbb", lowercase
    logo_url: str | None = None  # https
    support_email: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Parties:
    phone_required: bool = False
    phone_unique: bool = True  # only true: see the module docstring


@dataclass(frozen=True, slots=True, kw_only=True)
class TenantConfig:
    """A validated configuration; ``fees`` and ``dispatch`` hold only the overridden fields
    (sorted ``(name, value)`` pairs), so the deployment's defaults still apply to the rest."""

    currency: str | None = None
    branding: Branding = field(default_factory=Branding)
    fees: tuple[tuple[str, Any], ...] = ()
    # (region id, overrides) sorted by region id; applied after ``fees``.
    region_fees: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()
    dispatch: tuple[tuple[str, Any], ...] = ()
    parties: Parties = field(default_factory=Parties)
    # Test tenants only (app.testkit): couriers whose offers are accepted by themselves.
    auto_accept: tuple[str, ...] = ()
    # Courier pay overrides (core.pay), as canonical JSON: a value, hashable like the rest.
    pay: str | None = None

    def pay_policy(self, base: PayPolicy) -> PayPolicy:
        """``base`` with the tenant's pay overrides (``base`` itself when there are none)."""
        return policy_from_mapping(json.loads(self.pay), base=base) if self.pay else base

    def pricing(self, base: PricingPolicy, region_id: str | None = None) -> PricingPolicy:
        """``base`` with the tenant's fee overrides, then those of ``region_id`` when the
        config has any for it (``base`` itself when there are none)."""
        knobs = {**dict(self.fees), **dict(dict(self.region_fees).get(region_id or "", ()))}
        return dataclasses.replace(base, **knobs) if knobs else base

    def dispatch_policy(self, base: DispatchPolicy) -> DispatchPolicy:
        """``base`` with the tenant's dispatch overrides (``kind`` given as its value)."""
        if not self.dispatch:
            return base
        knobs = dict(self.dispatch)
        if "kind" in knobs:
            knobs["kind"] = PolicyKind(knobs["kind"])
        return dataclasses.replace(base, **knobs)

    def to_json(self) -> dict[str, Any]:
        """The stored form: only what is set, so an empty config is ``{}``."""
        out: dict[str, Any] = {}
        if self.currency is not None:
            out["currency"] = self.currency
        branding = {k: v for k, v in _fields(self.branding).items() if v is not None}
        if branding:
            out["branding"] = branding
        if self.fees:
            out["fees"] = dict(self.fees)
        if self.region_fees:
            out["region_fees"] = {region: dict(knobs) for region, knobs in self.region_fees}
        if self.dispatch:
            out["dispatch"] = dict(self.dispatch)
        if self.parties != Parties():
            out["parties"] = _fields(self.parties)
        if self.auto_accept:
            out["testkit"] = {"auto_accept": list(self.auto_accept)}
        if self.pay:
            out["pay"] = json.loads(self.pay)
        return out


def parse_tenant_config(raw: Mapping[str, Any] | None, *,
                        pricing: PricingPolicy | None = None,
                        dispatch: DispatchPolicy | None = None) -> TenantConfig:
    """The config in ``raw`` (a JSON object), validated; ``pricing`` and ``dispatch`` are
    the deployment's policies the overrides apply to (their defaults when not given): an
    override is valid when the policy it makes keeps every rule of the policy type.

    Raises InvalidInput (field = the path, e.g. ``config.fees.per_km_minor``) for an
    unknown key, a value of the wrong type, or a value that breaks a rule.
    """
    data = _object(raw or {}, ROOT)
    _known(data, CONFIG_KEYS, ROOT)
    config = TenantConfig(
        currency=_currency(data.get("currency")),
        branding=_branding(data.get("branding")),
        fees=_overrides(data.get("fees"), PricingPolicy, f"{ROOT}.fees"),
        region_fees=_region_fees(data.get("region_fees")),
        dispatch=_overrides(data.get("dispatch"), DispatchPolicy, f"{ROOT}.dispatch"),
        parties=_parties(data.get("parties")),
        auto_accept=_testkit(data.get("testkit")),
        pay=_pay(data.get("pay")),
    )
    _apply(lambda: config.pricing(pricing or PricingPolicy()), f"{ROOT}.fees")
    for region, _ in config.region_fees:
        _apply(functools.partial(config.pricing, pricing or PricingPolicy(), region),
               f"{ROOT}.region_fees.{region}")
    _apply(lambda: config.dispatch_policy(dispatch or DispatchPolicy()), f"{ROOT}.dispatch")
    return config


def merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7396: ``patch``'s objects merge into ``target``'s, ``None`` removes a key, any
    other value replaces. Neither argument is changed."""
    out = dict(target)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping):
            below = out.get(key)
            out[key] = merge_patch(below if isinstance(below, Mapping) else {}, value)
        else:
            out[key] = value
    return out


def _fields(value: Any) -> dict[str, Any]:
    return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}


def _bad(path: str, message: str, code: str = "invalid_config") -> InvalidInput:
    return InvalidInput(code, f"{path} {message}", field=path)


def _object(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise _bad(path, f"must be an object (got {_kind(value)})")
    return value


def _known(data: Mapping[str, Any], keys: tuple[str, ...], path: str) -> None:
    unknown = sorted(set(data) - set(keys))
    if unknown:
        raise _bad(f"{path}.{unknown[0]}",
                   f"is not a known key (known: {', '.join(keys)})", code="unknown_config_key")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {value}"
    if isinstance(value, str):
        return f"string {value[:40]!r}"
    if isinstance(value, (int, float)):
        return f"number {value}"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "an array"
    return type(value).__name__


def _currency(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _CURRENCY.match(value):
        raise _bad(f"{ROOT}.currency",
                   f"must be a 3-letter ISO 4217 code such as EUR (got {_kind(value)})")
    return value


def _branding(value: Any) -> Branding:
    if value is None:
        return Branding()
    path = f"{ROOT}.branding"
    data = _object(value, path)
    _known(data, tuple(f.name for f in dataclasses.fields(Branding)), path)
    return Branding(
        display_name=_text(data.get("display_name"), f"{path}.display_name"),
        primary_colour=_colour(data.get("primary_colour"), f"{path}.primary_colour"),
        logo_url=_https(data.get("logo_url"), f"{path}.logo_url"),
        support_email=_email(data.get("support_email"), f"{path}.support_email"),
    )


def _string(value: Any, path: str, rule: str) -> str:
    if not isinstance(value, str):
        raise _bad(path, f"must be {rule} (got {_kind(value)})")
    return value


def _text(value: Any, path: str) -> str | None:
    if value is None:
        return None
    rule = f"a text of 1-{MAX_NAME} characters without control characters"
    text = _string(value, path, rule).strip()
    if not 1 <= len(text) <= MAX_NAME or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise _bad(path, f"must be {rule} (got {_kind(value)})")
    return text


def _colour(value: Any, path: str) -> str | None:
    if value is None:
        return None
    if not _COLOUR.match(_string(value, path, "a colour #RRGGBB")):
        raise _bad(path, f"must be a colour #RRGGBB (got {_kind(value)})")
    return str(value).lower()


def _https(value: Any, path: str) -> str | None:
    if value is None:
        return None
    rule = f"an https URL of at most {MAX_URL} characters, without credentials"
    url = _string(value, path, rule)
    try:
        parts = urlsplit(url)
        ok = (parts.scheme == "https" and bool(parts.hostname) and parts.username is None
              and len(url) <= MAX_URL and not any(c.isspace() or c in "\"'<>" for c in url))
    except ValueError:  # a malformed port or IPv6 host
        ok = False
    if not ok:
        raise _bad(path, f"must be {rule} (got {_kind(value)})")
    return url


def _email(value: Any, path: str) -> str | None:
    if value is None:
        return None
    rule = f"an e-mail address of at most {MAX_EMAIL} characters"
    email = _string(value, path, rule)
    if len(email) > MAX_EMAIL or not _EMAIL.match(email):
        raise _bad(path, f"must be {rule} (got {_kind(value)})")
    return email


def _testkit(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    path = f"{ROOT}.testkit"
    data = _object(value, path)
    _known(data, ("auto_accept",), path)
    ids = data.get("auto_accept", [])
    if not isinstance(ids, list) or not all(isinstance(i, str) and 0 < len(i) <= 64
                                            for i in ids):
        raise _bad(f"{path}.auto_accept", "must be a list of courier ids (strings of 1-64 "
                   f"characters) (got {_kind(ids)})")
    if len(ids) > MAX_AUTO_ACCEPT:
        raise _bad(f"{path}.auto_accept",
                   f"must list at most {MAX_AUTO_ACCEPT} couriers (got {len(ids)})")
    return tuple(ids)


def _pay(value: Any) -> str | None:
    """Pay overrides, checked by ``PayPolicy``'s rules (field ``config.pay.<name>``)."""
    if value is None:
        return None
    data = _object(value, f"{ROOT}.pay")
    try:
        policy_from_mapping(dict(data))
    except InvalidInput as exc:
        raise InvalidInput(exc.code, f"{ROOT}.pay.{exc.message}",
                           field=f"{ROOT}.{exc.field}") from exc
    return json.dumps(data, sort_keys=True) if data else None


def _parties(value: Any) -> Parties:
    if value is None:
        return Parties()
    path = f"{ROOT}.parties"
    data = _object(value, path)
    _known(data, ("phone_required", "phone_unique"), path)
    flags = {}
    for name in ("phone_required", "phone_unique"):
        flag = data.get(name, getattr(Parties(), name))
        if not isinstance(flag, bool):
            raise _bad(f"{path}.{name}", f"must be true or false (got {_kind(flag)})")
        flags[name] = flag
    if not flags["phone_unique"]:
        raise _bad(f"{path}.phone_unique",
                   "must be true: a phone, when given, is unique within its tenant (a unique "
                   "index on tenant and phone); duplicates are not supported (got false)",
                   code="unsupported_config")
    return Parties(**flags)


def _region_fees(value: Any) -> tuple[tuple[str, tuple[tuple[str, Any], ...]], ...]:
    """Per region id, typed fee overrides (their rules are checked with the policy)."""
    if value is None:
        return ()
    path = f"{ROOT}.region_fees"
    data = _object(value, path)
    if len(data) > MAX_REGION_FEES:
        raise _bad(path, f"must name at most {MAX_REGION_FEES} regions (got {len(data)})")
    out = []
    for region in sorted(data):
        if not _REGION_ID.match(region):
            raise _bad(f"{path}.{region[:64]}", "must be a region id of 1-64 letters, digits, "
                       f"'_' or '-' (got {_kind(region)})")
        out.append((region, _overrides(data[region], PricingPolicy, f"{path}.{region}")))
    return tuple(out)


def _overrides(value: Any, policy: type[Any], path: str) -> tuple[tuple[str, Any], ...]:
    """Type-checked ``(name, value)`` pairs for fields of ``policy`` (rules checked later)."""
    if value is None:
        return ()
    data = _object(value, path)
    defaults = _fields(policy())
    _known(data, tuple(defaults), path)
    out = []
    for name in sorted(data):
        out.append((name, _typed(data[name], defaults[name], f"{path}.{name}")))
    return tuple(out)


def _typed(value: Any, default: Any, path: str) -> Any:
    """``value`` when it has the type of the field's default (an int for an int, a finite
    number for a float, a boolean for a boolean, a known value for an enum)."""
    if isinstance(default, PolicyKind):
        names = sorted(k.value for k in PolicyKind)
        if value not in names:
            raise _bad(path, f"must be one of {', '.join(names)} (got {_kind(value)})")
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise _bad(path, f"must be true or false (got {_kind(value)})")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(path, f"must be an integer (got {_kind(value)})")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _bad(path, f"must be a number (got {_kind(value)})")
    return float(value)


def _apply(build: Callable[[], object], path: str) -> None:
    """Build the policy the overrides make; a broken rule is reported under ``path``."""
    try:
        build()
    except DomainError as exc:
        where = f"{path}.{exc.field}" if exc.field else path
        raise InvalidInput(exc.code, f"{path}.{exc.message}" if exc.field else
                           f"{path}: {exc.message}", field=where) from exc
