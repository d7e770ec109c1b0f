"""Domain errors with stable codes.

A message names the thing, the value received and what was expected, e.g.
``"quantity must be > 0 (got -3) for item itm_42"``. The API maps the classes
to HTTP statuses in one handler; nothing in ``core`` or ``app`` knows HTTP.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the domain raises on purpose."""

    code: str = "domain_error"

    def __init__(self, code: str, message: str, *, field: str | None = None, **extra: object):
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.extra = extra

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class InvalidInput(DomainError):
    """The input breaks a rule (422)."""


class NotFound(DomainError):
    """No such thing, or not visible to the caller (404)."""


class Conflict(DomainError):
    """The thing is in a state that refuses the move (409)."""


class Forbidden(DomainError):
    """The caller may not do this (403)."""


class Unauthorized(DomainError):
    """No or unknown credentials (401)."""


class DependencyUnavailable(DomainError):
    """A server the platform needs (the database, Redis, NATS) is unreachable or too slow:
    the request did not happen, or its outcome is unknown; retry after ``retry_after_s``
    (503). ``dependency`` names it: ``database``, ``redis`` or ``nats``."""

    def __init__(self, dependency: str, message: str, *, retry_after_s: int = 2):
        super().__init__("dependency_unavailable", message, dependency=dependency)
        self.dependency = dependency
        self.retry_after_s = retry_after_s


class PaymentDeclined(DomainError):
    """The payment processor refused the money (402 ``payment_declined``); ``reason``
    is the processor's decline code, e.g. ``card_declined`` or ``amount_too_large``."""

    def __init__(self, message: str, *, reason: str, processor_ref: str | None = None):
        super().__init__("payment_declined", message, reason=reason,
                         processor_ref=processor_ref)
        self.reason = reason
        self.processor_ref = processor_ref


class PaymentTimedOut(DependencyUnavailable):
    """The payment processor did not answer in time (503): the money may or may not
    have moved; retrying with the same idempotency key finds out without moving it twice."""

    def __init__(self, message: str, *, retry_after_s: int = 2):
        super().__init__("payment_processor", message, retry_after_s=retry_after_s)
