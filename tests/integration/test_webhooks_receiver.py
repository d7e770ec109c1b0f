"""Webhooks and e-mail against REAL local servers (http.server, a socketserver SMTP)."""

from __future__ import annotations

import json
import socketserver
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "service"))
from drive_helpers import a_request, pump, to_dropoff  # noqa: E402

from lastmile.adapters.notify.channels import LogChannel, SmtpChannel  # noqa: E402
from lastmile.adapters.webhooks.http import HttpTransport  # noqa: E402
from lastmile.app import drive, notifications, webhooks  # noqa: E402
from lastmile.app.context import Services  # noqa: E402
from lastmile.core.delivery.proof import GivenProof  # noqa: E402
from lastmile.core.webhooks import SIGNATURE_HEADER, RetryPolicy, verify  # noqa: E402


class Receiver:
    """A webhook receiver that answers 503 to the first ``fail_first`` requests."""

    def __init__(self, fail_first: int) -> None:
        self.fail_first = fail_first
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                failing = len(receiver.requests) <= receiver.fail_first
                self.send_response(503 if failing else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/lastmile"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def on_loopback(svc: Services) -> Services:
    """The receivers here listen on 127.0.0.1: allowed as LASTMILE_WEBHOOKS_ALLOW_PRIVATE=1 does."""
    return replace(svc, webhooks_allow_private=True)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail_first=2)
    yield r
    r.close()


def test_a_receiver_down_for_two_attempts_gets_every_event_signed_with_stable_ids(
        sqlite_platform, receiver):
    p = sqlite_platform
    svc = p.services
    m = p.seed.merchant_ids[0]
    endpoint = webhooks.register_endpoint(on_loopback(svc), m, url=receiver.url,
                                          event_types=("delivery.created",))
    drive.create_delivery(svc, a_request(p))
    pump(p)
    transport, policy = HttpTransport(allow_private_networks=True), RetryPolicy(base_s=10, max_attempts=5)
    assert webhooks.send_webhooks_once(svc, transport, policy=policy) == 1  # 503
    assert webhooks.send_webhooks_once(svc, transport, policy=policy) == 0  # backing off
    p.clock.advance(10)
    webhooks.send_webhooks_once(svc, transport, policy=policy)  # 503 again
    p.clock.advance(20)
    webhooks.send_webhooks_once(svc, transport, policy=policy)  # 204
    assert len(receiver.requests) == 3
    event_ids = set()
    for headers, body in receiver.requests:
        assert verify(endpoint.secret, headers[SIGNATURE_HEADER], body, now=svc.clock.now())
        event_ids.add(json.loads(body)["event_id"])
    assert len(event_ids) == 1  # a redelivery carries the same event id
    [message] = webhooks.list_messages(svc, m)
    assert (message.status.value, message.attempts) == ("delivered", 3)
    codes = [a["status_code"] for a in webhooks.message_attempts(svc, m, message.id)]
    assert codes == [503, 503, 204]


def test_a_receiver_that_never_answers_ends_in_the_dead_letter_and_can_be_requeued(
        sqlite_platform):
    p = sqlite_platform
    svc = p.services
    m = p.seed.merchant_ids[0]
    down = Receiver(fail_first=0)
    url = down.url
    down.close()  # nothing listens there any more: connection refused
    webhooks.register_endpoint(on_loopback(svc), m, url=url, event_types=("delivery.created",))
    drive.create_delivery(svc, a_request(p))
    pump(p)
    policy = RetryPolicy(base_s=1, cap_s=1, max_attempts=3)
    for _ in range(3):
        webhooks.send_webhooks_once(svc, HttpTransport(allow_private_networks=True), policy=policy, timeout_s=2)
        p.clock.advance(1)
    [dead] = webhooks.list_messages(svc, m, status="dead")
    assert dead.attempts == 3 and "Error" in (dead.last_error or "")
    assert webhooks.requeue(svc, m, dead.id).status.value == "pending"


