"""Dispatch engine (pure): snapshot + policy -> DispatchPlan.

See ``engine.plan_round`` for the steps and ``docs/dispatch.md`` for the story.
"""

from lastmile.core.dispatch.engine import RoundCosts, plan_round, round_costs
from lastmile.core.dispatch.model import (
    Assignment,
    Bundle,
    CommittedAssignment,
    CourierState,
    DispatchPlan,
    DispatchPolicy,
    Merchant,
    OpenOrder,
    PolicyKind,
    Preposition,
    Reassignment,
    Snapshot,
    Stop,
    TravelModel,
)
from lastmile.core.dispatch.worlds import check_plan, split_by_tenant

__all__ = [
    "Assignment",
    "Bundle",
    "CommittedAssignment",
    "CourierState",
    "DispatchPlan",
    "DispatchPolicy",
    "Merchant",
    "OpenOrder",
    "PolicyKind",
    "Preposition",
    "Reassignment",
    "RoundCosts",
    "Snapshot",
    "Stop",
    "TravelModel",
    "check_plan",
    "plan_round",
    "round_costs",
    "split_by_tenant",
]
