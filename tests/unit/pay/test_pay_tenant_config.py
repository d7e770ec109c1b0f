"""The ``pay`` key of a tenant's config: overrides of the deployment's pay policy."""

import pytest

from lastmile.core.errors import InvalidInput
from lastmile.core.pay import DEFAULT_POLICY, TimeWindow
from lastmile.core.tenant_config import CONFIG_KEYS, parse_tenant_config


def test_pay_overrides_apply_on_top_of_the_deployments_policy():
    config = parse_tenant_config({"pay": {"base_per_order_minor": 40_000,
                                          "rush_windows": [[1_080, 1_260]]}})
    policy = config.pay_policy(DEFAULT_POLICY)
    assert policy.base_per_order_minor == 40_000
    assert policy.rush_windows == (TimeWindow(start_min=1_080, end_min=1_260),)
    assert policy.guarantee_per_hour_minor == DEFAULT_POLICY.guarantee_per_hour_minor
    assert config.to_json() == {"pay": {"base_per_order_minor": 40_000,
                                        "rush_windows": [[1_080, 1_260]]}}
    assert "pay" in CONFIG_KEYS


def test_no_pay_key_leaves_the_policy_alone():
    config = parse_tenant_config({})
    assert config.pay_policy(DEFAULT_POLICY) is DEFAULT_POLICY and "pay" not in config.to_json()


@pytest.mark.parametrize(("pay", "field"), [
    ({"rush_multiplier": "0.5"}, "config.pay.rush_multiplier"),
    ({"per_km_minor": -1}, "config.pay.per_km_minor"),
    ({"surge": 1}, "config.pay.surge"),
    ("cheap", "config.pay"),
])
def test_a_bad_pay_override_names_its_path(pay, field):
    with pytest.raises(InvalidInput) as err:
        parse_tenant_config({"pay": pay})
    assert err.value.field == field
    assert err.value.message.startswith(field) or field == "config.pay"
