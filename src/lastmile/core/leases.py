"""Leases with a fencing token: who owns a region (or a singleton job) and since when.

A lease is held by one owner until ``expires_at`` (epoch seconds); a new owner may take it
only once it has expired (or was released, which expires it at once). Every change of owner
increments ``token``; a renewal by the owner keeps it. A writer that stamps its writes with
its token, checked against the current one in the same transaction (the fence), can never
overwrite the work of the owner that followed it, however long it was paused (Kleppmann,
"How to do distributed locking", 2016).
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True, slots=True, kw_only=True)
class Lease:
    name: str  # a region id, or a singleton job such as "housekeeping"
    owner: str
    token: int
    expires_at: float
    acquired_at: float

    def __post_init__(self) -> None:
        if self.token < 1:
            raise ValueError(f"a lease token is >= 1 (got {self.token}) for {self.name}")

    def live(self, now: float) -> bool:
        return now < self.expires_at


def claim(current: Lease | None, *, name: str, owner: str, now: float,
          ttl_s: float) -> Lease | None:
    """The lease ``owner`` holds after asking for ``name`` at ``now``, or None if taken.

    Free (never held, expired or released): a new ownership with the next token. Already
    the owner's and live: renewed, same token. Live and someone else's: None.
    """
    if ttl_s <= 0:
        raise ValueError(f"a lease ttl is > 0 s (got {ttl_s})")
    if current is not None and current.live(now):
        if current.owner != owner:
            return None
        return replace(current, expires_at=now + ttl_s)
    token = current.token + 1 if current is not None else 1
    return Lease(name=name, owner=owner, token=token, expires_at=now + ttl_s, acquired_at=now)


def renewed(current: Lease | None, *, owner: str, token: int, now: float,
            ttl_s: float) -> Lease | None:
    """The renewed lease, or None when ``token`` is no longer the current ownership.

    A lease past its expiry that nobody took meanwhile is still the owner's to renew: the
    token is unchanged, so no other owner wrote in between.
    """
    if current is None or current.token != token or current.owner != owner:
        return None
    return replace(current, expires_at=now + ttl_s)


def fair_share(names: int, workers: int, rank: int = 0) -> int:
    """How many of ``names`` regions the worker at ``rank`` (its place among the ``workers``
    live workers, sorted by id) should hold: an even split, the remainder going one each to
    the first ranks (5 over 3: 2, 2, 1), so the shares always add up to ``names``."""
    if names <= 0:
        return 0
    workers = max(workers, 1)
    if not 0 <= rank < workers:
        raise ValueError(f"rank must be in [0, {workers}) (got {rank})")
    base, extra = divmod(names, workers)
    return base + (1 if rank < extra else 0)
