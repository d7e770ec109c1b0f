"""Tenants of a deployment: create, list, read and configure them.

A tenant's row is its own (``tenant_id`` = its id), so inside a tenant only that tenant is
visible; listing all of them is the platform's view (``tenancy.platform_scope``).

A tenant's config (``core.tenant_config``) is validated here on every write and applied by
the use cases that read it: ``pricing_in`` / ``pricing`` (quotes, orders, Drive),
``dispatch_policy`` (dispatch rounds), ``config_of(...).parties`` (consumers),
``config_of(...).currency`` (regions), ``config_of(...).branding`` (pages).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from lastmile.app.context import Services
from lastmile.app.ports import UnitOfWork
from lastmile.app.tenancy import acting_as, current_tenant, platform_scope
from lastmile.core import tenant_config
from lastmile.core.dispatch import DispatchPolicy
from lastmile.core.errors import Conflict, InvalidInput, NotFound
from lastmile.core.pricing import PricingPolicy
from lastmile.core.tenancy import (
    DEFAULT_TENANT,
    Tenant,
    TenantKind,
    default_kind,
    parse_new_tenant,
    parse_tenant,
)
from lastmile.core.tenant_config import TenantConfig, merge_patch, parse_tenant_config

CONFIG_KEYS = frozenset(tenant_config.CONFIG_KEYS)  # currency, branding, fees, ..., testkit


def _config(raw: Mapping[str, Any] | None, services: Services) -> dict[str, Any]:
    """The stored form of ``raw``, validated against the deployment's pricing policy."""
    return parse_tenant_config(raw, pricing=services.pricing).to_json()


def create_tenant(services: Services, tenant_id: str, *, name: str | None = None,
                  kind: TenantKind | None = None,
                  config: Mapping[str, object] | None = None) -> Tenant:
    """A new tenant (409 ``tenant_exists`` when it exists)."""
    tid = parse_new_tenant(tenant_id)
    if name is not None and not 1 <= len(name.strip()) <= 200:
        raise InvalidInput("invalid_name", f"name must have 1-200 characters (got {name!r})",
                           field="name")
    tenant = Tenant(id=tid, name=(name or tid).strip(), kind=kind or default_kind(tid),
                    config=_config(config, services), created_at=services.clock.now())
    with acting_as(tid), services.uow() as uow:
        if uow.tenants.get(tid) is not None:
            raise Conflict("tenant_exists", f"tenant {tid} exists", field="tenant")
        uow.tenants.add(tenant)
        uow.commit()
    services.tenant_cache.forget(tid)
    return tenant


def ensure_tenant(services: Services, tenant_id: str) -> Tenant:
    """The tenant, created with its default kind when missing (seed, keys, the probe)."""
    tid = parse_tenant(tenant_id)
    with acting_as(tid), services.uow(read_only=True) as uow:
        found = uow.tenants.get(tid)
    if found is not None:
        return found
    try:
        return create_tenant(services, tid)
    except Conflict:  # created meanwhile
        return get_tenant(services, tid)


def get_tenant(services: Services, tenant_id: str | None = None) -> Tenant:
    """The tenant (the current one by default): 404 when it does not exist."""
    tid = parse_tenant(tenant_id or current_tenant())
    with acting_as(tid), services.uow(read_only=True) as uow:
        tenant = uow.tenants.get(tid)
    if tenant is None:
        raise NotFound("tenant_not_found", f"no tenant {tid}", field="tenant")
    return tenant


def list_tenants(services: Services) -> list[Tenant]:
    """Every tenant of the deployment (the platform's view: ops CLI, not a tenant's API)."""
    with platform_scope(), services.uow(read_only=True) as uow:
        return uow.tenants.list()


