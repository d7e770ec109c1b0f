"""The acting tenant, for its ops: its row and config, and changes to the config."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Response

from lastmile.api.deps import Ops, ServicesDep
from lastmile.app import tenants
from lastmile.core.errors import InvalidInput
from lastmile.core.tenancy import Tenant

router = APIRouter(prefix="/v1/ops", tags=["ops"])

_PATCH_EXAMPLE = {"fees": {"base_delivery_fee_minor": 299},
                  "branding": {"primary_colour": "#0a7d4f"}, "parties": {"phone_required": True}}


def tenant_out(t: Tenant) -> dict[str, Any]:
    return {"id": t.id, "name": t.name, "kind": t.kind.value, "config": t.config,
            "version": t.version, "created_at": t.created_at}


def _etag(response: Response, t: Tenant) -> dict[str, Any]:
    response.headers["ETag"] = f'"{t.version}"'
    return tenant_out(t)


@router.get("/tenant")
def tenant(svc: ServicesDep, who: Ops, response: Response) -> dict[str, Any]:
    """The tenant this key acts for: id, name, kind (live or test), config and version (also
    the ``ETag``, for ``If-Match`` on a change)."""
    return _etag(response, tenants.get_tenant(svc, who.tenant))


@router.patch("/tenant/config")
def configure(
    svc: ServicesDep, who: Ops, response: Response,
    patch: Annotated[dict[str, Any], Body(examples=[_PATCH_EXAMPLE])],
    if_match: Annotated[str | None, Header(max_length=24)] = None,
) -> dict[str, Any]:
    """Change the tenant's config by a JSON merge patch (RFC 7396): objects merge, ``null``
    removes a key. The result is validated as a whole (422 naming the field path, e.g.
    ``config.fees.base_delivery_fee_minor``). With ``If-Match: "<version>"`` a tenant
    changed since that version is refused (409); without it, a change saved between this
    one's read and write still is."""
    updated = tenants.configure(svc, patch, tenant_id=who.tenant,
                                expected_version=_version(if_match))
    return _etag(response, updated)


def _version(if_match: str | None) -> int | None:
    if if_match is None:
        return None
    value = if_match.strip().removeprefix("W/").strip('"')
    if not (value.isascii() and value.isdigit()):
        raise InvalidInput("invalid_if_match",
                           f"If-Match must be a tenant version such as \"3\" (got {if_match!r})",
                           field="If-Match")
    return int(value)
