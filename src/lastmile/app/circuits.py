"""What the use cases know of circuit breakers: an outside party is known to be down.

The breakers themselves are adapters (``adapters.breakers``, pybreaker); a
sender that gets ``CircuitOpen`` made no attempt (the call failed fast, nothing
left the process), so it reschedules the work after ``retry_after_s`` without
spending one of the work's attempts: a receiver's outage must not push messages
to the dead letters faster than the receiver's own failures would.
"""

from __future__ import annotations


class CircuitOpen(Exception):
    """The breaker named ``name`` is open: no call was made."""

    def __init__(self, name: str, retry_after_s: float) -> None:
        super().__init__(f"circuit {name!r} is open; next trial in {retry_after_s:.1f} s")
        self.name = name
        self.retry_after_s = retry_after_s