def configure(services: Services, patch: Mapping[str, Any], *, tenant_id: str | None = None,
              expected_version: int | None = None) -> Tenant:
    """Apply ``patch`` to the tenant's config as a JSON merge patch (RFC 7396: objects
    merge, ``null`` removes a key) and store it when the result is valid (422 naming the
    field path otherwise).

    409 ``concurrent_update`` when ``expected_version`` is given and the tenant has moved
    on, or when another change is saved between this one's read and write; 409
    ``currency_in_use`` when the currency would change while regions of the tenant use
    another one (a region's prices are in its currency).
    """
    tid = parse_tenant(tenant_id or current_tenant())
    with acting_as(tid), services.uow() as uow:
        tenant = uow.tenants.get(tid)
        if tenant is None:
            raise NotFound("tenant_not_found", f"no tenant {tid}", field="tenant")
        if expected_version is not None and expected_version != tenant.version:
            raise Conflict("concurrent_update",
                           f"tenant {tid} is at version {tenant.version}, not "
                           f"{expected_version}: read it again and reapply the change",
                           current_state=str(tenant.version))
        config = _config(merge_patch(tenant.config, _patch(patch)), services)
        currency = config.get("currency")
        if currency is not None and currency != tenant.config.get("currency"):
            others = sorted(r.id for r in uow.regions.list() if r.currency != currency)
            if others:
                raise Conflict("currency_in_use",
                               f"config.currency cannot become {currency}: region(s) "
                               f"{', '.join(others[:5])} use another currency",
                               field="config.currency")
        saved = uow.tenants.save(replace(tenant, config=config))
        uow.commit()
    services.tenant_cache.forget(tid)
    return saved


def _patch(patch: Mapping[str, Any]) -> Mapping[str, Any]:
    """``patch`` when it is an object no deeper than a config (``config.fees.x``); the
    values' types and rules are ``core.tenant_config``'s to check."""
    if not isinstance(patch, Mapping):
        raise InvalidInput("invalid_config", f"config must be an object (got {patch!r:.40})",
                           field="config")
    for key, below in patch.items():
        for name, value in (below.items() if isinstance(below, Mapping) else ()):
            # region_fees is one level deeper: per region id, an object of fee overrides.
            if key == "region_fees" and isinstance(value, Mapping):
                _flat(value, f"config.{key}.{name}")
            else:
                _flat({name: value}, f"config.{key}")
    return patch


def _flat(values: Mapping[str, Any], parent: str) -> None:
    for name, value in values.items():
        if isinstance(value, Mapping):  # lists are values (testkit.auto_accept)
            path = f"{parent}.{name}"
            raise InvalidInput("invalid_config", f"{path} must be a single value or a "
                               "list, not an object", field=path)


def config_of(tenant: Tenant) -> TenantConfig:
    """The tenant's config as a value (stored validated; read again here)."""
    return parse_tenant_config(tenant.config)


def tenant_in(uow: UnitOfWork, services: Services) -> Tenant:
    """The current tenant (through the cache), read in the caller's unit of work."""
    def load(tid: str) -> Tenant:
        return uow.tenants.get(tid) or _fallback(tid)

    return services.tenant_cache.get(current_tenant(), now=services.clock.now(), load=load)


def pricing_in(uow: UnitOfWork, services: Services, region_id: str | None = None) -> PricingPolicy:
    """The pricing policy of the current tenant: the deployment's, with its fee overrides
    (and, given ``region_id``, that region's: ``region_fees``)."""
    return config_of(tenant_in(uow, services)).pricing(services.pricing, region_id)


def pricing(services: Services) -> PricingPolicy:
    """``pricing_in`` for a caller without a unit of work."""
    return config_of(current(services)).pricing(services.pricing)


def dispatch_policy(services: Services, base: DispatchPolicy) -> DispatchPolicy:
    """The dispatch policy of the current tenant: ``base`` with its overrides."""
    return config_of(current(services)).dispatch_policy(base)


def _fallback(tenant_id: str) -> Tenant:
    """A tenant without a row: the default one (0011 adds its row, older databases lack
    it), or one whose rows were written without ``ensure_tenant``: it behaves as that would
    have made it, of its default kind (a ``doortest:*`` tenant is sandboxed) with no config."""
    if tenant_id == DEFAULT_TENANT:
        return Tenant(id=DEFAULT_TENANT, name="Default", kind=TenantKind.LIVE, config={},
                      created_at=0.0)
    return Tenant(id=tenant_id, name=tenant_id, kind=default_kind(tenant_id), config={},
                  created_at=0.0)


def _load(services: Services, tenant_id: str) -> Tenant:
    try:
        return get_tenant(services, tenant_id)
    except NotFound:
        return _fallback(tenant_id)


def current(services: Services) -> Tenant:
    """The current tenant's row, from a short-lived cache (``Services.tenant_cache``)."""
    return services.tenant_cache.get(current_tenant(), now=services.clock.now(),
                                     load=lambda tid: _load(services, tid))
