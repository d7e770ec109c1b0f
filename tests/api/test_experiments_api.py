"""/v1/ops/experiments: ops define, list, start and stop experiments; bad input is a 4xx
naming the field; other roles are refused."""

from __future__ import annotations

from lastmile.core.pricing import PricingPolicy

BODY = {"name": "fee-up", "lever": "fees", "design": "ab",
        "variants": [{"name": "control"},
                     {"name": "treatment", "params": {"base_delivery_fee_minor": 999}}]}


def test_ops_create_list_start_and_stop_an_experiment(api):
    h = api.h("ops")
    made = api.client.post("/v1/ops/experiments", json=BODY, headers=h)
    assert made.status_code == 201, made.text
    exp = made.json()
    assert exp["state"] == "draft" and exp["unit"] == "consumer"
    assert exp["variants"][1]["params"] == {"base_delivery_fee_minor": 999}
    listed = api.client.get("/v1/ops/experiments", headers=h).json()["experiments"]
    assert [e["id"] for e in listed] == [exp["id"]]
    assert api.client.get(f"/v1/ops/experiments/{exp['name']}", headers=h).json() == exp
    started = api.client.post(f"/v1/ops/experiments/{exp['id']}/start", headers=h)
    assert started.status_code == 200 and started.json()["state"] == "running"
    again = api.client.post(f"/v1/ops/experiments/{exp['id']}/start", headers=h)
    assert again.status_code == 409 and again.json()["code"] == "invalid_transition"
    running = api.client.get("/v1/ops/experiments", headers=h, params={"state": "running"})
    assert [e["id"] for e in running.json()["experiments"]] == [exp["id"]]
    stopped = api.client.post(f"/v1/ops/experiments/{exp['id']}/stop", headers=h)
    assert stopped.status_code == 200 and stopped.json()["state"] == "stopped"
    obs = api.client.get(f"/v1/ops/experiments/{exp['id']}/observations", headers=h)
    assert obs.status_code == 200 and obs.json()["observations"] == []


def test_bad_definitions_are_4xx_naming_the_field(api):
    h = api.h("ops")
    cases = [
        ({**BODY, "variants": [{"name": "control"},
                               {"name": "t", "params": {"per_km_minor": -1}}]},
         422, "variants[1].params.per_km_minor"),
        ({**BODY, "variants": [{"name": "control"},
                               {"name": "t", "params": {"no_such_knob": 1}}]},
         422, "variants[1].params.no_such_knob"),
        ({**BODY, "variants": [{"name": "a"}, {"name": "b"}]}, 422, "variants"),
        ({**BODY, "design": "switchback", "unit": "consumer"}, 422, "unit"),
        ({**BODY, "lever": "dispatch"}, 422, "unit"),
        ({**BODY, "design": "market_ab",
          "strata_metrics": {"reg_a": [1.0], "reg_b": [1.0, 2.0]}}, 422, "strata_metrics"),
        ({**BODY, "share": 2}, 422, "share"),
    ]
    for body, status, field in cases:
        r = api.client.post("/v1/ops/experiments", json=body, headers=h)
        assert r.status_code == status, (body, r.text)
        assert field in r.text, (field, r.text)
    api.client.post("/v1/ops/experiments", json=BODY, headers=h)
    taken = api.client.post("/v1/ops/experiments", json=BODY, headers=h)
    assert taken.status_code == 409 and taken.json()["code"] == "experiment_name_taken"
    missing = api.client.get("/v1/ops/experiments/nope", headers=h)
    assert missing.status_code == 404
    draft = api.client.get("/v1/ops/experiments/fee-up/observations", headers=h)
    assert draft.status_code == 409 and draft.json()["code"] == "experiment_not_started"
    bad_metric = api.client.get("/v1/ops/experiments/fee-up/observations", headers=h,
                                params={"metric": "nope"})
    assert bad_metric.status_code == 422


def test_only_ops_keys_reach_experiments(api):
    for who in ("consumer", "merchant", "courier"):
        r = api.client.post("/v1/ops/experiments", json=BODY, headers=api.h(who))
        assert r.status_code == 403, who
    assert api.client.get("/v1/ops/experiments").status_code == 401


def test_ops_read_a_running_experiments_analysis_once_both_arms_have_orders(api):
    from test_orders_api import _body

    from lastmile.core.experiments.assignment import Variant, assign

    arms = (Variant(name="control"), Variant(name="treatment"))
    p = api.platform
    ids = p.seed.consumer_ids  # four
    # A salt that puts two consumers in each arm (a variance per arm).
    salt = next(s for s in (f"s{i}" for i in range(100))
                if sorted(assign(s, c, arms).name for c in ids)
                == ["control", "control", "treatment", "treatment"])
    h = api.h("ops")
    exp = api.client.post("/v1/ops/experiments", json={**BODY, "salt": salt}, headers=h).json()
    assert api.client.post(f"/v1/ops/experiments/{exp['id']}/start", headers=h).is_success
    url = f"/v1/ops/experiments/{exp['id']}/analysis"
    fee = {"metric": "delivery_fee_minor"}
    none = api.client.get(url, headers=h, params=fee)
    assert none.status_code == 409 and none.json()["code"] == "no_observations"
    by_arm = sorted(ids, key=lambda c: assign(salt, c, arms).name)  # c, c, t, t
    for n, consumer in enumerate((by_arm[0], by_arm[2], by_arm[1], by_arm[3])):
        if n == 2:  # one consumer per arm: too few for a variance, not a bad request
            short = api.client.get(url, headers=h, params=fee)
            assert short.status_code == 409, short.text
            assert short.json()["code"] == "not_enough_observations"
        key = p.key("consumer", consumer)
        r = api.client.post("/v1/consumer/orders", json=_body(api), headers={
            "Authorization": f"Bearer {key}", "Idempotency-Key": f"o-{n}"})
        assert r.status_code == 201, r.text
    got = api.client.get(url, headers=h, params=fee)
    assert got.status_code == 200, got.text
    (effect,) = got.json()["effects"]
    # Same merchant, same drop-off: the fee differs by the base fee alone.
    base = PricingPolicy().base_delivery_fee_minor
    assert effect["variant"] == "treatment" and effect["effect"] == 999 - base
    assert effect["n_control"] == 2 and effect["n_variant"] == 2
    bad = api.client.get(url, headers=h, params={"alpha": 0.9})
    assert bad.status_code == 422 and "alpha" in bad.text
