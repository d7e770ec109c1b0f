"""Webhook signatures and the retry schedule."""

from __future__ import annotations

import pytest

from lastmile.core.errors import InvalidInput
from lastmile.core.webhooks import (
    MessageStatus,
    RetryPolicy,
    after_failure,
    backoff_s,
    backoff_schedule,
    sign,
    signature_header,
    validate_filter,
    validate_url,
    verify,
    wants,
)

BODY = b'{"event_id":"evt_1","type":"delivery.picked_up"}'


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    # From another implementation: printf '%s' "1700000000.$BODY" | openssl dgst -sha256 -hmac s3cret
    expected = "f1cd0cf4403fdfefa0a648e02fd17d7ec0f09c30117810f8e4ebd125c8e0c03e"
    assert sign("s3cret", 1_700_000_000, BODY) == expected
    assert signature_header("s3cret", 1_700_000_000, BODY) == f"t=1700000000,v1={expected}"


def test_a_receiver_verifies_a_fresh_signature() -> None:
    header = signature_header("s3cret", 1_700_000_000, BODY)
    assert verify("s3cret", header, BODY, now=1_700_000_100)


@pytest.mark.parametrize("secret, body, now", [
    ("other", BODY, 1_700_000_000),  # wrong secret
    ("s3cret", BODY + b" ", 1_700_000_000),  # body changed
    ("s3cret", BODY, 1_700_000_301),  # replayed too late
])
def test_a_receiver_rejects_a_wrong_secret_a_changed_body_or_a_stale_timestamp(
        secret: str, body: bytes, now: float) -> None:
    assert not verify(secret, signature_header("s3cret", 1_700_000_000, BODY), body, now=now)


@pytest.mark.parametrize("header", ["", "garbage", "t=abc,v1=00", "v1=00", "t=1700000000"])
def test_a_malformed_header_is_not_valid(header: str) -> None:
    assert not verify("s3cret", header, BODY, now=1_700_000_000)


def test_backoff_doubles_from_the_base_up_to_the_cap() -> None:
    policy = RetryPolicy(base_s=10, cap_s=60, max_attempts=6)
    assert backoff_schedule(policy) == (10, 20, 40, 60, 60)
    assert backoff_s(1, policy) == 10


def test_after_the_last_attempt_the_message_is_dead() -> None:
    policy = RetryPolicy(base_s=10, cap_s=60, max_attempts=3)
    assert after_failure(2, 100.0, policy) == (MessageStatus.PENDING, 120.0)
    assert after_failure(3, 100.0, policy) == (MessageStatus.DEAD, None)


def test_attempts_count_from_one() -> None:
    with pytest.raises(InvalidInput):
        backoff_s(0, RetryPolicy())


def test_an_empty_filter_or_star_wants_everything() -> None:
    assert wants((), "delivery.delivered") and wants(("*",), "delivery.eta_under")
    assert not wants(("delivery.delivered",), "delivery.picked_up")


def test_unknown_event_types_are_refused() -> None:
    with pytest.raises(InvalidInput) as e:
        validate_filter(("delivery.teleported",))
    assert e.value.field == "event_types"


@pytest.mark.parametrize("header", [
    "t=1700000000,v1=\u00e9\u00e9",  # a non-ASCII candidate (headers arrive latin-1 decoded)
    "t=" + "9" * 400 + ",v1=00",  # a timestamp too large for a float
    "t=\u0661\u0667,v1=00",  # Unicode digits are not a timestamp we issue
])
def test_a_hostile_header_is_not_valid_rather_than_an_error(header: str) -> None:
    assert not verify("s3cret", header, BODY, now=1_700_000_000)


@pytest.mark.parametrize("url", [
    "https://", "http://", "https:///path", "http://x y/hook", "https://user:pw@example.test/h",
    "https://example.test/h\nX: 1", "https://example.test:99999/h", "https://example.test/h#frag",
])
def test_a_webhook_url_needs_a_host_and_nothing_that_could_leak_or_smuggle(url: str) -> None:
    with pytest.raises(InvalidInput) as e:
        validate_url(url)
    assert e.value.field == "url"


def test_a_plain_webhook_url_with_port_path_and_query_is_accepted() -> None:
    url = "https://hooks.example.test:8443/lastmile?tenant=7"
    assert validate_url(url) == url
