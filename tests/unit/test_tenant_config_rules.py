"""A tenant's config: every rule names its field path; overrides keep the policies' rules."""

from dataclasses import fields

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lastmile.core.dispatch import DispatchPolicy, PolicyKind
from lastmile.core.errors import InvalidInput
from lastmile.core.geo import Point
from lastmile.core.model import parse_phone
from lastmile.core.money import Money
from lastmile.core.pricing import PricingPolicy, SupplyDemand, quote
from lastmile.core.tenant_config import (
    Branding,
    Parties,
    TenantConfig,
    merge_patch,
    parse_tenant_config,
)

MINOR_FEES = [f.name for f in fields(PricingPolicy) if f.name.endswith("_minor")]


def refused(raw):
    with pytest.raises(InvalidInput) as err:
        parse_tenant_config(raw)
    return err.value


def test_an_empty_config_is_the_deployment_default():
    config = parse_tenant_config({})
    assert config == TenantConfig()
    assert config.pricing(PricingPolicy()) == PricingPolicy()
    assert config.dispatch_policy(DispatchPolicy()) == DispatchPolicy()
    assert config.to_json() == {}


def test_fee_overrides_apply_on_top_of_the_base_policy():
    base = PricingPolicy(per_km_minor=80)
    config = parse_tenant_config({"fees": {"base_delivery_fee_minor": 299, "included_km": 3}})
    policy = config.pricing(base)
    assert policy.base_delivery_fee_minor == 299 and policy.included_km == 3.0
    assert policy.per_km_minor == 80  # not overridden: the deployment's value


def test_dispatch_overrides_apply_with_the_kind_by_name():
    config = parse_tenant_config({"dispatch": {"kind": "greedy", "max_bundle_size": 2}})
    policy = config.dispatch_policy(DispatchPolicy(horizon_s=600.0))
    assert policy.kind is PolicyKind.GREEDY and policy.max_bundle_size == 2
    assert policy.horizon_s == 600.0


def test_a_negative_fee_is_refused_naming_its_path_and_value():
    err = refused({"fees": {"base_delivery_fee_minor": -5}})
    assert err.field == "config.fees.base_delivery_fee_minor"
    assert err.message == "config.fees.base_delivery_fee_minor must be >= 0 (got -5)"


def test_fee_rules_across_fields_hold_against_the_base_policy():
    err = refused({"fees": {"service_fee_max_minor": 50}})  # below the default minimum, 99
    assert err.field == "config.fees.service_fee_min_minor"
    assert "service_fee_max_minor (50)" in err.message
    assert parse_tenant_config({"fees": {"service_fee_max_minor": 50,
                                         "service_fee_min_minor": 10}}).fees


@pytest.mark.parametrize(("raw", "path", "words"), [
    ({"colour": 1}, "config.colour", "is not a known key"),
    ({"fees": {"base_fee": 1}}, "config.fees.base_fee", "is not a known key"),
    ({"branding": {"logo": "x"}}, "config.branding.logo", "is not a known key"),
    ({"fees": {"per_km_minor": 1.5}}, "config.fees.per_km_minor", "must be an integer"),
    ({"fees": {"per_km_minor": True}}, "config.fees.per_km_minor", "must be an integer"),
    ({"fees": {"surge_cap": "2"}}, "config.fees.surge_cap", "must be a number"),
    ({"fees": {"surge_cap": 0.5}}, "config.fees.surge_cap", "must be >= 1"),
    ({"fees": {"service_fee_bp": 10_001}}, "config.fees.service_fee_bp", "must be <= 10000"),
    ({"fees": {"courier_speed_mps": 0}}, "config.fees.courier_speed_mps", "must be > 0"),
    ({"fees": []}, "config.fees", "must be an object"),
    ({"dispatch": {"max_bundle_size": 0}}, "config.dispatch.max_bundle_size", ">= 1"),
    ({"dispatch": {"max_bundle_size": 9}}, "config.dispatch.max_bundle_size", "<= 8"),
    ({"dispatch": {"horizon_s": -1}}, "config.dispatch.horizon_s", "must be > 0"),
    ({"dispatch": {"idle_weight": -0.1}}, "config.dispatch.idle_weight", "must be >= 0"),
    ({"dispatch": {"kind": "fastest"}}, "config.dispatch.kind", "greedy, optimised"),
    ({"dispatch": {"allow_updates": 1}}, "config.dispatch.allow_updates", "true or false"),
    ({"currency": "eur"}, "config.currency", "ISO 4217"),
    ({"currency": 978}, "config.currency", "ISO 4217"),
    ({"branding": {"primary_colour": "green"}}, "config.branding.primary_colour", "#RRGGBB"),
    ({"branding": {"logo_url": "http://cdn.example/logo.png"}}, "config.branding.logo_url",
     "https"),
    ({"branding": {"logo_url": "https://user:pw@cdn.example/l.png"}},
     "config.branding.logo_url", "without credentials"),
    ({"branding": {"logo_url": "javascript:alert(1)"}}, "config.branding.logo_url", "https"),
    ({"branding": {"support_email": "help"}}, "config.branding.support_email", "e-mail"),
    ({"branding": {"display_name": ""}}, "config.branding.display_name", "1-100"),
    ({"branding": {"display_name": "a\nb"}}, "config.branding.display_name", "control"),
    ({"parties": {"phone_required": "yes"}}, "config.parties.phone_required", "true or false"),
])
def test_each_rule_names_the_field_path(raw, path, words):
    err = refused(raw)
    assert err.field == path and err.message.startswith(path) and words in err.message


