"""Circuit breakers (pybreaker) around every outside dependency.

One breaker per webhook receiver host, per notification channel, and any
other dependency by name (``Breakers.call("payments", fn, ...)`` is the
wrapper the payment processor adapter uses). After ``fail_max`` consecutive
failures a breaker opens: calls fail fast with ``app.circuits.CircuitOpen``
(no connection, no timeout to wait out) until ``reset_s`` has passed; then one
trial call goes through (half-open) and closes it again on success. State
changes are logged and exported as ``lastmile_breaker_state{name}``.

What counts as a failure: an exception from the call, and for webhooks a 5xx
or 429 answer (the receiver is in trouble). A 4xx is the receiver refusing
this message, which says nothing about its health, so it does not count.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pybreaker

from lastmile.adapters.overload_metrics import BREAKER_STATE_VALUES, metrics
from lastmile.app.circuits import CircuitOpen
from lastmile.app.notifications import Channel
from lastmile.app.webhooks import WebhookTransport
from lastmile.core.delivery.notices import Notification

log = logging.getLogger("lastmile.breakers")
T = TypeVar("T")


class _Listener(pybreaker.CircuitBreakerListener):
    def state_change(self, cb: pybreaker.CircuitBreaker,
                     old_state: pybreaker.CircuitBreakerState | None,
                     new_state: pybreaker.CircuitBreakerState) -> None:
        name = cb.name or "?"
        old = old_state.name if old_state is not None else "none"
        level = logging.WARNING if new_state.name == "open" else logging.INFO
        log.log(level, "circuit breaker %s: %s -> %s", name, old, new_state.name)
        metrics().breaker_state.labels(name).set(BREAKER_STATE_VALUES[new_state.name])

    def failure(self, cb: pybreaker.CircuitBreaker, exc: BaseException) -> None:
        metrics().breaker_failures.labels(cb.name or "?").inc()


class Breakers:
    """The process's breakers, created on first use per name, all with one policy."""

    def __init__(self, *, fail_max: int = 5, reset_s: float = 30.0) -> None:
        if fail_max < 1 or reset_s <= 0:
            raise ValueError(f"breaker fail_max must be >= 1 and reset_s > 0 (got {fail_max}, "
                             f"{reset_s})")
        self.fail_max, self.reset_s = fail_max, reset_s
        self._breakers: dict[str, pybreaker.CircuitBreaker] = {}
        self._lock = threading.Lock()
        self._listener = _Listener()

    def get(self, name: str) -> pybreaker.CircuitBreaker:
        with self._lock:
            breaker = self._breakers.get(name)
            if breaker is None:
                # throw_new_error_on_trip=False: the call that trips the breaker was a real
                # attempt and reports its own error; only calls refused unmade are CircuitOpen.
                breaker = pybreaker.CircuitBreaker(
                    fail_max=self.fail_max, reset_timeout=self.reset_s, name=name,
                    listeners=[self._listener], throw_new_error_on_trip=False)
                self._breakers[name] = breaker
                metrics().breaker_state.labels(name).set(0)
            return breaker

    def call(self, name: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` through breaker ``name``; ``CircuitOpen`` while it is open."""
        breaker = self.get(name)
        try:
            return breaker.call(fn, *args, **kwargs)
        except pybreaker.CircuitBreakerError as exc:
            raise CircuitOpen(name, self._remaining_s(breaker)) from exc

    def _remaining_s(self, breaker: pybreaker.CircuitBreaker) -> float:
        opened_at = breaker._state_storage.opened_at  # pybreaker exposes no public getter
        if opened_at is None:
            return self.reset_s
        # pybreaker times the open state with the wall clock; the remainder must use the same.
        elapsed = (datetime.now(UTC) - opened_at).total_seconds()  # noqa: TID251
        return max(0.0, self.reset_s - elapsed)

    def snapshot(self) -> list[dict[str, object]]:
        with self._lock:
            breakers = sorted(self._breakers.items())
        return [{"name": name, "state": b.current_state, "failures": b.fail_counter,
                 "fail_max": b.fail_max, "reset_s": b.reset_timeout} for name, b in breakers]


class ReceiverFailed(Exception):
    """A webhook receiver answered with a status that counts against its breaker."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


def webhook_breaker_name(url: str) -> str:
    """One breaker per receiver host and port: one business's outage trips only its own."""
    parts = urlsplit(url)
    return f"webhook:{parts.hostname or '?'}:{parts.port or (443 if parts.scheme == 'https' else 80)}"


class BreakerTransport:
    """A ``WebhookTransport`` that posts through the receiver's breaker."""

    def __init__(self, inner: WebhookTransport, breakers: Breakers) -> None:
        self._inner, self._breakers = inner, breakers

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> int:
        def attempt() -> int:
            status = self._inner.post(url, body, headers, timeout_s)
            if status >= 500 or status == 429:
                raise ReceiverFailed(status)
            return status

        try:
            return self._breakers.call(webhook_breaker_name(url), attempt)
        except ReceiverFailed as exc:  # counted by the breaker; the sender records the status
            return exc.status


class BreakerChannel:
    """A notification ``Channel`` behind the breaker ``notify:<name>``."""

    def __init__(self, name: str, inner: Channel, breakers: Breakers) -> None:
        self._name, self._inner, self._breakers = f"notify:{name}", inner, breakers

    def send(self, notification: Notification) -> None:
        self._breakers.call(self._name, self._inner.send, notification)
