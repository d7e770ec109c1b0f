"""Tenants of a deployment: create, list, read and configure them.

A tenant's row is its own (``tenant_id`` = its id), so inside a tenant only that tenant is
visible; listing all of them is the platform's view (``tenancy.platform_scope``).
"""

from __future__ import annotations

from collections.abc import Mapping

from lastmile.app.context import Services
from lastmile.app.tenancy import acting_as, current_tenant, platform_scope
from lastmile.core.errors import Conflict, InvalidInput, NotFound
from lastmile.core.tenancy import (
    DEFAULT_TENANT,
    Tenant,
    TenantKind,
    default_kind,
    parse_new_tenant,
    parse_tenant,
)

CONFIG_KEYS = frozenset({"currency", "branding", "fees", "dispatch", "parties", "testkit"})


def _config(raw: Mapping[str, object] | None) -> dict[str, object]:
    config = dict(raw or {})
    unknown = sorted(set(config) - CONFIG_KEYS)
    if unknown:
        raise InvalidInput("unknown_config_key",
                           f"config keys must be among {', '.join(sorted(CONFIG_KEYS))} "
                           f"(got {', '.join(unknown)})", field="config")
    return config


def create_tenant(services: Services, tenant_id: str, *, name: str | None = None,
                  kind: TenantKind | None = None,
                  config: Mapping[str, object] | None = None) -> Tenant:
    """A new tenant (409 ``tenant_exists`` when it exists)."""
    tid = parse_new_tenant(tenant_id)
    if name is not None and not 1 <= len(name.strip()) <= 200:
        raise InvalidInput("invalid_name", f"name must have 1-200 characters (got {name!r})",
                           field="name")
    tenant = Tenant(id=tid, name=(name or tid).strip(), kind=kind or default_kind(tid),
                    config=_config(config), created_at=services.clock.now())
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


def configure(services: Services, config: Mapping[str, object], *,
              tenant_id: str | None = None) -> Tenant:
    """Replace the keys given in ``config`` (others kept) of the tenant."""
    tid = parse_tenant(tenant_id or current_tenant())
    with acting_as(tid), services.uow() as uow:
        tenant = uow.tenants.get(tid)
        if tenant is None:
            raise NotFound("tenant_not_found", f"no tenant {tid}", field="tenant")
        updated = Tenant(id=tenant.id, name=tenant.name, kind=tenant.kind,
                         config=_config({**tenant.config, **dict(config)}),
                         created_at=tenant.created_at, version=tenant.version)
        saved = uow.tenants.save(updated)
        uow.commit()
    services.tenant_cache.forget(tid)
    return saved


def _load(services: Services, tenant_id: str) -> Tenant:
    try:
        return get_tenant(services, tenant_id)
    except NotFound:
        if tenant_id != DEFAULT_TENANT:
            raise
        # The default tenant is there even where its row is not (0011 adds it).
        return Tenant(id=DEFAULT_TENANT, name="Default", kind=TenantKind.LIVE, config={},
                      created_at=0.0)


def current(services: Services) -> Tenant:
    """The current tenant's row, from a short-lived cache (``Services.tenant_cache``)."""
    return services.tenant_cache.get(current_tenant(), now=services.clock.now(),
                                     load=lambda tid: _load(services, tid))
