"""Live (unnamed) subscribers of a bus, by event type or ``*``: the one rule both buses keep.

A live subscriber holds no position (a WebSocket hub serves connections that come and go),
so an event it fails on is logged and counted in ``failures``, never retried or raised:
a raising feed must not fail a courier's ping, the relay or the NATS loop, and every other
subscriber still gets the event.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable

from lastmile.app.events import Event, filter_types
from lastmile.app.tenancy import acting_for

Handler = Callable[[Event], None]
log = logging.getLogger(__name__)


class LiveHandlers:
    def __init__(self) -> None:
        self._by_type: dict[str, list[Handler]] = defaultdict(list)
        self._lock = threading.Lock()
        self.failures = 0

    def add(self, event_type: str, handler: Handler) -> Callable[[], None]:
        """Subscribe; returns the function that unsubscribes (idempotent)."""
        with self._lock:
            self._by_type[event_type].append(handler)

        def remove() -> None:
            with self._lock:
                if handler in self._by_type[event_type]:
                    self._by_type[event_type].remove(handler)

        return remove

    def add_all(self, spec: str, handler: Handler) -> Callable[[], None]:
        """Subscribe to the types of a ``type_filter`` string (each, or ``*``)."""
        types = filter_types(spec)
        removes = [self.add(t, handler) for t in (sorted(types) if types else [spec])]

        def remove() -> None:
            for r in removes:
                r()

        return remove

    def empty(self) -> bool:
        with self._lock:
            return not any(self._by_type.values())

    def deliver(self, event: Event) -> None:
        """Hand ``event`` to every live subscriber of its type and of ``*``; never raises."""
        with self._lock:
            handlers = list(self._by_type.get(event.type, ())) + list(self._by_type.get("*", ()))
        for handler in handlers:
            try:
                with acting_for(event):
                    handler(event)
            except Exception:  # a live feed has no retry: logged and counted, the others go on
                self.failures += 1
                log.exception("live subscriber %r failed on %s %s", handler, event.type,
                              event.event_id)
