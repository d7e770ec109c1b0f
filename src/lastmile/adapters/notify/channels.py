"""Channels that carry a notification out: the log, an HTTP webhook, SMTP e-mail.

Each ``send`` returns or raises; the notification sender records failures
and retries, so a channel never swallows an error.
"""

from __future__ import annotations

import json
import logging
import smtplib
from collections.abc import Callable
from email.message import EmailMessage

from lastmile.app.webhooks import WebhookTransport
from lastmile.core.delivery.notices import Notification
from lastmile.core.webhooks import EVENT_ID_HEADER, SIGNATURE_HEADER, signature_header

log = logging.getLogger("lastmile.notify")


class LogChannel:
    """Logs the notice (ids and kind only: addresses and bodies may hold personal data)."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, notification: Notification) -> None:
        log.info("notify %s %s %s via log", notification.kind.value,
                 notification.recipient_kind, notification.recipient_id)
        self.sent.append(notification.id)


class SmtpChannel:
    """E-mail through an SMTP relay with the standard library (STARTTLS when asked)."""

    def __init__(self, *, host: str, port: int, sender: str, timeout_s: float = 10.0,
                 starttls: bool = False, username: str | None = None,
                 password: str | None = None):
        self._host, self._port, self._sender = host, port, sender
        self._timeout, self._starttls = timeout_s, starttls
        self._login = (username, password) if username and password else None

    def send(self, notification: Notification) -> None:
        if not notification.address:
            raise ValueError(f"notification {notification.id} has no e-mail address")
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = notification.address
        message["Subject"] = notification.subject
        message["X-Lastmile-Notification"] = notification.id
        message.set_content(notification.body)
        with smtplib.SMTP(self._host, self._port, timeout=self._timeout) as smtp:
            if self._starttls:
                smtp.starttls()
            if self._login is not None:
                smtp.login(*self._login)
            smtp.send_message(message)


class WebhookChannel:
    """POSTs the notice as signed JSON to one URL (a push or SMS gateway, for instance)."""

    def __init__(self, *, url: str, secret: str, transport: WebhookTransport,
                 clock_now: Callable[[], float], timeout_s: float = 5.0):
        self._url, self._secret, self._transport = url, secret, transport
        self._now, self._timeout = clock_now, timeout_s

    def send(self, notification: Notification) -> None:
        body = json.dumps({
            "event_id": notification.id, "kind": notification.kind.value,
            "recipient": {"kind": notification.recipient_kind, "id": notification.recipient_id},
            "subject": notification.subject, "body": notification.body,
        }, separators=(",", ":"), sort_keys=True).encode()
        ts = int(self._now())
        headers = {"Content-Type": "application/json",
                   SIGNATURE_HEADER: signature_header(self._secret, ts, body),
                   EVENT_ID_HEADER: notification.id}
        status = self._transport.post(self._url, body, headers, self._timeout)
        if not 200 <= status < 300:
            raise RuntimeError(f"notification webhook answered HTTP {status}")
