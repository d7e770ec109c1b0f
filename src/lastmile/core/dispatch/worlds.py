"""Tenants in a dispatch round: test and live parties never meet (seed 003's guardrail).

Every order, courier and merchant of a snapshot names its tenant (data, not a global: the
shell stamps the tenant each row was read as), and the snapshot names the tenant it was
loaded for. A round never pairs an order with a courier of another tenant:

- ``split_by_tenant``: a snapshot whose parties all share its tenant is one world (the live
  case: a region belongs to one tenant); a snapshot mixing tenants becomes one snapshot per
  tenant, each planned on its own (``plan_round``), so every tenant is still served;
- ``check_plan``: the second wall, after planning: every assignment, update and
  prepositioning must name parties of one tenant, else ``Forbidden("cross_tenant")``
  (``core.tenancy.same_world``); a bug in the engine is refused, never sent as offers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import replace

from lastmile.core.dispatch.model import (
    CommittedAssignment,
    CourierState,
    DispatchPlan,
    Merchant,
    OpenOrder,
    Snapshot,
)
from lastmile.core.tenancy import Party, same_world


def _committed_tenant(c: CommittedAssignment, couriers: dict[str, CourierState],
                      fallback: str) -> str:
    """A held bundle belongs with its courier (or, courier unknown, its first order)."""
    courier = couriers.get(c.courier_id)
    if courier is not None:
        return courier.tenant
    return c.orders[0].tenant if c.orders else fallback


def tenants_in(snapshot: Snapshot) -> frozenset[str]:
    """Every tenant named by a party of ``snapshot`` (orders, couriers, held bundles and
    merchants: prepositioning sends a courier towards a merchant, so a merchant of another
    tenant must split the snapshot too)."""
    return frozenset(
        [o.tenant for o in snapshot.orders] + [c.tenant for c in snapshot.couriers]
        + [o.tenant for c in snapshot.committed for o in c.orders]
        + [m.tenant for m in snapshot.merchants])


def split_by_tenant(snapshot: Snapshot) -> tuple[Snapshot, ...]:
    """One snapshot per tenant, sorted by tenant; ``(snapshot,)`` itself when all its parties
    are of its own tenant. Merchants without a party of their tenant are dropped with it."""
    tenants = tenants_in(snapshot)
    if tenants <= {snapshot.tenant}:
        return (snapshot,)
    couriers = {c.courier_id: c for c in snapshot.couriers}
    orders: defaultdict[str, list[OpenOrder]] = defaultdict(list)
    riders: defaultdict[str, list[CourierState]] = defaultdict(list)
    held: defaultdict[str, list[CommittedAssignment]] = defaultdict(list)
    merchants: defaultdict[str, list[Merchant]] = defaultdict(list)
    for o in snapshot.orders:
        orders[o.tenant].append(o)
    for c in snapshot.couriers:
        riders[c.tenant].append(c)
    for a in snapshot.committed:
        held[_committed_tenant(a, couriers, snapshot.tenant)].append(a)
    for m in snapshot.merchants:
        merchants[m.tenant].append(m)
    return tuple(
        replace(snapshot, tenant=t, orders=tuple(orders[t]), couriers=tuple(riders[t]),
                committed=tuple(held[t]), merchants=tuple(merchants[t]))
        for t in sorted(tenants))


def merge_plans(plans: Iterable[DispatchPlan]) -> DispatchPlan:
    """The plans of disjoint worlds as one plan (in the order given)."""
    plans = tuple(plans)
    return DispatchPlan(
        assignments=tuple(a for p in plans for a in p.assignments),
        reassignments=tuple(r for p in plans for r in p.reassignments),
        prepositions=tuple(m for p in plans for m in p.prepositions))


def check_plan(snapshot: Snapshot, plan: DispatchPlan) -> None:
    """Refuse (``Forbidden("cross_tenant")``) a plan pairing parties of different tenants.

    An order or courier the snapshot does not hold counts as of the snapshot's tenant; a
    merchant unknown to the snapshot is not checked (prepositioning reads only merchants).
    """
    default = snapshot.tenant
    if tenants_in(snapshot) <= {default}:
        # Every party (and every id the snapshot does not hold) is of the snapshot's
        # tenant: no pair can cross tenants, and a city-scale round skips the lookups.
        return
    couriers = {c.courier_id: c.tenant for c in snapshot.couriers}
    orders = {o.order_id: o.tenant for o in snapshot.orders}
    orders.update({o.order_id: o.tenant for c in snapshot.committed for o in c.orders})
    merchants = {m.merchant_id: m.tenant for m in snapshot.merchants}

    def courier(cid: str) -> Party:
        return Party(what="courier", id=cid, tenant=couriers.get(cid, default))

    def order(oid: str) -> Party:
        return Party(what="order", id=oid, tenant=orders.get(oid, default))

    pairs = [(a.courier_id, a.order_ids) for a in plan.assignments]
    pairs += [(r.courier_id, r.order_ids) for r in plan.reassignments]
    for courier_id, order_ids in pairs:
        same_world(courier(courier_id), *(order(i) for i in order_ids))
    for p in plan.prepositions:
        if p.merchant_id in merchants:
            same_world(courier(p.courier_id),
                       Party(what="merchant", id=p.merchant_id, tenant=merchants[p.merchant_id]))
