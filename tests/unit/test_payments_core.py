"""The built-in processor's rules and the payment values (pure)."""

from __future__ import annotations

import random

import pytest

from lastmile.core.errors import InvalidInput
from lastmile.core.money import Money
from lastmile.core.payments import (
    DeclinePolicy,
    PaymentOp,
    check_key,
    derived_key,
    reference_for,
)
from lastmile.settings import Settings

USD_10 = Money(amount_minor=1000, currency="USD")


def test_the_default_policy_approves_everything_and_never_stalls():
    policy, rng = DeclinePolicy(), random.Random(1)
    assert all(policy.decline_reason(amount=USD_10, card_token=None, rng=rng) is None
               for _ in range(100))
    assert all(policy.timeout(rng) is None for _ in range(100))


def test_a_test_card_token_wins_over_the_amount_limit():
    policy = DeclinePolicy(max_amount_minor=1)
    rng = random.Random(1)
    assert policy.decline_reason(amount=USD_10, card_token="tok_chargeDeclinedExpiredCard",
                                 rng=rng) == "expired_card"
    assert policy.decline_reason(amount=USD_10, card_token=None, rng=rng) == "amount_too_large"
    assert policy.decline_reason(amount=Money(amount_minor=1, currency="USD"),
                                 card_token=None, rng=rng) is None


def test_random_declines_and_time_outs_follow_their_probabilities():
    policy = DeclinePolicy(decline_probability=0.2, timeout_probability=0.3)
    rng = random.Random(7)
    declines = sum(policy.decline_reason(amount=USD_10, card_token=None, rng=rng) is not None
                   for _ in range(5000))
    stalls = [policy.timeout(rng) for _ in range(5000)]
    assert 850 < declines < 1150
    assert 1300 < sum(s is not None for s in stalls) < 1700
    assert {s for s in stalls if s is not None} == {"before", "after"}


def test_a_probability_outside_zero_one_is_refused_naming_the_field():
    with pytest.raises(InvalidInput, match="timeout_probability must be in"):
        DeclinePolicy(timeout_probability=1.5)


def test_keys_are_checked_and_derived_keys_name_the_order_and_step():
    assert derived_key("ord_1", PaymentOp.CAPTURE) == "ord_1:capture"
    assert derived_key("ord_1", PaymentOp.REFUND, part="r2") == "ord_1:refund:r2"
    with pytest.raises(InvalidInput, match="1..200"):
        check_key("")
    with pytest.raises(InvalidInput):
        check_key("k" * 201)


def test_a_reference_is_stable_per_tenant_and_key():
    a = reference_for("bip", "acme:eu", "k")
    assert a == reference_for("bip", "acme:eu", "k") and a.startswith("bip_")
    assert a != reference_for("bip", "acme:us", "k") != reference_for("bip", "acme:eu", "k2")


def test_payment_settings_are_read_from_the_environment():
    s = Settings.from_env({"LASTMILE_PAYMENTS": "stripe", "LASTMILE_STRIPE_API_KEY": "sk_x",
                           "LASTMILE_STRIPE_WEBHOOK_SECRET": "whsec_x",
                           "LASTMILE_STRIPE_API_BASE": "http://127.0.0.1:9"})
    assert (s.payments, s.stripe_api_key, s.stripe_webhook_secret, s.stripe_api_base) == (
        "stripe", "sk_x", "whsec_x", "http://127.0.0.1:9")
    assert "sk_x" not in repr(s) and "whsec_x" not in repr(s)
    assert Settings.from_env({}).payments == "builtin"
    with pytest.raises(ValueError, match="LASTMILE_PAYMENTS must be one of builtin, stripe"):
        Settings.from_env({"LASTMILE_PAYMENTS": "paypal"})