def test_duplicate_phones_cannot_be_allowed_and_the_refusal_says_why():
    err = refused({"parties": {"phone_unique": False}})
    assert err.field == "config.parties.phone_unique" and err.code == "unsupported_config"
    assert "unique within its tenant" in err.message


def test_branding_is_normalised_and_kept():
    config = parse_tenant_config({"branding": {
        "display_name": " Acme Eats ", "primary_colour": "#0A7D4F",
        "logo_url": "https://cdn.acme.example/logo.svg", "support_email": "help@acme.example"}})
    assert config.branding == Branding(display_name="Acme Eats", primary_colour="#0a7d4f",
                                       logo_url="https://cdn.acme.example/logo.svg",
                                       support_email="help@acme.example")


def test_the_stored_form_holds_only_what_is_set():
    raw = {"currency": "EUR", "parties": {"phone_required": True},
           "fees": {"per_km_minor": 70}, "branding": {"display_name": "A"}}
    stored = parse_tenant_config(raw).to_json()
    assert stored == {"currency": "EUR", "fees": {"per_km_minor": 70},
                      "branding": {"display_name": "A"},
                      "parties": {"phone_required": True, "phone_unique": True}}
    assert parse_tenant_config(stored) == parse_tenant_config(raw)
    assert parse_tenant_config({"parties": {}}).parties == Parties()


def test_a_merge_patch_merges_objects_and_removes_nulls_without_changing_its_inputs():
    target = {"fees": {"per_km_minor": 70, "base_delivery_fee_minor": 299}, "currency": "EUR"}
    patch = {"fees": {"per_km_minor": None, "service_fee_bp": 500}, "currency": None,
             "branding": {"display_name": "A"}}
    assert merge_patch(target, patch) == {
        "fees": {"base_delivery_fee_minor": 299, "service_fee_bp": 500},
        "branding": {"display_name": "A"}}
    assert target["fees"] == {"per_km_minor": 70, "base_delivery_fee_minor": 299}
    assert patch["currency"] is None


@pytest.mark.parametrize(("given_", "stored"), [
    ("+1 (650) 555-0100", "+16505550100"), ("06 12 34 56 78", "0612345678"),
    ("+44.20.7946.0958", "+442079460958")])
def test_phones_are_stored_as_digits_after_an_optional_plus(given_, stored):
    assert parse_phone(given_) == stored


@pytest.mark.parametrize("bad", ["", "12345", "+1 650 555 01OO", "1" * 16, "++16505550100"])
def test_a_phone_that_is_not_6_to_15_digits_is_refused(bad):
    with pytest.raises(InvalidInput) as err:
        parse_phone(bad)
    assert err.value.field == "phone" and err.value.code == "invalid_phone"


# --- properties -------------------------------------------------------------------------

SCALAR = (st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True)
          | st.text(max_size=8) | st.sampled_from(["EUR", "#0a7d4f", "https://a.example/l",
                                                   "a@b.example", "greedy"]))
KEYS = st.sampled_from(["currency", "branding", "fees", "dispatch", "parties", "other"])
NAMES = st.sampled_from([f.name for f in fields(PricingPolicy)]
                        + [f.name for f in fields(DispatchPolicy)]
                        + [f.name for f in fields(Branding)] + [f.name for f in fields(Parties)]
                        + ["other"])


@given(st.dictionaries(KEYS, SCALAR | st.lists(SCALAR, max_size=2)
                       | st.dictionaries(NAMES, SCALAR, max_size=4), max_size=5))
def test_validation_either_accepts_or_names_a_path_inside_the_config(raw):
    try:
        config = parse_tenant_config(raw)
    except InvalidInput as err:
        assert err.field is not None and err.field.startswith("config")
        assert err.message.startswith(err.field)
        return
    assert parse_tenant_config(config.to_json()) == config


@given(st.dictionaries(st.sampled_from(MINOR_FEES), st.integers(-1_000, 5_000), min_size=1),
       st.integers(0, 11_900), st.integers(0, 5_000))  # inside max_distance_m (12 km)
def test_an_accepted_fee_override_never_makes_a_negative_quote(fees, dropoff_m, subtotal):
    try:
        policy = parse_tenant_config({"fees": fees}).pricing(PricingPolicy())
    except InvalidInput as err:
        assert err.field.startswith("config.fees.")
        return
    pickup = Point(lat=37.44, lng=-122.14)
    dropoff = Point(lat=37.44 + dropoff_m / 1.3 / 111_195, lng=-122.14)
    q = quote(pickup=pickup, dropoff=dropoff, subtotal=Money(amount_minor=subtotal,
              currency="USD"), tip=Money.zero("USD"), tax_rate_bp=900, prep_time_s=600,
              supply=SupplyDemand(open_orders=3, available_couriers=1), now=0.0, policy=policy)
    lines = (q.prices.delivery_fee, q.prices.service_fee, q.prices.small_order_fee, q.prices.tax)
    assert all(m.amount_minor >= 0 for m in lines)
    assert q.prices.service_fee.amount_minor <= policy.service_fee_max_minor
