"""Courier pay (pure): a policy, a pipeline of small functions, a statement per shift."""

from lastmile.core.pay.pipeline import (
    COMPONENTS,
    ORDER_PIPELINE,
    DeliveredOrder,
    PayLine,
    PayStatement,
    ShiftWork,
    guarantee_for,
    minute_of,
    order_lines,
    statement,
)
from lastmile.core.pay.policy import (
    DEFAULT_POLICY,
    BoostWindow,
    PayPolicy,
    TimeWindow,
    policy_from_mapping,
)

__all__ = [
    "COMPONENTS",
    "DEFAULT_POLICY",
    "ORDER_PIPELINE",
    "BoostWindow",
    "DeliveredOrder",
    "PayLine",
    "PayPolicy",
    "PayStatement",
    "ShiftWork",
    "TimeWindow",
    "guarantee_for",
    "minute_of",
    "order_lines",
    "policy_from_mapping",
    "statement",
]
