"""Background work for every tenant: find the work across tenants, do each piece as its own.

A loop of the platform (dispatch, housekeeping, the senders) serves the whole deployment,
not the tenant its thread happens to start in. It reads across tenants in the platform
scope (``tenancy.platform_scope``) only to find the work and whose it is, then does each
piece inside ``acting_as`` its tenant, so the storage layer scopes every statement of it
and the events it records carry that tenant (docs/tenants-workers.md).

Work lives in regions (orders, offers, couriers, Drive deliveries all belong to one), and
a region belongs to one tenant: the tenants "at work" are those with a region.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol, TypeVar

from lastmile.app.context import Services
from lastmile.app.tenancy import acting_as, platform_scope
from lastmile.core.model import Region

log = logging.getLogger(__name__)
T = TypeVar("T")


def regions_of_every_tenant(services: Services) -> list[tuple[str, Region]]:
    """Every region of the deployment with its tenant, ``(tenant, region)`` by region id."""
    with platform_scope(), services.uow(read_only=True) as uow:
        return uow.regions.list_owned()


def region_owners(services: Services) -> dict[str, str]:
    """Region id -> its tenant, for every region of the deployment."""
    return {region.id: tenant for tenant, region in regions_of_every_tenant(services)}


def tenants_at_work(services: Services) -> list[str]:
    """The tenants with at least one region, sorted."""
    return sorted({tenant for tenant, _ in regions_of_every_tenant(services)})


def for_each_tenant(services: Services, step: Callable[[], T]) -> dict[str, T]:
    """``step()`` once per tenant at work, as that tenant; its results by tenant.

    One tenant's failure does not starve the others: every tenant's step runs, each failure
    is logged with its tenant, and the first is raised once all have run (the caller's loop
    counts it and tries again next tick).
    """
    results: dict[str, T] = {}
    failed: BaseException | None = None
    for tenant in tenants_at_work(services):
        try:
            with acting_as(tenant):
                results[tenant] = step()
        except Exception as exc:
            log.warning("background step %r failed for tenant %s: %s: %s",
                        getattr(step, "__name__", step), tenant, type(exc).__name__, exc)
            failed = failed or exc
    if failed is not None:
        raise failed
    return results


class _OfATenant(Protocol):
    @property
    def tenant(self) -> str: ...


W = TypeVar("W", bound=_OfATenant)


def each_as_its_tenant(items: Iterable[W]) -> Iterator[W]:
    """Yield each item with the current tenant set to the item's own (``acting_as``), for
    the body of the caller's loop; the caller's tenant is back after each item, also when
    the loop breaks or raises (the generator is closed as the loop ends).

    For work claimed across tenants: ``for message in each_as_its_tenant(due): ...``.
    """
    for item in items:
        with acting_as(item.tenant):
            yield item
