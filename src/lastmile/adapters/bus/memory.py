"""An in-process event bus: live subscriptions by event type (or ``*``, or several types) and
named durable ones."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from lastmile.adapters.bus.live import Handler, LiveHandlers
from lastmile.app.events import Event, matches, type_filter
from lastmile.app.tenancy import acting_for

log = logging.getLogger(__name__)
MAX_NAME_CHARS = 64  # the width of event_subscribers.name


class InProcessBus:
    """Two kinds of subscribers, as a durable log (JetStream) has them.

    - **Live** (``subscribe(type, handler)``): ``publish`` hands them the event on the
      publisher's thread. A failing one is logged and counted in ``live_failures``, never
      raised: a live feed keeps no position, so there is nothing to retry, and a raising
      feed must not fail the courier's ping or the relay. Every other one still gets it.
    - **Durable** (``subscribe(type, handler, durable=name)``): only the outbox relay calls
      them, through ``deliver(name, event)``, and an exception goes back to the relay, which
      retries with backoff and then parks the event for that subscriber alone
      (``adapters.bus.outbox``). One handler per name in a process.
    """

    def __init__(self) -> None:
        self._live = LiveHandlers()
        self._durable: dict[str, tuple[str, Handler]] = {}
        self._lock = threading.Lock()

    def subscribe(self, event_type: str | Iterable[str], handler: Handler, *,
                  durable: str | None = None) -> Callable[[], None]:
        spec = type_filter(event_type)
        if durable is None:
            return self._live.add_all(spec, handler)
        if not 0 < len(durable) <= MAX_NAME_CHARS:
            raise ValueError(f"a durable subscriber's name needs 1-{MAX_NAME_CHARS} characters "
                             f"(got {durable!r})")
        with self._lock:
            if durable in self._durable:
                raise ValueError(f"durable subscriber {durable!r} is already subscribed here")
            self._durable[durable] = (spec, handler)

        def unsubscribe() -> None:
            with self._lock:
                if self._durable.get(durable, (None, None))[1] is handler:
                    del self._durable[durable]

        return unsubscribe

    def publish(self, event: Event) -> None:
        """Hand ``event`` to every live subscriber of its type and of ``*``; never raises."""
        self._live.deliver(event)

    @property
    def live_failures(self) -> int:
        return self._live.failures

    def durable(self) -> dict[str, str]:
        """This process's durable subscribers: name -> their ``type_filter`` (``*``, a type,
        or several)."""
        with self._lock:
            return {name: event_type for name, (event_type, _) in self._durable.items()}

    def deliver(self, name: str, event: Event) -> None:
        """Call durable subscriber ``name`` (a no-op for a type it did not name); raises what it
        raises, and ``LookupError`` when no such subscriber runs in this process."""
        with self._lock:
            entry = self._durable.get(name)
        if entry is None:
            raise LookupError(f"no durable subscriber {name!r} in this process")
        spec, handler = entry
        if matches(spec, event.type):
            with acting_for(event):
                handler(event)
