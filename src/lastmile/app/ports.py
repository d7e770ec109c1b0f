"""Ports: what the use cases need from the shell, as Protocols.

Adapters implement them (``adapters.db`` for SQL, ``tests.fakes`` for memory).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol

from lastmile.app.events import Event
from lastmile.core.model import Consumer, Courier, Merchant, Region
from lastmile.core.offers import Offer
from lastmile.core.orders import Order, OrderStatus


class Clock(Protocol):
    def now(self) -> float:
        """Epoch seconds, UTC."""
        ...


class IdSource(Protocol):
    def new(self, prefix: str) -> str: ...


class Publisher(Protocol):
    def publish(self, event: Event) -> None: ...


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
    key_hash: str
    role: str
    subject_id: str
    created_at: float
    revoked: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxEntry:
    seq: int
    event: Event


class RegionRepo(Protocol):
    def add(self, region: Region) -> None: ...
    def get(self, region_id: str) -> Region | None: ...
    def list(self) -> list[Region]: ...


class MerchantRepo(Protocol):
    def add(self, merchant: Merchant) -> None: ...
    def save(self, merchant: Merchant) -> None: ...
    def get(self, merchant_id: str) -> Merchant | None: ...
    def in_box(
        self, region_id: str, box: tuple[float, float, float, float]
    ) -> list[Merchant]: ...
    def list_region(self, region_id: str) -> list[Merchant]: ...


class ConsumerRepo(Protocol):
    def add(self, consumer: Consumer) -> None: ...
    def get(self, consumer_id: str) -> Consumer | None: ...


class CourierRepo(Protocol):
    def add(self, courier: Courier) -> None: ...
    def save(self, courier: Courier) -> None: ...
    def get(self, courier_id: str) -> Courier | None: ...
    def list_region(self, region_id: str, *, on_shift_only: bool = False) -> list[Courier]: ...


class OrderRepo(Protocol):
    def add(self, order: Order) -> None: ...
    def save(self, order: Order, *, expected_version: int) -> None:
        """Raise Conflict(code='concurrent_update') when the stored version moved on."""
        ...
    def get(self, order_id: str) -> Order | None: ...
    def list(
        self,
        *,
        region_id: str | None = None,
        consumer_id: str | None = None,
        merchant_id: str | None = None,
        courier_id: str | None = None,
        statuses: Sequence[OrderStatus] | None = None,
        limit: int = 100,
    ) -> list[Order]: ...
    def count_by_status(self, region_id: str) -> dict[str, int]: ...


class EventLog(Protocol):
    def append(self, event: Event) -> None: ...
    def for_subject(self, subject_id: str) -> list[Event]: ...


class Outbox(Protocol):
    def add(self, event: Event) -> None: ...
    def pending(self, limit: int) -> list[OutboxEntry]: ...
    def mark_sent(self, seqs: Sequence[int], at: float) -> None: ...


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


class OfferRepo(Protocol):
    def add(self, offer: Offer) -> None: ...
    def save(self, offer: Offer) -> None: ...
    def get(self, offer_id: str) -> Offer | None: ...
    def pending_for_courier(self, courier_id: str) -> list[Offer]: ...
    def pending_for_order(self, order_id: str) -> list[Offer]: ...


class UnitOfWork(Protocol):
    regions: RegionRepo
    merchants: MerchantRepo
    consumers: ConsumerRepo
    couriers: CourierRepo
    orders: OrderRepo
    events: EventLog
    outbox: Outbox
    inbox: Inbox
    idempotency: IdempotencyRepo
    api_keys: ApiKeyRepo
    offers: OfferRepo

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
    def __call__(self) -> UnitOfWork: ...
