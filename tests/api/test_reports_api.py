"""GET /v1/ops/reports/settlement: ops read a day's settlement; bad input is 422."""

from datetime import datetime
from zoneinfo import ZoneInfo

from lastmile.adapters.bus.outbox import relay_once
from lastmile.app.ordering import LineRequest, OrderRequest, place_order
from lastmile.bootstrap import install_ledger
from lastmile.core.geo import Point


def test_ops_read_the_days_settlement_per_merchant_and_per_courier(api):
    p = api.platform
    install_ledger(p.container)
    m = p.seed.merchant_ids[0]
    with p.services.uow() as uow:
        item = uow.merchants.get(m).menu[0].id
    place_order(p.services, OrderRequest(
        consumer_id=p.seed.consumer_ids[0], merchant_id=m,
        lines=(LineRequest(item_id=item, quantity=1),),
        dropoff=Point(lat=37.445, lng=-122.15)), idempotency_key="k")
    while relay_once(p.services, p.container.bus) > 0:
        pass
    day = datetime.fromtimestamp(p.clock.now(), ZoneInfo("America/Los_Angeles")).date()
    r = api.client.get("/v1/ops/reports/settlement", headers=api.h("ops"),
                       params={"date": day.isoformat(), "kind": "merchant"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["time_zone"] == "America/Los_Angeles" and body["kind"] == "merchant"
    assert body["rows"] == []  # a hold moves no money yet: nothing charged, no take rate
    assert [(x["currency"], x["gmv_minor"], x["take_rate"]) for x in body["platform"]] == [
        ("USD", 0, None)]
    c = api.client.get("/v1/ops/reports/settlement", headers=api.h("ops"),
                       params={"date": day.isoformat(), "kind": "courier"})
    assert c.status_code == 200 and c.json()["earnings_by_hour"] == {}


def test_a_bad_date_kind_or_region_is_422_and_only_ops_read_it(api):
    h = api.h("ops")
    bad = api.client.get("/v1/ops/reports/settlement", headers=h, params={"date": "2026-13-01"})
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_date"
    kind = api.client.get("/v1/ops/reports/settlement", headers=h,
                          params={"date": "2026-11-29", "kind": "consumer"})
    assert kind.status_code == 422 and kind.json()["code"] == "invalid_kind"
    region = api.client.get("/v1/ops/reports/settlement", headers=h,
                            params={"date": "2026-11-29", "region": "reg_nope"})
    assert region.status_code == 422 and region.json()["code"] == "invalid_region"
    who = api.client.get("/v1/ops/reports/settlement", headers=api.h("merchant"),
                         params={"date": "2026-11-29"})
    assert who.status_code == 403
