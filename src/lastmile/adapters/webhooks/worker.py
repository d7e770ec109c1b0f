"""Drive workers: bus subscriptions and the webhook and notification sender threads.

``install_drive(container)`` subscribes the webhook and notification
producers to the bus (once, as two durable subscribers) and starts two daemon threads; each has ``stop()``.
Tests and the simulator call the ``*_once`` functions of ``app.webhooks`` and
``app.notifications`` directly instead.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypedDict, Unpack

from lastmile.adapters.loop import LoopWorker
from lastmile.adapters.notify.channels import LogChannel
from lastmile.adapters.webhooks.http import HttpTransport
from lastmile.app import notifications, webhooks
from lastmile.app.context import Services
from lastmile.app.events import Event
from lastmile.app.every_tenant import for_each_tenant
from lastmile.app.live import LiveStore
from lastmile.app.notifications import Channel, NotificationPolicy
from lastmile.app.ports import EventBus
from lastmile.app.webhooks import WebhookTransport
from lastmile.core.webhooks import RetryPolicy

log = logging.getLogger(__name__)
# The durable bus subscribers' names: each keeps its own queue, retries and dead letters, so a
# failing webhook producer neither holds back nor repeats the notices, and the other way round.
WEBHOOKS = "drive-webhooks"
NOTIFICATIONS = "drive-notifications"


@dataclass(slots=True, kw_only=True)
class DriveWorkers:
    services: Services
    live: LiveStore | None = None
    transport: WebhookTransport = field(default_factory=HttpTransport)
    channels: Mapping[str, Channel] = field(default_factory=lambda: {"log": LogChannel()})
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    notify_policy: NotificationPolicy = field(default_factory=NotificationPolicy)
    interval_s: float = 1.0
    threads: list[LoopWorker] = field(default_factory=list)

    def queue_webhooks(self, event: Event) -> None:
        """Bus subscriber ``drive-webhooks``: the event's webhook messages (idempotent)."""
        webhooks.on_event(self.services, event)

    def queue_notifications(self, event: Event) -> None:
        """Bus subscriber ``drive-notifications``: the event's notices (idempotent)."""
        notifications.on_event(self.services, event, self.notify_policy)

    def webhook_tick(self) -> None:
        positions = webhooks.positions_from(self.live, self.services)
        # Every tenant's in-flight deliveries, each tenant's as its own (senders below
        # claim across tenants themselves).
        for_each_tenant(self.services,
                        lambda: webhooks.evaluate_thresholds_once(self.services, positions))
        for _ in range(20):  # drain a backlog, but come back to thresholds regularly
            if webhooks.send_webhooks_once(self.services, self.transport, policy=self.retry) == 0:
                break

    def notification_tick(self) -> None:
        notifications.send_notifications_once(self.services, self.channels,
                                              policy=self.notify_policy)

    def start(self) -> None:
        if self.threads:
            return
        self.threads = [LoopWorker("webhook-sender", self.webhook_tick, self.interval_s),
                        LoopWorker("notification-sender", self.notification_tick,
                                   self.interval_s)]
        for worker in self.threads:
            worker.start()

    def stop(self) -> None:
        for worker in self.threads:
            worker.stop()
        self.threads = []


class DriveHost(Protocol):
    """What ``install_drive`` needs of a container (``bootstrap.Container`` is one)."""

    @property
    def services(self) -> Services: ...
    @property
    def bus(self) -> EventBus: ...
    @property
    def extras(self) -> dict[str, object]: ...


class DriveOverrides(TypedDict, total=False):
    """The ``DriveWorkers`` settings a caller of ``install_drive`` may replace."""

    transport: WebhookTransport
    channels: Mapping[str, Channel]
    retry: RetryPolicy
    notify_policy: NotificationPolicy
    interval_s: float


def install_drive(container: DriveHost, **overrides: Unpack[DriveOverrides]) -> DriveWorkers:
    """Subscribe the Drive producers to ``container.bus`` once; returns the (unstarted) workers."""
    extras = container.extras
    existing = extras.get("drive")
    if isinstance(existing, DriveWorkers):
        return existing
    workers = DriveWorkers(services=container.services,
                           live=getattr(container, "live", None), **overrides)
    container.bus.subscribe("*", workers.queue_webhooks, durable=WEBHOOKS)
    container.bus.subscribe("*", workers.queue_notifications, durable=NOTIFICATIONS)
    extras["drive"] = workers
    return workers
