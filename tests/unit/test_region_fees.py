"""Per-region fee rules in a tenant's config (``region_fees``): applied after the tenant's
``fees``, each region's policy held to the policy's rules, errors naming the path."""

import pytest

from lastmile.core.errors import InvalidInput
from lastmile.core.pricing import PricingPolicy
from lastmile.core.tenant_config import MAX_REGION_FEES, parse_tenant_config

BASE = PricingPolicy()


def test_a_regions_overrides_apply_on_top_of_the_tenants():
    config = parse_tenant_config({"fees": {"base_delivery_fee_minor": 300, "per_km_minor": 80},
                                  "region_fees": {"reg_sf": {"base_delivery_fee_minor": 500}}})
    sf = config.pricing(BASE, "reg_sf")
    assert (sf.base_delivery_fee_minor, sf.per_km_minor) == (500, 80)
    other = config.pricing(BASE, "reg_la")
    assert (other.base_delivery_fee_minor, other.per_km_minor) == (300, 80)
    assert config.pricing(BASE) == other


def test_region_fees_round_trip_through_the_stored_form():
    config = parse_tenant_config({"region_fees": {"reg_b": {"surge_cap": 2.0},
                                                  "reg_a": {"quote_ttl_s": 120}}})
    assert [r for r, _ in config.region_fees] == ["reg_a", "reg_b"]
    assert parse_tenant_config(config.to_json()) == config


@pytest.mark.parametrize("raw,field", [
    ({"reg_1": {"surge_cap": 0.5}}, "config.region_fees.reg_1.surge_cap"),
    ({"reg_1": {"nope": 1}}, "config.region_fees.reg_1.nope"),
    ({"reg_1": {"per_km_minor": 1.5}}, "config.region_fees.reg_1.per_km_minor"),
    ({"reg 1": {"per_km_minor": 1}}, "config.region_fees.reg 1"),
    ({"reg_1": 3}, "config.region_fees.reg_1"),
    ([], "config.region_fees"),
])
def test_a_bad_region_rule_names_its_path(raw, field):
    with pytest.raises(InvalidInput) as err:
        parse_tenant_config({"region_fees": raw})
    assert err.value.field == field and err.value.message.startswith(field)


def test_a_region_rule_is_checked_with_the_tenants_fees():
    # each side alone is valid; the region policy they make together is not
    with pytest.raises(InvalidInput) as err:
        parse_tenant_config({"fees": {"service_fee_max_minor": 500},
                             "region_fees": {"reg_1": {"service_fee_min_minor": 600}}})
    assert err.value.field == "config.region_fees.reg_1.service_fee_min_minor"


def test_too_many_regions_are_refused():
    raw = {f"reg_{i}": {"per_km_minor": 1} for i in range(MAX_REGION_FEES + 1)}
    with pytest.raises(InvalidInput) as err:
        parse_tenant_config({"region_fees": raw})
    assert err.value.field == "config.region_fees"
