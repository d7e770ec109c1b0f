"""The acting tenant over the ops API, its branding on the pages, and the dashboard of one
tenant never showing another's orders or couriers."""

from __future__ import annotations

from lastmile.app.tenancy import acting_as
from tenant_worlds import confirmed_order, courier_on_shift, ops_key, tenant_world

BRANDING = {"display_name": "Acme Eats", "primary_colour": "#0A7D4F",
            "logo_url": "https://cdn.acme.example/logo.svg", "support_email": "help@acme.example"}


def test_ops_read_their_tenant_with_its_version_as_etag(api):
    r = api.client.get("/v1/ops/tenant", headers=api.h("ops"))
    assert r.status_code == 200, r.text
    t = r.json()
    assert (t["id"], t["kind"], t["config"]) == ("lastmile:default", "live", {})
    assert r.headers["etag"] == f'"{t["version"]}"'
    assert api.client.get("/v1/ops/tenant", headers=api.h("consumer")).status_code == 403


def test_a_config_patch_merges_validates_and_refuses_a_stale_version(api):
    h = api.h("ops")
    version = api.client.get("/v1/ops/tenant", headers=h).json()["version"]
    r = api.client.patch("/v1/ops/tenant/config", headers={**h, "If-Match": f'"{version}"'},
                         json={"fees": {"base_delivery_fee_minor": 299, "per_km_minor": 70}})
    assert r.status_code == 200, r.text
    r = api.client.patch("/v1/ops/tenant/config", headers=h,
                         json={"fees": {"per_km_minor": None}, "branding": BRANDING})
    assert r.status_code == 200, r.text
    t = r.json()
    assert t["config"]["fees"] == {"base_delivery_fee_minor": 299}
    assert t["config"]["branding"]["primary_colour"] == "#0a7d4f"
    assert t["version"] == version + 2

    bad = api.client.patch("/v1/ops/tenant/config", headers=h,
                           json={"fees": {"base_delivery_fee_minor": -5}})
    assert bad.status_code == 422
    problem = bad.json()
    assert problem["field"] == "config.fees.base_delivery_fee_minor"
    assert problem["detail"] == "config.fees.base_delivery_fee_minor must be >= 0 (got -5)"

    stale = api.client.patch("/v1/ops/tenant/config", headers={**h, "If-Match": f'"{version}"'},
                             json={"currency": "USD"})
    assert stale.status_code == 409 and stale.json()["code"] == "concurrent_update"
    assert api.client.patch("/v1/ops/tenant/config", headers={**h, "If-Match": "x"},
                            json={}).status_code == 422
    deep = api.client.patch("/v1/ops/tenant/config", headers=h, json={"fees": {"a": {"b": 1}}})
    assert deep.status_code == 422 and deep.json()["field"] == "config.fees.a"
    assert api.client.patch("/v1/ops/tenant/config", headers=h, json=[1]).status_code == 422


def test_quotes_follow_a_fee_change_made_over_the_api(api):
    from test_orders_api import _body

    body = _body(api)

    def fee() -> int:
        r = api.client.post("/v1/consumer/quotes", json=body, headers=api.h("consumer"))
        assert r.status_code == 200, r.text
        return int(r.json()["prices"]["delivery_fee"]["amount_minor"])

    before = fee()
    api.client.patch("/v1/ops/tenant/config", headers=api.h("ops"),
                     json={"fees": {"base_delivery_fee_minor": 199 + 1000}})
    assert fee() - before == 1000


def test_the_tracking_page_wears_the_tenants_branding(api):
    from test_drive_api import body

    api.client.patch("/v1/ops/tenant/config", headers=api.h("ops"), json={"branding": BRANDING})
    d = api.client.post("/v1/drive/deliveries", json=body(), headers=api.h("merchant")).json()
    page = api.client.get(d["tracking_url"])
    assert page.status_code == 200
    assert "<title>Your delivery · Acme Eats</title>" in page.text
    assert "#0a7d4f" in page.text and 'src="https://cdn.acme.example/logo.svg"' in page.text
    assert "mailto:help@acme.example" in page.text
    assert "img-src 'self' data: https://cdn.acme.example;" in \
        page.headers["content-security-policy"]
    brand = api.client.get(d["tracking_url"] + ".json").json()["brand"]
    assert brand == {"name": "Acme Eats", "primary_colour": "#0a7d4f",
                     "logo_url": "https://cdn.acme.example/logo.svg",
                     "support_email": "help@acme.example"}


def test_an_unbranded_tenant_shows_its_name_and_no_logo(api):
    from test_drive_api import body

    d = api.client.post("/v1/drive/deliveries", json=body(), headers=api.h("merchant")).json()
    page = api.client.get(d["tracking_url"])
    assert "<img" not in page.text and "img-src 'self' data:;" in \
        page.headers["content-security-policy"]
    assert api.client.get(d["tracking_url"] + ".json").json()["brand"]["name"] == "Default"