def test_a_full_delivery_reports_every_status_change_in_order(sqlite_platform):
    p = sqlite_platform
    svc = p.services
    r = Receiver(fail_first=0)
    try:
        webhooks.register_endpoint(on_loopback(svc), p.seed.merchant_ids[0], url=r.url)
        view = drive.create_delivery(svc, a_request(p))
        courier = to_dropoff(p, view.order.id)
        drive.courier_deliver(svc, view.order.id, given=GivenProof(note="handed over"),
                              actor=courier)
        pump(p)
        while webhooks.send_webhooks_once(svc, HttpTransport(allow_private_networks=True)) > 0:
            pass
        types = [json.loads(body)["type"] for _, body in r.requests]
    finally:
        r.close()
    assert types == ["delivery.created", "delivery.confirmed", "delivery.assigned",
                     "delivery.courier_at_pickup", "delivery.picked_up",
                     "delivery.courier_at_dropoff", "delivery.delivered"]


class SmtpSink(socketserver.ThreadingTCPServer):
    """A minimal SMTP server: enough of RFC 5321 for smtplib to hand over one message."""

    allow_reuse_address = True
    daemon_threads = True

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], str]] = []
        super().__init__(("127.0.0.1", 0), _SmtpHandler)


class _SmtpHandler(socketserver.StreamRequestHandler):
    def reply(self, line: str) -> None:
        self.wfile.write((line + "\r\n").encode())

    def handle(self) -> None:
        sink: SmtpSink = self.server  # type: ignore[assignment]
        sender, rcpts = "", []
        self.reply("220 sink ESMTP")
        while line := self.rfile.readline().decode().rstrip("\r\n"):
            verb = line[:4].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250 sink")
            elif verb == "MAIL":
                sender = line.split(":", 1)[1].strip(" <>")
                self.reply("250 OK")
            elif verb == "RCPT":
                rcpts.append(line.split(":", 1)[1].strip(" <>"))
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 end with .")
                data = []
                while (part := self.rfile.readline().decode()) not in (".\r\n", ""):
                    data.append(part)
                sink.messages.append((sender, rcpts, "".join(data)))
                self.reply("250 queued")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("250 OK")


def test_email_notifications_reach_a_real_smtp_server_after_it_comes_up(sqlite_platform):
    p = sqlite_platform
    svc = p.services
    drive.create_delivery(svc, a_request(p))
    pump(p)
    sink = SmtpSink()
    port = sink.server_address[1]
    sink.server_close()  # down for the first attempt
    email = SmtpChannel(host="127.0.0.1", port=port, sender="noreply@lastmile.test",
                        timeout_s=2)
    channels = {"log": LogChannel(), "email": email}
    notifications.send_notifications_once(svc, channels)
    with svc.uow() as uow:
        pending = [n for n in uow.notifications.list() if n.channel == "email"]
    assert [n.status.value for n in pending] == ["pending"] and pending[0].last_error
    sink = SmtpSink()
    email._port = sink.server_address[1]  # the relay came back on another port
    thread = threading.Thread(target=sink.serve_forever, daemon=True)
    thread.start()
    try:
        p.clock.advance(60)
        assert notifications.send_notifications_once(svc, channels) == 1
    finally:
        sink.shutdown()
        sink.server_close()
    [(sender, rcpts, data)] = sink.messages
    assert (sender, rcpts) == ("noreply@lastmile.test", ["ada@example.test"])
    assert "Subject: Order confirmed" in data


def test_the_default_transport_refuses_loopback_and_metadata_addresses() -> None:
    from lastmile.adapters.webhooks.http import BlockedDestination

    r = Receiver(fail_first=0)
    try:
        for url in (r.url, "http://169.254.169.254/latest/meta-data",
                    f"http://[::ffff:127.0.0.1]:{r.server.server_address[1]}/h"):
            with pytest.raises(BlockedDestination):
                HttpTransport().post(url, b"{}", {}, 2)
    finally:
        r.close()
    assert r.requests == []  # nothing reached the receiver


def test_a_receiver_dripping_its_answer_cannot_hold_the_sender_past_the_timeout() -> None:
    import socket
    import time

    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def drip() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
            for _ in range(40):  # one header byte every 0.2 s: each read is quick
                if stop.wait(0.2):
                    return
                try:
                    conn.sendall(b"X")
                except OSError:
                    return

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.getsockname()[1]}/h"
    started = time.monotonic()
    try:
        with pytest.raises(TimeoutError):
            HttpTransport(allow_private_networks=True).post(url, b"{}", {}, 1.0)
        assert time.monotonic() - started < 3
    finally:
        stop.set()
        thread.join(5)
        server.close()
