"""A day of real orders through the platform settles from the ledger: the settlement's
totals reconcile with the ledger's balances, the CSV has a row per party, the plot is
written, and the take rate is per currency (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from test_ledger import _drain, _histories
from typer.testing import CliRunner

from lastmile.app import ledger, reports
from lastmile.app.tenancy import acting_as
from lastmile.app.tenants import create_tenant
from lastmile.bootstrap import install_ledger
from lastmile.sim.seed import seed_demo, tenant_region_id

ZONE = "America/Los_Angeles"  # the seeded region's


def _today(p):  # type: ignore[no-untyped-def]
    return datetime.fromtimestamp(p.clock.now(), ZoneInfo(ZONE)).date()


def _owed(svc, account):  # type: ignore[no-untyped-def]
    return -ledger.balance(svc, account).get("USD", 0)


def test_a_day_of_orders_settles_to_the_ledgers_balances(platform):
    install_ledger(platform.container)
    svc = platform.services
    done, by_consumer, by_merchant, by_ops, _ = _histories(platform, platform.seed)
    _drain(platform)
    ledger.give_back(svc, done.id, 200, key="refund-1")
    day = reports.daily_settlement(svc, _today(platform))
    assert day.time_zone == ZONE
    s = day.settlement
    charged = {done.merchant_id, by_consumer.merchant_id}  # merchant and ops charge nothing
    assert {m.merchant_id for m in s.merchants} == charged
    for m in s.merchants:  # before payouts: net payable = minus the payable's balance
        assert m.net_payable_minor == _owed(svc, f"merchant_payable:{m.merchant_id}")
        assert m.gross_sales_minor - m.commission_minor == m.net_payable_minor
        assert m.payouts_minor == 0
    assert sum(m.refunds_minor for m in s.merchants) == 200
    for c in s.couriers:
        assert c.earnings_minor == _owed(svc, f"courier_payable:{c.courier_id}")
        assert sum(c.earnings_by_hour) == c.earnings_minor
    tipped = next(c for c in s.couriers if c.courier_id == platform.seed.courier_ids[0])
    assert tipped.tips_minor == 300 and tipped.trips == 1
    [usd] = s.platform
    assert usd.currency == "USD"
    assert usd.net_revenue_minor == -ledger.balance(svc, "platform_revenue")["USD"]
    assert usd.gmv_minor == ledger.balance(svc, "processor_clearing")["USD"] + 200
    assert usd.gmv_minor == (done.prices.total.amount_minor
                             + by_consumer.prices.subtotal.amount_minor
                             + by_consumer.prices.service_fee.amount_minor
                             + by_consumer.prices.tax.amount_minor)
    assert usd.fees_minor == (done.prices.delivery_fee + done.prices.service_fee
                              + done.prices.small_order_fee
                              + by_consumer.prices.service_fee).amount_minor
    assert usd.take_rate == round(usd.net_revenue_minor / usd.gmv_minor, 4)
    assert usd.refunds_minor == 200

    merchant = f"merchant_payable:{done.merchant_id}"
    owed = _owed(svc, merchant)
    ledger.pay_out(svc, merchant, "USD", key="payout-1")
    after = reports.daily_settlement(svc, _today(platform)).settlement
    paid = next(m for m in after.merchants if m.merchant_id == done.merchant_id)
    assert paid.payouts_minor == owed and paid.net_payable_minor == owed
    assert paid.net_payable_minor - paid.payouts_minor == _owed(svc, merchant) == 0

    tomorrow = reports.daily_settlement(svc, _today(platform) + timedelta(days=1))
    assert tomorrow.settlement.merchants == () and tomorrow.settlement.platform == ()


def test_take_rate_is_per_currency_and_tenants_stay_apart(platform):
    install_ledger(platform.container)
    svc = platform.services
    _histories(platform, platform.seed)
    with acting_as("acme:tokyo"):
        create_tenant(svc, "acme:tokyo", config={"currency": "JPY"})
        yen_seed = seed_demo(svc, seed=6, merchants=2, consumers=4, couriers=3,
                             region_id=tenant_region_id("acme:tokyo"))
        yen = _histories(platform, yen_seed)
    _drain(platform)
    usd = reports.daily_settlement(svc, _today(platform)).settlement.platform
    with acting_as("acme:tokyo"):
        jpy = reports.daily_settlement(svc, _today(platform)).settlement.platform
        assert [p.currency for p in jpy] == ["JPY"]
        assert jpy[0].net_revenue_minor == -ledger.balance(svc, "platform_revenue")["JPY"]
        assert jpy[0].gmv_minor == ledger.balance(svc, "processor_clearing")["JPY"]
        assert jpy[0].take_rate is not None and 0 < jpy[0].take_rate < 1
    assert [p.currency for p in usd] == ["USD"]
    assert yen[0].currency == "JPY"


def test_settlement_cli_writes_a_csv_per_party_and_the_earnings_plot(sqlite_platform,
                                                                     tmp_path):
    from lastmile.cli import app

    p = sqlite_platform
    install_ledger(p.container)
    done, *_ = _histories(p, p.seed)
    _drain(p)
    day = _today(p).isoformat()
    args = ["--data-dir", str(tmp_path)]
    out, plot = tmp_path / "couriers.csv", tmp_path / "earnings.png"
    r = CliRunner().invoke(app, ["ledger", "settlement", "--date", day, "--kind", "courier",
                                 "--out", str(out), "--plot", str(plot), *args])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert out.read_text().startswith("courier_id,currency,trips,pay_minor,tips_minor")
    assert sorted(r["courier_id"] for r in rows) == sorted(p.seed.courier_ids)
    assert plot.stat().st_size > 1000 and plot.read_bytes()[:4] == b"\x89PNG"
    shown = CliRunner().invoke(app, ["ledger", "settlement", "--date", day, *args])
    assert shown.exit_code == 0, shown.output
    merchants = list(csv.DictReader(io.StringIO(shown.stdout)))
    assert [m["merchant_id"] for m in merchants] == [done.merchant_id]  # one row: one party
    assert int(merchants[0]["net_payable_minor"]) > 0
    bad = CliRunner().invoke(app, ["ledger", "settlement", "--date", "29-11-2026", *args])
    assert bad.exit_code == 2 and "--date" in bad.output
    wrong = CliRunner().invoke(app, ["ledger", "settlement", "--date", day, "--kind", "x",
                                     *args])
    assert wrong.exit_code == 2 and "--kind" in wrong.output
