"""The composition root: the one place that wires adapters to the use cases."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from sqlalchemy.engine import Engine

from lastmile.adapters.breakers import BreakerChannel, Breakers, BreakerTransport
from lastmile.adapters.bus.jetstream import EventLogUnavailable, JetStreamBus
from lastmile.adapters.bus.jetstream_relay import JetStreamRelay
from lastmile.adapters.bus.jetstream_wire import JetStreamConfig
from lastmile.adapters.bus.memory import InProcessBus
from lastmile.adapters.bus.outbox import IdempotentHandler, Relay, RelayPolicy
from lastmile.adapters.clock import SystemClock, UuidIds
from lastmile.adapters.db.engine import make_engine, migrate, sqlite_url
from lastmile.adapters.db.uow import SqlUnitOfWorkFactory
from lastmile.adapters.dispatch_worker import DispatchWorker
from lastmile.adapters.eta_models import FileModelRegistry
from lastmile.adapters.live.memory import MemoryLiveStore
from lastmile.adapters.loop import LoopWorker
from lastmile.adapters.notify.channels import LogChannel
from lastmile.adapters.outages import redis_client
from lastmile.adapters.payments.builtin import BuiltinProcessor
from lastmile.adapters.region_leases import LeaseKeeper, new_worker_id
from lastmile.adapters.secret_key import signing_key
from lastmile.adapters.webhooks.http import HttpTransport
from lastmile.adapters.webhooks.worker import DriveWorkers, install_drive
from lastmile.app import ledger, payments, testkit_accept
from lastmile.app.context import Services
from lastmile.app.dead_letters import subscriber_states
from lastmile.app.events import Event
from lastmile.app.housekeeping import run_housekeeping
from lastmile.app.idempotency import IdempotencyCache
from lastmile.app.live import LiveStore
from lastmile.app.ports import Clock, DeadLetter, IdSource, PaymentProcessor, UnitOfWork
from lastmile.app.sandbox import require_live_money
from lastmile.app.tracking import MemoryTrackStates, Tracking, TrackStates
from lastmile.core.errors import InvalidInput
from lastmile.core.pay import DEFAULT_POLICY, PayPolicy, policy_from_mapping
from lastmile.profiles import check_profile, pool_size
from lastmile.settings import Settings

HOUSEKEEPING_TTLS = 3  # the housekeeping lease outlives two missed runs of its holder


@dataclass(slots=True, kw_only=True)
class Container:
    settings: Settings
    engine: Engine
    services: Services
    bus: InProcessBus | JetStreamBus  # JetStream when settings.nats_url is set
    live: LiveStore
    tracking: Tracking
    relay: LoopWorker | None = None
    outbox_relay: Relay | JetStreamRelay | None = None  # its stats (ops API reads)
    dispatch_interval_s: float | None = None  # None: no dispatcher thread in this process
    dispatcher: DispatchWorker | None = None
    extras: dict[str, object] = field(default_factory=dict)
    worker_id: str = field(default_factory=new_worker_id)  # owner name on leases
    breakers: Breakers = field(default_factory=Breakers)  # one per outside party (ops API reads)

    def start(self) -> None:
        # Subscribe before the relay publishes anything.
        transport = BreakerTransport(
            HttpTransport(allow_private_networks=self.settings.webhooks_allow_private),
            self.breakers)
        channels = {"log": BreakerChannel("log", LogChannel(), self.breakers)}
        install_drive(self, transport=transport, channels=channels).start()
        install_testkit(self)
        install_ledger(self)
        install_payments(self)
        if self.relay is None:
            lease = self.settings.relay_lease_s
            policy = RelayPolicy() if lease is None else RelayPolicy(lease_s=lease)
            if isinstance(self.bus, JetStreamBus):
                self.bus.start_consumers(self.services, policy)
                self.outbox_relay = self.outbox_relay or JetStreamRelay(self.services, self.bus)
            else:
                self.outbox_relay = self.outbox_relay or Relay(self.services, self.bus,
                                                               policy=policy)
            self.relay = self.outbox_relay.worker(self.settings.relay_interval_s)
            self.relay.start()
        if "housekeeping" not in self.extras:
            services, live = self.services, self.live
            owner, every = self.worker_id, self.settings.housekeeping_interval_s

            def housekeeping() -> None:  # one process at a time: app/housekeeping.py
                run_housekeeping(services, live, owner=owner, ttl_s=HOUSEKEEPING_TTLS * every)

            worker = LoopWorker("housekeeping", housekeeping,
                                self.settings.housekeeping_interval_s)
            worker.start()
            self.extras["housekeeping"] = worker
        if self.dispatch_interval_s is not None and self.dispatcher is None:
            keeper = LeaseKeeper(self.services, worker_id=self.worker_id)  # embedded: all regions
            self.dispatcher = DispatchWorker(self.services, self.live,
                                             interval_s=self.dispatch_interval_s, leases=keeper)
            self.dispatcher.start()

    def close(self) -> None:
        drive = self.extras.get("drive")
        if isinstance(drive, DriveWorkers):
            drive.stop()
        housekeeping = self.extras.pop("housekeeping", None)
        if isinstance(housekeeping, LoopWorker):
            housekeeping.stop()
        if self.dispatcher is not None:
            self.dispatcher.stop()
            self.dispatcher = None
        if self.relay is not None:
            self.relay.stop()
            self.relay = None
        if isinstance(self.bus, JetStreamBus):
            self.bus.close()
        self.engine.dispose()

    @property
    def requeue(self) -> Callable[[DeadLetter], None] | None:
        """How a dead-letter replay reaches its subscriber on a durable log (None: the
        relay's own queue, in the database)."""
        return self.bus.requeue if isinstance(self.bus, JetStreamBus) else None

    def event_lag(self) -> dict[str, int]:
        """Per durable subscriber, events it has not acknowledged yet (/metrics reads the same
        through ``adapters.telemetry.metrics.EventLagCollector``)."""
        if isinstance(self.bus, JetStreamBus):
            return self.bus.lag()
        return {s.name: s.pending for s in subscriber_states(self.services)}

    def event_log_report(self) -> dict[str, object]:
        """JetStream's per-consumer lag and this process's consumer counts (ops API)."""
        if not isinstance(self.bus, JetStreamBus):
            return {}
        try:
            lag: dict[str, int] | None = self.bus.lag()
        except EventLogUnavailable:
            lag = None
        return {"lag": lag, "consumers": self.bus.consumer_stats()}


def install_testkit(container: Container) -> None:
    """Subscribe the test couriers' auto-accept (``app.testkit_accept``) once."""
    if "testkit" in container.extras:
        return
    services = container.services

    def auto_accept(event: Event) -> None:
        testkit_accept.on_offer_made(services, event)

    container.bus.subscribe(testkit_accept.EVENT_TYPE, auto_accept,
                            durable=testkit_accept.SUBSCRIBER)
    container.extras["testkit"] = auto_accept


def install_ledger(container: Container) -> None:
    """Subscribe the ledger's poster (``app.ledger.on_event``) once, as a durable
    subscriber whose postings commit with its inbox mark."""
    if "ledger" in container.extras:
        return
    services = container.services

    def post_in(event: Event, uow: UnitOfWork) -> None:
        ledger.on_event(event, uow, services)

    handler = IdempotentHandler(services, ledger.SUBSCRIBER, post_in)
    # Only the types it posts: the relay queues it nothing else (before, on '*', every
    # event of the platform was queued, claimed and settled for it, to be ignored).
    container.bus.subscribe(ledger.POSTING_EVENTS, handler, durable=ledger.SUBSCRIBER)
    container.extras["ledger"] = handler
def install_payments(container: Container) -> None:
    """Capture on delivery and void on cancellation (``app.payments.on_order_event``),
    as durable subscribers, once."""
    if "payments" in container.extras:
        return
    services = container.services

    def step(event: Event) -> None:
        payments.on_order_event(services, event)

    for event_type, name in (payments.ON_DELIVERED, payments.ON_CANCELLED,
                             payments.ON_REFUND_DECIDED):
        container.bus.subscribe(event_type, step, durable=name)
    container.extras["payments"] = step


def build(settings: Settings, *, clock: Clock | None = None, ids: IdSource | None = None,
          rng: random.Random | None = None, run_migrations: bool = True,
          dispatch_interval_s: float | None = None) -> Container:
    check_profile(settings)  # the scale profile never falls back to SQLite or memory
    if settings.payments == "stripe" and not settings.stripe_api_key:
        raise ValueError("LASTMILE_PAYMENTS=stripe needs LASTMILE_STRIPE_API_KEY")
    url = settings.database_url or sqlite_url(settings.data_dir)
    engine = make_engine(url, pool_size=pool_size(settings))
    if run_migrations:
        migrate(engine)
    live, states = _live_state(settings)
    services = Services(
        uow=SqlUnitOfWorkFactory(engine), clock=clock or SystemClock(), ids=ids or UuidIds(),
        rng=rng or random.SystemRandom(), signing_key=signing_key(settings),
        webhooks_allow_private=settings.webhooks_allow_private,
        idempotency_cache=_idempotency_cache(settings),
        pay=pay_policy(settings),
        live=live,  # surge rounds count couriers by their live position (app.surge)
        eta_models=None if settings.eta_models_dir is None
        else FileModelRegistry(settings.eta_models_dir),
    )
    services = _with_payments(services, settings)
    bus = _bus(settings)
    tracking = Tracking(services=services, live=live, states=states, publisher=bus)
    return Container(settings=settings, engine=engine, services=services, bus=bus, live=live,
                     tracking=tracking, dispatch_interval_s=dispatch_interval_s,
                     breakers=Breakers(fail_max=settings.breaker_fail_max,
                                       reset_s=settings.breaker_reset_s))


def pay_policy(settings: Settings) -> PayPolicy:
    """The deployment's courier pay: ``DEFAULT_POLICY`` with LASTMILE_PAY_POLICY's keys."""
    if not settings.pay_policy:
        return DEFAULT_POLICY
    try:
        raw = json.loads(settings.pay_policy)
    except json.JSONDecodeError as exc:
        raise InvalidInput("invalid_pay_policy", f"LASTMILE_PAY_POLICY must be a JSON object "
                           f"({exc.msg})", field="LASTMILE_PAY_POLICY") from exc
    if not isinstance(raw, dict):
        raise InvalidInput("invalid_pay_policy", "LASTMILE_PAY_POLICY must be a JSON object "
                           f"(got {type(raw).__name__})", field="LASTMILE_PAY_POLICY")
    return policy_from_mapping(raw, base=DEFAULT_POLICY)
def _with_payments(services: Services, settings: Settings) -> Services:
    """The built-in processor (always: test tenants' and the embedded default) and, with
    LASTMILE_PAYMENTS=stripe, Stripe for live tenants (docs/payments.md)."""
    builtin = BuiltinProcessor(uow=services.uow, now=services.clock.now)
    live: PaymentProcessor = builtin
    if settings.payments == "stripe":
        from lastmile.adapters.payments.stripe_processor import StripeProcessor

        assert settings.stripe_api_key is not None  # build checked it first
        live = StripeProcessor(api_key=settings.stripe_api_key,
                               api_base=settings.stripe_api_base,
                               guard=lambda what: require_live_money(services, what=what))
    notices = None
    if settings.stripe_webhook_secret:
        from lastmile.adapters.payments.stripe_processor import StripeWebhooks

        notices = StripeWebhooks(secret=settings.stripe_webhook_secret)
    return replace(services, payments=live, sandbox_payments=builtin, payment_notices=notices)


def _bus(settings: Settings) -> InProcessBus | JetStreamBus:
    """The event bus: in this process, or NATS JetStream as the durable log (scale-out)."""
    if settings.nats_url is None:
        return InProcessBus()
    return JetStreamBus(JetStreamConfig(url=settings.nats_url, stream=settings.nats_stream,
                                        prefix=settings.nats_prefix))


def _live_state(settings: Settings) -> tuple[LiveStore, TrackStates]:
    """Live positions and per-shift tracking state: in this process, or in Redis when
    several API processes share them (scale-out)."""
    if settings.redis_url is None:
        return MemoryLiveStore(), MemoryTrackStates()
    from lastmile.adapters.live.redis_store import RedisLiveStore
    from lastmile.adapters.live.track_states import RedisTrackStates

    client = redis_client(settings.redis_url)
    return (RedisLiveStore(client, prefix=settings.redis_prefix),
            RedisTrackStates(client, prefix=settings.redis_prefix))


def _idempotency_cache(settings: Settings) -> IdempotencyCache:
    """In Redis when it is configured (the processes that share it see one another's
    in-flight requests), else in this process (docs/scaling.md, idempotency)."""
    if settings.redis_url is None:
        from lastmile.adapters.idempotency.memory import MemoryIdempotencyCache

        return MemoryIdempotencyCache()
    from lastmile.adapters.idempotency.redis_cache import RedisIdempotencyCache

    return RedisIdempotencyCache.from_url(settings.redis_url, prefix=settings.redis_prefix)