def test_the_dashboard_serves_the_branding_script_and_allows_https_logos(api):
    page = api.client.get("/ops/dashboard?region=reg_demo")
    assert "img-src 'self' data: https:;" in page.headers["content-security-policy"]
    assert 'id="brand-name"' in page.text
    js = api.client.get("/ops/dashboard/assets/dashboard.js").text
    assert '"/v1/ops/tenant"' in js and "--accent" in js


def test_a_tenants_dashboard_never_shows_another_tenants_orders_or_couriers(api):
    p = api.platform
    s = p.services
    a = tenant_world(s, "acme:eats", {"branding": {"display_name": "Acme"}})
    b = tenant_world(s, "beta:eats")
    ends = p.clock.now() + 4 * 3600
    orders = {w.tenant: confirmed_order(s, w).id for w in (a, b)}
    couriers = {w.tenant: courier_on_shift(s, w, ends_at=ends) for w in (a, b)}
    h = {"Authorization": f"Bearer {ops_key(s, a)}"}
    get = api.client.get

    assert get("/v1/ops/tenant", headers=h).json()["config"]["branding"] == {"display_name": "Acme"}
    assert [r["id"] for r in get("/v1/ops/regions", headers=h).json()["regions"]] == [a.region_id]
    open_ids = [o["id"] for o in
                get(f"/v1/ops/regions/{a.region_id}/open-orders", headers=h).json()["orders"]]
    assert open_ids == [orders["acme:eats"]]
    assert [o["id"] for o in get("/v1/ops/orders", headers=h).json()["orders"]] == open_ids
    kpis = get(f"/v1/ops/regions/{a.region_id}/kpis", headers=h).json()
    assert (kpis["open_orders"], kpis["active_couriers"]) == (1, 1)
    live = get(f"/v1/ops/regions/{a.region_id}/live", headers=h).json()
    assert couriers["beta:eats"] not in str(live) and orders["beta:eats"] not in str(live)
    merchants = get(f"/v1/ops/regions/{a.region_id}/merchants", headers=h).json()["merchants"]
    assert {m["id"] for m in merchants} == set(a.seed.merchant_ids)

    for path in (f"/v1/ops/regions/{b.region_id}/open-orders",
                 f"/v1/ops/regions/{b.region_id}/map",
                 f"/v1/ops/regions/{b.region_id}/kpis",
                 f"/v1/ops/orders/{orders['beta:eats']}",
                 f"/v1/ops/orders/{orders['beta:eats']}/timeline"):
        r = get(path, headers=h)
        assert r.status_code == 404, (path, r.status_code, r.text)
        assert orders["beta:eats"] not in r.text or "no order" in r.text
    # The other way round, with the other tenant's key: the mirror image.
    hb = {"Authorization": f"Bearer {ops_key(s, b)}"}
    assert [o["id"] for o in get("/v1/ops/orders", headers=hb).json()["orders"]] == \
        [orders["beta:eats"]]
    assert get(f"/v1/ops/regions/{a.region_id}/open-orders", headers=hb).status_code == 404
    # The default tenant's ops see neither.
    default_ids = {o["id"] for o in get("/v1/ops/orders", headers=api.h("ops")).json()["orders"]}
    assert not default_ids & set(orders.values())
    with acting_as(b.tenant):
        assert get("/v1/ops/tenant", headers=hb).json()["id"] == "beta:eats"


def test_the_cli_shows_and_configures_a_tenant(sqlite_platform, tmp_path):
    import json

    from typer.testing import CliRunner

    from lastmile.cli import app as cli

    where = ["--data-dir", str(sqlite_platform.container.settings.data_dir)]
    run = CliRunner().invoke
    assert run(cli, ["tenants", "create", "acme:eats", *where]).exit_code == 0
    patch = tmp_path / "config.json"
    patch.write_text(json.dumps({"dispatch": {"max_bundle_size": 2}, "currency": "EUR"}))
    done = run(cli, ["tenants", "configure", "acme:eats", "--file", str(patch),
                     "--set", "fees.base_delivery_fee_minor=299",
                     "--set", "branding.display_name=Acme Eats",
                     "--unset", "currency", *where])
    assert done.exit_code == 0, done.output
    shown = run(cli, ["tenants", "show", "acme:eats", *where])
    assert shown.exit_code == 0, shown.output
    doc = json.loads(shown.output)
    assert doc["config"] == {"dispatch": {"max_bundle_size": 2},
                             "fees": {"base_delivery_fee_minor": 299},
                             "branding": {"display_name": "Acme Eats"}}
    assert doc["version"] == 1
    bad = run(cli, ["tenants", "configure", "acme:eats", "--set", "fees.per_km_minor=-1",
                    *where])
    assert bad.exit_code == 2 and "config.fees.per_km_minor must be >= 0 (got -1)" in bad.output
    assert run(cli, ["tenants", "configure", "acme:eats", "--set", "nopath", *where]
               ).exit_code == 2
    assert run(cli, ["tenants", "show", "nobody:here", *where]).exit_code == 2
