from lastmile.core.delivery.notices import retry_delay_s
from lastmile.core.webhooks import RetryPolicy, backoff_s


def test_webhook_backoff_returns_the_cap_for_any_attempt_count():
    policy = RetryPolicy()
    assert backoff_s(10_000, policy) == policy.cap_s


def test_notice_retry_delay_returns_the_cap_for_any_attempt_count():
    assert retry_delay_s(10_000, cap_s=3600.0) == 3600.0
