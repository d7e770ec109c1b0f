"""Admission under overload: which priority classes a process still serves.

The seeds' Super Bowl (x50) and vaccine-news surges were survived by priority
queuing and traffic shaping: when the platform is saturated, browsing (menus,
nearby merchants, quotes, lists) waits, while placing an order and moving one
along (courier pings, pickups, merchant confirmations) goes through. This
module holds that rule as a pure function of the process's in-flight counters
and a policy; the ASGI middleware (``api.overload``) only counts and asks.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass


class Priority(enum.StrEnum):
    """A route's class, most important first."""

    CRITICAL = "critical"  # order placement and lifecycle moves, pings, ops actions
    NORMAL = "normal"  # single-resource reads, settings changes
    BROWSE = "browse"  # nearby merchants, menus, quotes, lists, dashboard reads


PRIORITIES = (Priority.CRITICAL, Priority.NORMAL, Priority.BROWSE)
SHED_OVERLOAD = "overload"  # the ``reason`` label of a request shed by admission control
SHED_RATE_LIMIT = "rate_limit"  # ... and of one refused by its client's rate limit


@dataclass(frozen=True, slots=True, kw_only=True)
class AdmissionPolicy:
    """In-flight ceilings per class, counted over *all* requests in flight in the process.

    A class is admitted while the total in flight is below its ceiling, so
    ``browse_max < normal_max < critical_max`` sheds browse first, then
    normal; critical work runs until the hard ceiling, which bounds the
    process's queue (and so its memory and latency) whatever the surge.
    ``retry_after_s`` is what a shed client is told to wait: longer for
    browse, whose users can wait, than for critical work.
    """

    browse_max: int = 32
    normal_max: int = 64
    critical_max: int = 256
    retry_after_critical_s: int = 1
    retry_after_normal_s: int = 2
    retry_after_browse_s: int = 5

    def __post_init__(self) -> None:
        if not 1 <= self.browse_max <= self.normal_max <= self.critical_max:
            raise ValueError("in-flight ceilings must satisfy 1 <= browse_max <= normal_max <= "
                             f"critical_max (got {self.browse_max}, {self.normal_max}, "
                             f"{self.critical_max})")
        waits = (self.retry_after_critical_s, self.retry_after_normal_s, self.retry_after_browse_s)
        if min(waits) < 1:
            raise ValueError(f"retry_after_*_s must be >= 1 s (got {waits})")

    def ceiling(self, priority: Priority) -> int:
        return {Priority.CRITICAL: self.critical_max, Priority.NORMAL: self.normal_max,
                Priority.BROWSE: self.browse_max}[priority]

    def retry_after(self, priority: Priority) -> int:
        return {Priority.CRITICAL: self.retry_after_critical_s,
                Priority.NORMAL: self.retry_after_normal_s,
                Priority.BROWSE: self.retry_after_browse_s}[priority]


@dataclass(frozen=True, slots=True, kw_only=True)
class Admission:
    admitted: bool
    priority: Priority
    in_flight: int  # total in flight when the decision was taken
    ceiling: int
    retry_after_s: int = 0  # 0 when admitted


def admit(policy: AdmissionPolicy, in_flight: Mapping[Priority, int],
          priority: Priority) -> Admission:
    """Admit a new request of ``priority`` given the requests in flight per class.

    Rule: admitted iff the total in flight (all classes, not counting this
    request) is below the class's ceiling. Because the ceilings are ordered,
    whenever a class is shed every less important class is shed too, and a
    class admitted means every more important class would be. Negative
    counters (a bug elsewhere) count as zero rather than opening the gate wider.
    """
    total = sum(max(0, n) for n in in_flight.values())
    ceiling = policy.ceiling(priority)
    if total < ceiling:
        return Admission(admitted=True, priority=priority, in_flight=total, ceiling=ceiling)
    return Admission(admitted=False, priority=priority, in_flight=total, ceiling=ceiling,
                     retry_after_s=policy.retry_after(priority))


def shed_classes(policy: AdmissionPolicy, in_flight: Mapping[Priority, int]) -> tuple[Priority, ...]:
    """The classes a new request would be refused for right now (for the ops view)."""
    return tuple(p for p in PRIORITIES if not admit(policy, in_flight, p).admitted)
