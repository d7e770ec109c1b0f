"""GET /v1/ops/ledger/accounts/{account}/balance: ops read a balance; bad names are 422."""

from lastmile.adapters.bus.outbox import relay_once
from lastmile.app.ordering import LineRequest, OrderRequest, place_order
from lastmile.bootstrap import install_ledger
from lastmile.core.geo import Point


def test_ops_read_a_balance_after_an_order_is_placed(api):
    p = api.platform
    install_ledger(p.container)
    m = p.seed.merchant_ids[0]
    with p.services.uow() as uow:
        item = uow.merchants.get(m).menu[0].id
    order = place_order(p.services, OrderRequest(
        consumer_id=p.seed.consumer_ids[0], merchant_id=m,
        lines=(LineRequest(item_id=item, quantity=1),),
        dropoff=Point(lat=37.445, lng=-122.15)), idempotency_key="k").order
    while relay_once(p.services, p.container.bus) > 0:
        pass
    r = api.client.get("/v1/ops/ledger/accounts/processor_holds/balance", headers=api.h("ops"))
    assert r.status_code == 200, r.text
    [usd] = r.json()["balances"]
    assert usd["currency"] == "USD" and usd["amount_minor"] == order.prices.total.amount_minor
    held = api.client.get(f"/v1/ops/ledger/accounts/holds:{order.consumer_id}/balance",
                          headers=api.h("ops"), params={"currency": "USD"})
    assert held.json()["balances"][0]["amount_minor"] == -order.prices.total.amount_minor


def test_an_unknown_account_kind_is_422_and_an_empty_account_404(api):
    bad = api.client.get("/v1/ops/ledger/accounts/wallet:x/balance", headers=api.h("ops"))
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_account"
    empty = api.client.get("/v1/ops/ledger/accounts/refunds/balance", headers=api.h("ops"))
    assert empty.status_code == 404 and empty.json()["code"] == "account_not_found"
    who = api.client.get("/v1/ops/ledger/accounts/refunds/balance", headers=api.h("consumer"))
    assert who.status_code == 403
