"""Tenants: ``<L0:L1>``, a business (or product line) and a sub-class of it.

A tenant value is two lowercase labels, e.g. ``lastmile:default`` or ``doortest:probe``
(seed 003, the DoorTest post). Every row, event, key, log line and metric carries one.
This module is pure: parsing, the rule of who may act for whom, and the guardrail that
test and live parties never meet. Where the current tenant comes from is the shell's
business (``app.tenancy``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from lastmile.core.errors import Forbidden, InvalidInput

DEFAULT_TENANT = "lastmile:default"  # single-tenant use: everything not told otherwise
# Rows of the platform's own machinery (the event relay's subscribers, dispatcher
# heartbeats) belong to no customer; "platform" is reserved as an L0 for them.
PLATFORM_TENANT = "platform:system"
_LABEL = r"[a-z0-9](?:[a-z0-9_-]{0,30}[a-z0-9])?"
_TENANT = re.compile(rf"^{_LABEL}:{_LABEL}$")
_PATTERN = re.compile(rf"^(?:{_LABEL}|\*):(?:{_LABEL}|\*)$")
RESERVED_L0 = frozenset({"platform"})


class TenantKind(StrEnum):
    LIVE = "live"  # real customers, couriers and money
    TEST = "test"  # synthetic parties: end-to-end checks in production (DoorTest)


def parse_tenant(value: str, *, field: str = "tenant") -> str:
    """``value`` when it is a valid ``L0:L1`` tenant (labels of 1-32 of ``a-z 0-9 _ -``)."""
    if not isinstance(value, str) or not _TENANT.match(value):
        raise InvalidInput("invalid_tenant",
                           f"{field} must be 'L0:L1', two labels of 1-32 lowercase letters, "
                           f"digits, '_' or '-' (got {value!r})", field=field)
    return value


def parse_new_tenant(value: str, *, field: str = "tenant") -> str:
    """A tenant a customer may create: valid and not of a reserved L0."""
    tenant = parse_tenant(value, field=field)
    if tenant.split(":", 1)[0] in RESERVED_L0:
        raise InvalidInput("reserved_tenant",
                           f"{field}: L0 {tenant.split(':', 1)[0]!r} is reserved for the "
                           f"platform (got {value!r})", field=field)
    return tenant


def parse_pattern(value: str, *, field: str = "acts_for") -> str:
    """A tenant pattern: ``L0:L1`` where either label may be ``*`` (``doortest:*``)."""
    if not isinstance(value, str) or not _PATTERN.match(value):
        raise InvalidInput("invalid_tenant_pattern",
                           f"{field} entries must be 'L0:L1' with '*' allowed for either "
                           f"label (got {value!r})", field=field)
    return value


def matches(pattern: str, tenant: str) -> bool:
    p0, p1 = pattern.split(":", 1)
    t0, t1 = tenant.split(":", 1)
    return p0 in ("*", t0) and p1 in ("*", t1)


def acting_tenant(own: str, acts_for: Iterable[str], requested: str | None) -> str:
    """The tenant a request runs as: the key's own, or ``requested`` (the tenant header)
    when the key may act for it. A key may always name its own tenant; any other is
    refused (403), never silently ignored: a caller that asked for the test tenant must
    not end up writing into a live one."""
    if requested is None or requested == own:
        return own
    tenant = parse_tenant(requested, field="X-Lastmile-Tenant")
    if any(matches(p, tenant) for p in acts_for):
        return tenant
    raise Forbidden("tenant_not_allowed",
                    f"this key belongs to tenant {own} and may not act for {tenant} "
                    f"(header X-Lastmile-Tenant)", field="X-Lastmile-Tenant")


def region_id_in(tenant: str, base: str) -> str:
    """A region id for ``tenant`` from ``base``: region ids are unique across the deployment
    (they key partitions, leases and event subjects), so outside the default tenant the id
    carries the tenant, ``reg_demo_doortest_probe``."""
    if tenant == DEFAULT_TENANT:
        return base
    return f"{base}_{tenant.replace(':', '_')}"[:64]


@dataclass(frozen=True, slots=True, kw_only=True)
class Party:
    """Who takes part in an interaction, as far as the guardrail is concerned."""

    what: str  # "consumer", "merchant", "courier", "order"
    id: str
    tenant: str


def same_world(*parties: Party) -> None:
    """Parties of one interaction (a consumer ordering from a merchant, a courier offered an
    order) must share a tenant: test and live parties never meet (seed 003's guardrails).
    Storage isolation already hides other tenants' rows; this is the second wall."""
    tenants = {p.tenant for p in parties}
    if len(tenants) > 1:
        named = ", ".join(f"{p.what} {p.id} ({p.tenant})" for p in parties)
        raise Forbidden("cross_tenant", f"parties of different tenants may not meet: {named}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Tenant:
    """A tenant of the deployment. ``config`` holds what differs per tenant (fees, dispatch
    policy, currency, branding, party rules): the stored form of a
    ``core.tenant_config.TenantConfig``."""

    id: str
    name: str
    kind: TenantKind
    config: dict[str, object]
    created_at: float
    version: int = 0

    @property
    def is_test(self) -> bool:
        return self.kind is TenantKind.TEST


_TEST_L0 = frozenset({"doortest", "test"})
_TEST_L1 = frozenset({"sandbox", "probe", "test"})


def default_kind(tenant: str) -> TenantKind:
    """The kind a tenant gets when created without one: test for a ``doortest:*`` or
    ``test:*`` tenant and for sub-classes ``sandbox``, ``probe`` and ``test``; else live."""
    l0, l1 = tenant.split(":", 1)
    return TenantKind.TEST if l0 in _TEST_L0 or l1 in _TEST_L1 else TenantKind.LIVE
