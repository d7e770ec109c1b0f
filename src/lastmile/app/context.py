"""What every use case receives: the unit of work factory, clock and id source."""

from __future__ import annotations

import random
import secrets  # the default signing key: never from the injectable, possibly seeded, rng
from dataclasses import dataclass, field
from typing import Any

from lastmile.app.events import Event, event_from_transition
from lastmile.app.experiment_cache import ExperimentCache
from lastmile.app.idempotency import IdempotencyCache
from lastmile.app.key_cache import KeyCache
from lastmile.app.live import LiveStore
from lastmile.app.ports import (
    Clock,
    EtaModelRegistry,
    IdSource,
    PaymentNotices,
    PaymentProcessor,
    UnitOfWork,
    UnitOfWorkFactory,
)
from lastmile.app.surge_board import SurgeBoard
from lastmile.app.tenant_cache import TenantCache
from lastmile.core.eta.queue import DEFAULT_QUEUE, QueueParams
from lastmile.core.lifecycle import Transition
from lastmile.core.pay import DEFAULT_POLICY, PayPolicy
from lastmile.core.pricing import PricingPolicy


@dataclass(frozen=True, slots=True, kw_only=True)
class Services:
    """The injected edges: swap the clock and ids for the simulator or tests."""

    uow: UnitOfWorkFactory
    clock: Clock
    ids: IdSource
    rng: random.Random = field(default_factory=random.SystemRandom)  # PINs; seeded in sim/tests
    pricing: PricingPolicy = field(default_factory=PricingPolicy)
    # ``heuristic-3``'s constants (core.eta.queue; served when the policy's ``eta_queue``).
    queue_params: QueueParams = DEFAULT_QUEUE
    pay: PayPolicy = DEFAULT_POLICY  # courier pay (app.pay); LASTMILE_PAY_POLICY overrides
    offer_ttl_s: int = 60
    # LASTMILE_WEBHOOKS_ALLOW_PRIVATE: webhook URLs may name loopback and private addresses.
    webhooks_allow_private: bool = False
    # HMAC key for page and stream tokens. Bootstrap passes the server's persisted key; the
    # default (a fresh key per process) suits tests and the simulator. Never in a repr or log.
    signing_key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    # Replay cache and in-flight markers before the database's idempotency records
    # (app.idempotency): bootstrap gives memory for one process, Redis for several;
    # None (tests, simulator): the database alone, which answers the same.
    idempotency_cache: IdempotencyCache | None = None
    # Valid API keys seen lately (app.key_cache): a revocation reaches other processes
    # within its TTL, this one at once.
    key_cache: KeyCache[Any] = field(default_factory=KeyCache, repr=False, compare=False)
    # Tenants read lately (app.tenants.current): kind and config for guardrails and policy.
    tenant_cache: TenantCache = field(default_factory=TenantCache, repr=False, compare=False)
    # The payment processor (app.payments): bootstrap gives the built-in one unless
    # LASTMILE_PAYMENTS=stripe; ``sandbox_payments`` serves test tenants whatever the
    # configuration (the built-in one). None (bare unit tests): no payment is taken.
    payments: PaymentProcessor | None = field(default=None, repr=False, compare=False)
    sandbox_payments: PaymentProcessor | None = field(default=None, repr=False, compare=False)
    # Stripe's signed webhooks (POST /v1/payments/stripe/webhook); None: not configured.
    payment_notices: PaymentNotices | None = field(default=None, repr=False, compare=False)
    # Surge per H3 cell between rounds (app.surge), and the live positions its rounds count
    # couriers by (None: the couriers' stored locations).
    surge: SurgeBoard = field(default_factory=SurgeBoard, repr=False, compare=False)
    live: LiveStore | None = field(default=None, repr=False, compare=False)
    # ETA model files (app.eta, adapters.eta_models): the served incumbent and a shadow
    # logged beside it. None: the pricing policy's heuristic alone (core.eta.engine).
    eta_models: EtaModelRegistry | None = field(default=None, repr=False, compare=False)
    # Running experiments read lately and exposures recorded (app.experiments).
    experiments: ExperimentCache = field(default_factory=ExperimentCache, repr=False,
                                         compare=False)


def record(uow: UnitOfWork, services: Services, event: Event) -> None:
    """Append to the history and to the outbox in the caller's transaction."""
    uow.events.append(event)
    uow.outbox.add(event)


def record_transition(uow: UnitOfWork, services: Services, region_id: str, t: Transition) -> Event:
    event = event_from_transition(services.ids.new("evt"), region_id, t)
    record(uow, services, event)
    return event


def new_event(
    services: Services,
    *,
    type: str,
    region_id: str,
    subject_id: str,
    actor_kind: str,
    actor_id: str,
    data: dict[str, object] | None = None,
) -> Event:
    return Event(
        event_id=services.ids.new("evt"),
        type=type,
        occurred_at=services.clock.now(),
        region_id=region_id,
        subject_id=subject_id,
        actor_kind=actor_kind,
        actor_id=actor_id,
        data=dict(data or {}),
    )
