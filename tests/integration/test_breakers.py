"""Circuit breakers against REAL local servers: a webhook receiver that fails then recovers,
an SMTP relay that is down, and the generic wrapper the payment processor will use."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

sys.path.insert(0, str(Path(__file__).parents[1] / "service"))
sys.path.insert(0, str(Path(__file__).parent))
from drive_helpers import a_request, pump  # noqa: E402
from test_webhooks_receiver import Receiver, SmtpSink, on_loopback  # noqa: E402

from lastmile.adapters.breakers import (  # noqa: E402
    BreakerChannel,
    Breakers,
    BreakerTransport,
    webhook_breaker_name,
)
from lastmile.adapters.notify.channels import SmtpChannel  # noqa: E402
from lastmile.adapters.webhooks.http import HttpTransport  # noqa: E402
from lastmile.app import drive, notifications, webhooks  # noqa: E402
from lastmile.app.circuits import CircuitOpen  # noqa: E402
from lastmile.core.webhooks import RetryPolicy  # noqa: E402

RESET_S = 0.3  # pybreaker times the open state on the wall clock: kept short


def state_metric(name: str) -> float | None:
    return REGISTRY.get_sample_value("lastmile_breaker_state", {"name": name})


def test_an_open_breaker_postpones_messages_without_spending_attempts_and_a_trial_closes_it(
        sqlite_platform, caplog):
    p = sqlite_platform
    svc = p.services
    m = p.seed.merchant_ids[0]
    receiver = Receiver(fail_first=2)
    try:
        webhooks.register_endpoint(on_loopback(svc), m, url=receiver.url,
                                   event_types=("delivery.created",))
        for i in range(4):
            drive.create_delivery(svc, a_request(p, external_delivery_id=f"ext-{i}"))
        pump(p)
        breakers = Breakers(fail_max=2, reset_s=RESET_S)
        transport = BreakerTransport(HttpTransport(allow_private_networks=True), breakers)
        name = webhook_breaker_name(receiver.url)
        policy = RetryPolicy(base_s=10, max_attempts=5)
        caplog.set_level(logging.INFO, logger="lastmile.breakers")

        assert webhooks.send_webhooks_once(svc, transport, policy=policy) == 4
        assert len(receiver.requests) == 2  # two 503s opened it; the other two never left
        by_attempts = sorted(msg.attempts for msg in webhooks.list_messages(svc, m))
        assert by_attempts == [0, 0, 1, 1]
        postponed = [msg for msg in webhooks.list_messages(svc, m) if msg.attempts == 0]
        assert all(msg.status.value == "pending" and "open" in (msg.last_error or "")
                   for msg in postponed)
        assert all(webhooks.message_attempts(svc, m, msg.id) == [] for msg in postponed)
        assert breakers.get(name).current_state == "open" and state_metric(name) == 2
        assert REGISTRY.get_sample_value("lastmile_breaker_failures_total", {"name": name}) == 2

        time.sleep(RESET_S + 0.1)  # the receiver is back (fail_first spent); a trial may go
        p.clock.advance(60)
        while webhooks.send_webhooks_once(svc, transport, policy=policy) > 0:
            pass
        messages = webhooks.list_messages(svc, m)
        assert [msg.status.value for msg in messages] == ["delivered"] * 4
        assert sorted(msg.attempts for msg in messages) == [1, 1, 2, 2]
        assert len(receiver.requests) == 6
        assert breakers.get(name).current_state == "closed" and state_metric(name) == 0
        changes = [r.getMessage() for r in caplog.records if r.name == "lastmile.breakers"]
        assert changes == [f"circuit breaker {name}: closed -> open",
                           f"circuit breaker {name}: open -> half-open",
                           f"circuit breaker {name}: half-open -> closed"]
    finally:
        receiver.close()


def test_one_receivers_outage_does_not_trip_another_receivers_breaker():
    assert webhook_breaker_name("http://127.0.0.1:8081/a") != webhook_breaker_name(
        "http://127.0.0.1:8082/a")
    assert webhook_breaker_name("https://hooks.example/x") == "webhook:hooks.example:443"


def test_a_4xx_answer_is_the_receivers_refusal_not_an_outage():
    class Refusing:
        def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> int:
            return 410

    breakers = Breakers(fail_max=1, reset_s=60)
    transport = BreakerTransport(Refusing(), breakers)
    assert [transport.post("http://r.test/", b"", {}, 1) for _ in range(3)] == [410] * 3
    assert breakers.get("webhook:r.test:80").current_state == "closed"


def test_a_down_smtp_relay_opens_its_breaker_and_later_notices_wait_unspent(sqlite_platform):
    p = sqlite_platform
    svc = p.services
    drive.create_delivery(svc, a_request(p))
    pump(p)
    sink = SmtpSink()
    port = sink.server_address[1]
    sink.server_close()  # connection refused
    breakers = Breakers(fail_max=1, reset_s=60)
    channels = {"email": BreakerChannel("email", SmtpChannel(
        host="127.0.0.1", port=port, sender="noreply@lastmile.test", timeout_s=2), breakers)}
    with svc.uow() as uow:
        before = len([n for n in uow.notifications.list() if n.channel == "email"])
    assert before >= 1
    for _ in range(3):  # the other channels' rows have no channel here: they fail as before
        notifications.send_notifications_once(svc, channels)
        p.clock.advance(3600)
    with svc.uow() as uow:
        emails = [n for n in uow.notifications.list() if n.channel == "email"]
    assert breakers.get("notify:email").current_state == "open"
    # one real attempt each at most (the first tripped it); three rounds spent no more
    assert sum(n.attempts for n in emails) == 1, [n.attempts for n in emails]
    assert all(n.status.value == "pending" and n.last_error for n in emails)
    assert any("circuit 'notify:email' is open" in (n.last_error or "") for n in emails)


def test_the_payment_wrapper_fails_fast_while_open_and_recovers_after_a_trial():
    breakers = Breakers(fail_max=2, reset_s=RESET_S)
    calls: list[str] = []

    def charge(amount_minor: int) -> str:
        calls.append("call")
        if len(calls) <= 2:
            raise ConnectionError("processor unreachable")
        return f"ch_{amount_minor}"

    for _ in range(2):
        with pytest.raises(ConnectionError):
            breakers.call("payments", charge, 1250)
    with pytest.raises(CircuitOpen) as refused:
        breakers.call("payments", charge, 1250)
    assert len(calls) == 2 and 0 < refused.value.retry_after_s <= RESET_S
    time.sleep(RESET_S + 0.05)
    assert breakers.call("payments", charge, 1250) == "ch_1250"
    assert breakers.get("payments").current_state == "closed"
    assert [b["name"] for b in breakers.snapshot()] == ["payments"]
