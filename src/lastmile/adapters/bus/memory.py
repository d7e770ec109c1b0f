"""An in-process event bus: typed subscriptions by event type (or ``*``)."""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable

from lastmile.app.events import Event

Handler = Callable[[Event], None]
log = logging.getLogger(__name__)


class InProcessBus:
    """Delivers each published event to every subscriber of its type and of ``*``.

    A failing handler raises to the publisher (the outbox relay), which leaves
    the event unsent and retries it: delivery is at least once, so handlers
    must be idempotent (see ``IdempotentHandler``).
    """

    def __init__(self) -> None:
        self._subs: dict[str, list[Handler]] = defaultdict(list)
        self._lock = threading.Lock()

    def subscribe(self, event_type: str, handler: Handler) -> Callable[[], None]:
        with self._lock:
            self._subs[event_type].append(handler)

        def unsubscribe() -> None:
            with self._lock:
                if handler in self._subs[event_type]:
                    self._subs[event_type].remove(handler)

        return unsubscribe

    def publish(self, event: Event) -> None:
        with self._lock:
            handlers = list(self._subs.get(event.type, ())) + list(self._subs.get("*", ()))
        for handler in handlers:
            handler(event)
