"""Ops over event delivery: the durable subscribers' backlogs and their dead letters.

A dead letter is an event one durable subscriber failed on ``max_attempts`` times in a row
(``adapters.bus.outbox``). Replaying it queues the event again for that subscriber only; the
relay delivers it with fresh attempts (and parks it again if it still fails). A replay is
idempotent: replaying a letter whose replay is queued or done changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lastmile.app.context import Services
from lastmile.app.ports import DeadLetter, SubscriberState
from lastmile.core.errors import InvalidInput, NotFound

MAX_LIST = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class Replay:
    dead_letter: DeadLetter
    queued: bool  # False: a replay was already queued or done; nothing new was queued


def list_dead_letters(services: Services, *, subscriber: str | None = None,
                      include_replayed: bool = False, limit: int = 100) -> list[DeadLetter]:
    """Parked events, oldest first; with ``include_replayed`` also the replayed ones."""
    if not 1 <= limit <= MAX_LIST:
        raise InvalidInput("invalid_limit", f"limit must be 1-{MAX_LIST} (got {limit})",
                           field="limit")
    with services.uow(read_only=True) as uow:
        return uow.event_deliveries.dead_letters(subscriber=subscriber,
                                                 include_replayed=include_replayed, limit=limit)


def replay_dead_letter(services: Services, dead_letter_id: str, *,
                       requeue: Callable[[DeadLetter], None] | None = None) -> Replay:
    """Queue the parked event again for its subscriber alone (idempotent, see module).

    ``requeue``: where the events live in a durable log (JetStream), it sends the letter
    back to its subscriber there instead of the relay's table; it runs before the replay
    is committed, so a failure leaves the letter parked, to be replayed again."""
    with services.uow() as uow:
        if uow.event_deliveries.dead_letter(dead_letter_id) is None:
            raise NotFound("dead_letter_not_found",
                           f"dead letter {dead_letter_id!r} does not exist")
        now = services.clock.now()
        if requeue is None:
            queued = uow.event_deliveries.replay(dead_letter_id, now)
        else:
            queued = uow.event_deliveries.mark_replayed(dead_letter_id, now)
        letter = uow.event_deliveries.dead_letter(dead_letter_id)
        if queued and requeue is not None and letter is not None:
            requeue(letter)
        uow.commit()
    assert letter is not None  # checked above in the same transaction
    return Replay(dead_letter=letter, queued=queued)


def subscriber_states(services: Services) -> list[SubscriberState]:
    """Every registered durable subscriber with its position, backlog and parked count."""
    with services.uow(read_only=True) as uow:
        return uow.event_deliveries.subscribers()
