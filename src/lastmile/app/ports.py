"""Ports: what the use cases need from the shell, as Protocols.

Adapters implement them (``adapters.db`` for SQL, ``tests.fakes`` for memory).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol

from lastmile.app.events import Event
from lastmile.app.ports_eta import EtaHistoryRepo
from lastmile.app.ports_experiments import ExperimentRepo
from lastmile.core.delivery.model import Delivery, DriveQuote
from lastmile.core.delivery.notices import Notification
from lastmile.core.eta.engine import EtaModel
from lastmile.core.geo import Point
from lastmile.core.leases import Lease
from lastmile.core.ledger.audit import PostingRow
from lastmile.core.ledger.entries import Posted, StatementLine
from lastmile.core.model import Consumer, Courier, Merchant, Region
from lastmile.core.money import Money
from lastmile.core.offers import Offer
from lastmile.core.orders import Order, OrderStatus
from lastmile.core.payments import Payment, ProcessorCall, ProcessorNotice, ProcessorResult
from lastmile.core.refunds import RefundCase, Status
from lastmile.core.sandbox import Capture
from lastmile.core.tenancy import DEFAULT_TENANT, Tenant
from lastmile.core.webhooks import Endpoint, Message


class Clock(Protocol):
    def now(self) -> float:
        """Epoch seconds, UTC."""
        ...


class IdSource(Protocol):
    def new(self, prefix: str) -> str: ...


class Publisher(Protocol):
    def publish(self, event: Event) -> None: ...


class EventBus(Publisher, Protocol):
    """Typed, versioned events to subscribers; the in-process bus and a durable log implement it.

    A ``durable`` subscriber has a name: it receives every recorded event once it has
    registered, with its own queue, retries and dead letters (JetStream's durable consumer).
    Without a name the subscription is live: events published while it listens, best effort.
    """

    def subscribe(self, event_type: str | Iterable[str], handler: Callable[[Event], None], *,
                  durable: str | None = None) -> Callable[[], None]:
        """Deliver events of ``event_type`` (one type, ``*`` for all, or several types: the
        handler sees only those, and a durable subscriber is queued only those,
        ``events.type_filter``); returns an unsubscribe function."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class IdempotencyRecord:
    scope: str
    key: str
    request_hash: str
    resource_id: str
    created_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKeyRecord:
    key_id: str
    key_hash: str = field(repr=False)  # a verifier of the key: kept out of reprs and logs
    role: str
    subject_id: str
    created_at: float
    revoked: bool = False
    tenant_id: str = DEFAULT_TENANT  # the tenant the key belongs to
    acts_for: tuple[str, ...] = ()  # tenant patterns it may also act for (tenant header)


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxEntry:
    seq: int
    event: Event


@dataclass(frozen=True, slots=True, kw_only=True)
class QueuedEvent:
    """An event waiting for one durable subscriber; ``attempts`` failed so far."""

    subscriber: str
    seq: int
    event: Event
    attempts: int = 0
    first_failed_at: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadLetter:
    """An event a subscriber failed ``attempts`` times in a row; parked until ops replay it.

    ``replayed_at`` is set while a replay is queued or done; parking it again clears it.
    """

    id: str
    subscriber: str
    seq: int
    event: Event
    attempts: int
    last_error: str
    first_failed_at: float
    parked_at: float
    replayed_at: float | None = None
    replays: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriberState:
    """A durable subscriber's backlog: ``position`` is the outbox seq up to which every event
    was delivered or parked; ``retrying`` of the ``pending`` ones failed at least once."""

    name: str
    event_type: str
    registered_at: float
    position: int
    pending: int
    retrying: int
    parked: int


class TenantRepo(Protocol):
    def add(self, tenant: Tenant) -> None:
        """Insert; a tenant with the same id raises Conflict (``concurrent_update``)."""
        ...
    def get(self, tenant_id: str) -> Tenant | None: ...
    def save(self, tenant: Tenant) -> Tenant:
        """Compare-and-set on ``tenant.version`` (Conflict ``concurrent_update``)."""
        ...
    def list(self) -> list[Tenant]:
        """The tenants visible in the current scope: the current one, or all of them in
        the platform scope."""
        ...


class RegionRepo(Protocol):
    def add(self, region: Region) -> None: ...
    def get(self, region_id: str) -> Region | None: ...
    def list_owned(self) -> list[tuple[str, Region]]:
        """(tenant, region) by region id: the current tenant's, or, in the platform scope,
        every tenant's (region ids are unique across the deployment)."""
        ...
    def list(self) -> list[Region]: ...


class MerchantRepo(Protocol):
    def add(self, merchant: Merchant) -> None: ...
    def save(self, merchant: Merchant) -> Merchant:
        """Compare-and-set: store ``merchant`` only if the stored version is still
        ``merchant.version``; return it with the next version, else raise
        Conflict(code='concurrent_update')."""
        ...
    def get(self, merchant_id: str) -> Merchant | None: ...
    def in_box(
        self, region_id: str, box: tuple[float, float, float, float]
    ) -> list[Merchant]: ...
    def list_region(self, region_id: str) -> list[Merchant]: ...
    def prep_times(self, region_id: str) -> dict[str, int]:
        """Merchant id -> usual preparation time (s) of the region's merchants, without
        loading their menus (a dispatch round's read)."""
        ...


class ConsumerRepo(Protocol):
    def add(self, consumer: Consumer) -> None:
        """Insert; a phone another consumer of the tenant has raises Conflict
        (``concurrent_update``: the unique index on tenant and phone)."""
        ...
    def get(self, consumer_id: str) -> Consumer | None: ...
    def by_phone(self, phone: str) -> Consumer | None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class PingView:
    """What a location batch needs to know, read at once (``CourierRepo.for_ping``)."""

    courier: Courier
    first_order_status: OrderStatus | None  # of active_order_ids[0]; None: holds nothing
    any_banned: bool  # one of the batch's devices is banned (``BannedDeviceRepo.among``)


class CourierRepo(Protocol):
    def add(self, courier: Courier) -> None: ...
    def save(self, courier: Courier) -> Courier:
        """Compare-and-set, like ``MerchantRepo.save``."""
        ...
    def get(self, courier_id: str) -> Courier | None: ...
    def for_ping(self, courier_id: str, device_ids: Collection[str]) -> PingView | None:
        """The courier, the status of its first order in hand and whether any of
        ``device_ids`` is banned, in one read (each location batch asks); None: no courier."""
        ...
    def list_region(self, region_id: str, *, on_shift_only: bool = False) -> list[Courier]: ...
    def count_by_status(self, region_id: str) -> dict[str, int]: ...


class OrderRepo(Protocol):
    def add(self, order: Order) -> None: ...
    def save(self, order: Order, *, expected_version: int) -> None:
        """Raise Conflict(code='concurrent_update') when the stored version moved on."""
        ...
    def get(self, order_id: str) -> Order | None: ...
    def status_of(self, order_id: str) -> OrderStatus | None:
        """The order's status alone, None when there is no such order (a courier's ping:
        one column, not the whole order document)."""
        ...
    def list(
        self,
        *,
        region_id: str | None = None,
        consumer_id: str | None = None,
        merchant_id: str | None = None,
        courier_id: str | None = None,
        statuses: Sequence[OrderStatus] | None = None,
        limit: int = 100,
        oldest_first: bool = False,
    ) -> list[Order]:
        """Newest first unless ``oldest_first`` (ties by id)."""
        ...
    def count_by_status(self, region_id: str, *,
                        statuses: Collection[str] | None = None) -> dict[str, int]:
        """Orders of the region by status; only ``statuses`` when given (an index range:
        the open orders, not every order the region ever had)."""
        ...
    def get_many(self, order_ids: Collection[str]) -> dict[str, Order]:
        """The orders that exist among ``order_ids``, by id (one query)."""
        ...
    def count_of_merchant(self, merchant_id: str, *, statuses: Collection[OrderStatus],
                          excluding: str | None = None, limit: int) -> int:
        """How many of the merchant's orders are in ``statuses`` (not counting order
        ``excluding``), counted up to ``limit``: a count, no order is decoded."""
        ...
    def dropoffs(self, region_id: str, *, statuses: Collection[OrderStatus],
                 limit: int) -> tuple[Point, ...]:
        """The drop-off points of the region's orders in ``statuses``, oldest ``limit``
        first (surge rounds: one column, not whole orders)."""
        ...


class EventLog(Protocol):
    def append(self, event: Event) -> None: ...
    def for_subject(self, subject_id: str) -> list[Event]: ...
    def of_types(self, region_id: str, types: Collection[str], *, since: float,
                 limit: int = 100_000) -> list[Event]:
        """The region's events of ``types`` that occurred at or after ``since``, in order."""
        ...


class Outbox(Protocol):
    def add(self, event: Event) -> None: ...
    def pending(self, limit: int) -> list[OutboxEntry]:
        """Rows the relay has not fanned out yet (``EventDeliveries.fan_out`` marks them)."""
        ...
    def claim_head(self, limit: int) -> list[OutboxEntry]:
        """Lock the oldest unsent rows for a relay that publishes them to a durable log;
        empty when another relay holds older ones (it publishes first, in order)."""
        ...
    def mark_sent(self, seqs: Sequence[int], at: float) -> None: ...


class EventDeliveries(Protocol):
    """Durable subscribers, their queues of outbox events, and their dead letters.

    A queued event is claimed by one relay at a time: claiming leases it (``claimed_by``,
    ``lease_until``); settling it checks the lease is still that relay's, so a relay whose
    lease lapsed and was taken over cannot settle what the other now holds.
    """

    def register(self, name: str, event_type: str, at: float) -> None:
        """Add (or refresh) a durable subscriber; it receives events fanned out from now on."""
        ...
    def fan_out(self, limit: int, at: float) -> list[OutboxEntry]:
        """Queue the oldest unsent outbox rows for every registered subscriber whose type
        matches and mark them sent; empty when another relay holds the head of the outbox."""
        ...
    def has_due(self, subscriber: str, now: float) -> bool:
        """Whether ``claim`` could find anything (a cheap read before a write transaction)."""
        ...
    def claim(self, subscriber: str, *, relay_id: str, now: float, lease_s: float,
              limit: int) -> list[QueuedEvent]:
        """Lease due events of ``subscriber`` in seq order, only the oldest waiting events of
        each subject (a later event of a subject waits for the earlier ones)."""
        ...
    def delivered(self, subscriber: str, seqs: Sequence[int], *, relay_id: str) -> int:
        """Drop delivered events of this relay's lease; returns how many were still its own."""
        ...
    def retry(self, q: QueuedEvent, *, relay_id: str, error: str, at: float,
              next_attempt_at: float) -> bool:
        """Count a failed attempt and schedule the next; False if the lease was lost."""
        ...
    def park(self, q: QueuedEvent, *, relay_id: str, error: str, at: float,
             dead_letter_id: str) -> bool:
        """Move the event to the dead letters (one per subscriber and event, reopened when a
        replay fails again); False if the lease was lost."""
        ...
    def park_event(self, *, subscriber: str, seq: int, event: Event, attempts: int, error: str,
                   at: float, first_failed_at: float, dead_letter_id: str) -> None:
        """Park ``event`` for ``subscriber`` (a durable log's consumer gave up on it): a new
        dead letter, or the same one reopened when its replay failed again."""
        ...
    def mark_replayed(self, dead_letter_id: str, at: float) -> bool:
        """Mark a letter replayed without queueing it here (a durable log redelivers it);
        False when a replay is already queued or done since it was parked."""
        ...
    def release(self, subscriber: str, seqs: Sequence[int], *, relay_id: str) -> None:
        """Give back leased events not attempted (no attempt counted)."""
        ...
    def subscribers(self) -> list[SubscriberState]: ...
    def dead_letters(self, *, subscriber: str | None = None, include_replayed: bool = False,
                     limit: int = 100) -> list[DeadLetter]:
        """Oldest parked first."""
        ...
    def dead_letter(self, dead_letter_id: str) -> DeadLetter | None: ...
    def replay(self, dead_letter_id: str, at: float) -> bool:
        """Queue the event again for its subscriber only; False (nothing done) when a replay
        is already queued or done since it was parked."""
        ...


class Inbox(Protocol):
    def seen(self, consumer: str, event_id: str) -> bool:
        """Record ``event_id`` for ``consumer``; True if it was already recorded."""
        ...


class IdempotencyRepo(Protocol):
    def get(self, scope: str, key: str) -> IdempotencyRecord | None: ...
    def add(self, record: IdempotencyRecord) -> None: ...


class ApiKeyRepo(Protocol):
    def add(self, record: ApiKeyRecord) -> None: ...
    def by_hash(self, key_hash: str) -> ApiKeyRecord | None: ...
    def revoke_subject(self, role: str, subject_id: str) -> int:
        """Revoke every live key of ``subject_id`` acting as ``role``; returns how many."""
        ...


class OfferRepo(Protocol):
    def add(self, offer: Offer) -> None:
        """Insert a new offer; at most one pending per courier and per order (a unique index
        refuses a second: the unit of work raises Conflict('concurrent_update'))."""
        ...
    def save(self, offer: Offer) -> Offer:
        """Compare-and-set, like ``MerchantRepo.save``."""
        ...
    def pending_expired(self, now: float, limit: int, *,
                        after: tuple[float, str] | None = None) -> list[Offer]:
        """Pending offers past their expiry at ``now``, by (expires_at, id) after ``after``."""
        ...
    def get(self, offer_id: str) -> Offer | None: ...
    def pending_for_courier(self, courier_id: str) -> list[Offer]: ...
    def pending_for_order(self, order_id: str) -> list[Offer]: ...
    def accepted_for_order(self, order_id: str) -> Offer | None:
        """The offer of ``order_id`` its courier accepted last (None: never accepted)."""
        ...
    def pending_in_region(self, region_id: str) -> list[Offer]: ...


class DeliveryRepo(Protocol):
    """Drive deliveries (``app.drive``)."""

    def add(self, d: Delivery) -> None: ...
    def save(self, d: Delivery) -> Delivery:
        """Compare-and-set, like ``MerchantRepo.save``."""
        ...
    def set_finished(self, delivery_id: str) -> None: ...
    def by_external(self, merchant_id: str, external_delivery_id: str) -> Delivery | None: ...
    def by_order(self, order_id: str) -> Delivery | None: ...
    def by_token(self, token: str) -> Delivery | None: ...
    def page(self, merchant_id: str, *, limit: int,
             after: tuple[float, str] | None = None) -> list[Delivery]: ...
    def in_flight(self, limit: int, *, after_id: str | None = None) -> list[Delivery]:
        """Unfinished deliveries by id, after ``after_id`` (a keyset page)."""
        ...


class DriveQuoteRepo(Protocol):
    def put(self, q: DriveQuote) -> None: ...
    def get(self, merchant_id: str, external_delivery_id: str) -> DriveQuote | None: ...


class WebhookRepo(Protocol):
    """Webhook endpoints, queued messages (one per endpoint and event id) and attempts."""

    def add_endpoint(self, e: Endpoint) -> None: ...
    def deactivate(self, endpoint_id: str) -> None: ...
    def endpoint(self, endpoint_id: str) -> Endpoint | None: ...
    def endpoints_for(self, merchant_id: str) -> list[Endpoint]: ...
    def enqueue(self, m: Message) -> bool: ...
    def message(self, message_id: str) -> Message | None: ...
    def due(self, now: float, limit: int, *, lease_s: float | None = None) -> list[Message]:
        """Pending messages due at ``now``; with ``lease_s``, claimed for that long (others
        skip them) so two senders never post the same message at once."""
        ...
    def save_message(self, m: Message) -> None: ...
    def add_attempt(self, *, message_id: str, attempt: int, at: float, status_code: int | None,
                    error: str | None) -> None: ...
    def attempts(self, message_id: str) -> list[dict[str, object]]: ...
    def messages(self, merchant_id: str, *, endpoint_id: str | None = None,
                 status: str | None = None, limit: int = 50) -> list[Message]: ...


class NotificationRepo(Protocol):
    def add(self, n: Notification) -> bool: ...
    def due(self, now: float, limit: int, *,
            lease_s: float | None = None) -> list[Notification]:
        """Pending notices due at ``now``; with ``lease_s``, claimed like webhook messages."""
        ...
    def save(self, n: Notification) -> None: ...
    def list(self, *, status: str | None = None, recipient_id: str | None = None,
             limit: int = 100) -> list[Notification]: ...


class SandboxCaptureRepo(Protocol):
    """What a test tenant's outbound side effects would have sent (``app.sandbox``)."""

    def add(self, c: Capture) -> None: ...
    def list(self, *, channel: str | None = None, subject_id: str | None = None,
             limit: int = 50) -> list[Capture]:
        """Newest first."""
        ...


class PaymentRepo(Protocol):
    """The platform's record of each order's payment (``app.payments``); one per order."""

    def add(self, p: Payment) -> None: ...
    def save(self, p: Payment) -> None: ...
    def for_order(self, order_id: str) -> Payment | None: ...
    def for_processor_ref(self, processor_ref: str) -> Payment | None: ...


class PaymentNotices(Protocol):
    """A processor's webhooks: ``parse`` checks the signature (``Unauthorized`` when it
    does not match) and says what happened."""

    def parse(self, payload: bytes, signature: str | None) -> ProcessorNotice: ...


class ProcessorCallRepo(Protocol):
    """The built-in processor's answered calls, one per (tenant, idempotency key)."""

    def add(self, call: ProcessorCall) -> None:
        """Raises (the unit's ``concurrent_update``) when the key is taken."""
        ...

    def get(self, key: str) -> ProcessorCall | None: ...
    def for_ref(self, processor_ref: str) -> list[ProcessorCall]:
        """Oldest first."""
        ...


class PaymentProcessor(Protocol):
    """A payment processor (``adapters.payments``): the built-in one or Stripe.

    Every call takes an idempotency key: the same key answers the first call's result
    (``replayed``) and moves no money again. A refusal raises ``PaymentDeclined`` (402),
    no answer in time ``PaymentTimedOut`` (503; retry with the same key)."""

    name: str

    def authorise(self, *, amount: Money, reference: str, idempotency_key: str,
                  card_token: str | None = None) -> ProcessorResult: ...
    def capture(self, *, processor_ref: str, amount: Money,
                idempotency_key: str) -> ProcessorResult: ...
    def void(self, *, processor_ref: str, idempotency_key: str) -> ProcessorResult: ...
    def refund(self, *, processor_ref: str, amount: Money,
               idempotency_key: str) -> ProcessorResult: ...


class BannedDeviceRepo(Protocol):
    def ban(self, device_id: str, *, reason: str, at: float, by: str) -> bool: ...
    def among(self, device_ids: Collection[str]) -> frozenset[str]:
        """The banned ones of ``device_ids``."""
        ...


class PinAttemptRepo(Protocol):
    def count_attempt(self, order_id: str, at: float) -> int:
        """Add one attempt and return the count; the row stays locked until the unit ends
        (commit keeps the attempt, rollback forgets it)."""
        ...

    def failures(self, order_id: str) -> int: ...
    def reset(self, order_id: str) -> int:
        """Forget the order's attempts; returns how many there were."""
        ...


class LeaseRepo(Protocol):
    """Leases with fencing tokens (``core.leases``) and the heartbeats of the workers that
    share them out."""

    def get(self, name: str, *, lock: bool = False) -> Lease | None:
        """The lease row; with ``lock`` it stays share-locked until the unit ends, so a
        takeover (which updates the row) waits for this unit's commit: the fence."""
        ...

    def put(self, lease: Lease, *, expected_token: int | None) -> None:
        """Compare-and-set: insert (``expected_token`` None) or update the row still at
        ``expected_token``; a row changed meanwhile raises ``Conflict("concurrent_update")``."""
        ...

    def heartbeat(self, worker_id: str, now: float, *, forget_before: float) -> None:
        """Record ``worker_id`` as seen at ``now``; delete heartbeats older than
        ``forget_before`` (workers that died without a word)."""
        ...
    def live_workers(self, since: float) -> list[str]:
        """Workers seen at or after ``since``, sorted."""
        ...
    def forget_worker(self, worker_id: str) -> None: ...


class LedgerRepo(Protocol):
    """Append-only ledger transactions (``core.ledger``); nothing is ever updated."""

    def add(self, posted: Posted) -> bool:
        """Store the transaction and its postings; False (nothing stored) when its key is
        posted already in this tenant."""
        ...
    def add_many(self, posted: Sequence[Posted]) -> list[Posted]:
        """``add`` each (two statements, however many); the ones stored, in their order."""
        ...
    def by_key(self, key: str) -> Posted | None: ...
    def of_order(self, order_id: str) -> list[Posted]:
        """Oldest first."""
        ...
    def rows(self) -> list[PostingRow]:
        """Every posting, oldest first (the audit's input)."""
        ...
    def balances(self, account: str | None = None) -> dict[tuple[str, str], int]:
        """The sum of the postings of every (account, currency), or of one account's."""
        ...
    def statement(self, account: str, *, currency: str | None = None,
                  limit: int = 100) -> list[StatementLine]:
        """The account's postings, oldest first."""
        ...
    def postings_between(self, start: float | None = None,
                         end: float | None = None) -> list[StatementLine]:
        """Every posting created in [start, end) (epoch s; None: unbounded), oldest first;
        all the lines of a transaction share its time (settlement reports)."""
        ...


class RefundRequestRepo(Protocol):
    """Refund requests and their decisions (``core.refunds``, ``app.refunds``)."""

    def add(self, case: RefundCase) -> bool:
        """Store it; False (nothing stored) when its idempotency key is taken already."""
        ...
    def get(self, case_id: str) -> RefundCase | None: ...
    def by_key(self, key: str) -> RefundCase | None: ...
    def list(self, *, status: Status | None = None, limit: int = 100) -> list[RefundCase]:
        """Oldest first."""
        ...
    def given_since(self, consumer_id: str, since: float, currency: str) -> int:
        """The approved amount in minor units of ``currency`` asked at or after ``since``."""
        ...
    def decide(self, case: RefundCase, *, expected: Status) -> bool:
        """Store ``case``'s status, decision and time only if it is still ``expected``."""
        ...


class EtaModelRegistry(Protocol):
    """Versioned model files: the incumbent (served) and an optional shadow (logged)."""

    def incumbent(self) -> EtaModel | None:
        """The served model; None: the pricing policy's heuristic."""
        ...

    def shadow(self) -> EtaModel | None: ...

    def promote(self) -> str:
        """The shadow becomes the incumbent (the old one is kept in the history); returns
        its name. Raises Conflict when there is no shadow."""
        ...


class UnitOfWork(Protocol):
    tenants: TenantRepo
    regions: RegionRepo
    merchants: MerchantRepo
    consumers: ConsumerRepo
    couriers: CourierRepo
    orders: OrderRepo
    events: EventLog
    outbox: Outbox
    event_deliveries: EventDeliveries
    inbox: Inbox
    idempotency: IdempotencyRepo
    api_keys: ApiKeyRepo
    offers: OfferRepo
    banned_devices: BannedDeviceRepo
    deliveries: DeliveryRepo
    drive_quotes: DriveQuoteRepo
    webhooks: WebhookRepo
    notifications: NotificationRepo
    sandbox_captures: SandboxCaptureRepo
    payments: PaymentRepo
    processor_calls: ProcessorCallRepo
    pin_attempts: PinAttemptRepo
    leases: LeaseRepo
    ledger: LedgerRepo
    refund_requests: RefundRequestRepo
    eta_history: EtaHistoryRepo
    experiments: ExperimentRepo

    @property
    def read_only(self) -> bool:
        """Opened with ``read_only=True``: it can read but never commit."""
        ...

    def __enter__(self) -> UnitOfWork: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self, *, read_only: bool = False) -> UnitOfWork:
        """A new unit of work; ``read_only`` ones never write and may run beside writers."""
        ...
