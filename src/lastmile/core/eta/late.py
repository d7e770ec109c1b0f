"""The one definition of "late", for consumers, businesses (Drive) and ops alike.

An order is late when it is delivered (or, still open, when the clock is) after the end of
the window it was promised: the quoted ETA's high end (the 80% interval's p90 the consumer
saw), or, for a Drive delivery with a drop-off window, that window's end. Arriving after
the quoted point but inside the window is on time: the window is the promise.
"""

from __future__ import annotations


def promised_end(eta_high_at: float, dropoff_window_end_at: float | None = None) -> float:
    """Epoch seconds of the promise's end: the drop-off window's end when the business set
    one, else the quoted window's high end."""
    return eta_high_at if dropoff_window_end_at is None else dropoff_window_end_at


def late_by_s(at: float, promised_end_at: float) -> float:
    """Seconds past the promise at ``at`` (0 when on time)."""
    return max(0.0, at - promised_end_at)


def is_late(at: float, promised_end_at: float, *, grace_s: float = 0.0) -> bool:
    """Whether ``at`` (a delivery time, or now for an open order) is past the promise by
    more than ``grace_s`` seconds; exactly at the end is on time."""
    return at - promised_end_at > grace_s
