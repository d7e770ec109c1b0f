"""``lastmile ledger check|balance|statement|settlement``: the double-entry ledger
(docs/ledger.md) and its daily settlement (docs/reports.md)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from lastmile.cli_support import DataDir, DbUrl, TenantOpt, as_tenant, platform_services

if TYPE_CHECKING:
    pass

T = TypeVar("T")
ledger_app = typer.Typer(
    help="The double-entry ledger: audit it, read an account's balance and statement, and a "
    "day's settlement per merchant or courier. "
    "Accounts: consumer:<id>, merchant_payable:<id>, courier_payable:<id>, credits:<id>, "
    "holds:<id>, platform_revenue, processor_clearing, tax_payable, refunds, "
    "processor_holds. Amounts: debit > 0, credit < 0.", no_args_is_help=True)
console = Console()

Currency = Annotated[str | None, typer.Option(help="only this ISO 4217 currency (USD)")]


@ledger_app.command("check")
def ledger_check(
    tenant: Annotated[str | None, typer.Option(
        help="only this tenant (default: every tenant with a region, and the default one)")]
    = None,
    data_dir: DataDir = None, database_url: DbUrl = None,
) -> None:
    """Prove every transaction balances per currency, every account's balance equals the
    sum of its postings, and the ledger agrees with the orders (holds, captures, refunds).
    Exits 0 only when everything balances, 1 otherwise. Run it once the relay has posted
    every event (an order with no transaction yet is listed as unposted, not failed)."""
    from lastmile.app import ledger
    from lastmile.app.every_tenant import tenants_at_work
    from lastmile.core.tenancy import DEFAULT_TENANT

    with platform_services(data_dir, database_url) as services:
        names = [tenant] if tenant else sorted({DEFAULT_TENANT, *tenants_at_work(services)})
        reports = {name: as_tenant(console, name, lambda: ledger.check(services)) for name in names}
    failed = False
    for name, report in reports.items():
        state = "[green]balanced[/green]" if report.ok else "[red]NOT balanced[/red]"
        console.print(f"{name}: {state}: {report.transactions} transactions, "
                      f"{report.postings} postings, {report.orders_checked} orders agree"
                      + (f", {len(report.unposted_orders)} not posted yet"
                         if report.unposted_orders else ""))
        for problem in report.problems:
            console.print(f"  [red]{problem}[/red]", highlight=False)
        failed = failed or not report.ok
    if failed:
        raise typer.Exit(1)


@ledger_app.command("balance")
def ledger_balance(
    account: Annotated[str, typer.Argument(help="e.g. merchant_payable:mer_123")],
    currency: Currency = None, tenant: TenantOpt = None,
    data_dir: DataDir = None, database_url: DbUrl = None,
) -> None:
    """The account's balance per currency (debit > 0, credit < 0: a payable the platform
    owes is negative)."""
    from lastmile.app import ledger
    from lastmile.core.money import Money

    with platform_services(data_dir, database_url) as services:
        found = as_tenant(console, tenant,
                          lambda: ledger.balance(services, account, currency=currency))
    if not found:
        console.print(f"{account}: no postings" + (f" in {currency}" if currency else ""))
    for cur, minor in found.items():
        console.print(f"{account}: {Money(amount_minor=minor, currency=cur)} ({minor} minor)",
                      highlight=False)


@ledger_app.command("statement")
def ledger_statement(
    account: Annotated[str, typer.Argument(help="e.g. courier_payable:cou_7")],
    currency: Currency = None, tenant: TenantOpt = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="at most this many lines")] = 100,
    data_dir: DataDir = None, database_url: DbUrl = None,
) -> None:
    """The account's postings, oldest first: when, transaction kind, order, amount and the
    running balance."""
    from datetime import UTC, datetime

    from lastmile.app import ledger
    from lastmile.core.money import Money

    with platform_services(data_dir, database_url) as services:
        found = as_tenant(console, tenant, lambda: ledger.statement(
            services, account, currency=currency, limit=limit))
    table = Table(title=f"{account}: {len(found)} posting(s)")
    for col in ("at", "kind", "order", "amount", "balance", "transaction"):
        table.add_column(col)
    for e in found:
        line = e.line
        table.add_row(datetime.fromtimestamp(line.created_at, UTC).isoformat(timespec="seconds"),
                      line.kind.value, line.order_id or "",
                      str(Money(amount_minor=line.amount_minor, currency=line.currency)),
                      str(Money(amount_minor=e.running_minor, currency=line.currency)),
                      line.key)
    console.print(table)


@ledger_app.command("settlement")
def ledger_settlement(
    date: Annotated[str, typer.Option("--date", help="the day, YYYY-MM-DD, in the region's "
                                      "time zone")],
    kind: Annotated[str, typer.Option(help="merchant or courier: one CSV row per party")]
    = "merchant",
    out: Annotated[Path | None, typer.Option(help="write the CSV here (default: stdout)")]
    = None,
    plot: Annotated[Path | None, typer.Option(help="also write a PNG of the couriers' "
                                              "earnings per hour of the day")] = None,
    region: Annotated[str | None, typer.Option(help="the region whose time zone bounds the "
                                               "day (needed when the tenant's regions are in "
                                               "several zones)")] = None,
    tenant: TenantOpt = None, data_dir: DataDir = None, database_url: DbUrl = None,
) -> None:
    """A day's settlement from the ledger's postings: per merchant (orders, gross sales,
    commission, fees, refunds, net payable, payouts) or per courier (trips, pay, tips,
    guarantee top-ups, earnings, payouts), in minor units, as CSV. The platform's take rate
    per currency (net revenue / GMV) goes to stderr. Bad --date or --kind exits 2."""
    from lastmile.app import reports

    def make() -> reports.DailySettlement:
        day = reports.parse_day(date, field="--date")
        reports.parse_kind(kind, field="--kind")
        return reports.daily_settlement(services, day, region_id=region)

    with platform_services(data_dir, database_url) as services:
        report = as_tenant(console, tenant, make)
    which = reports.parse_kind(kind)
    text = reports.to_csv(report, which)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    err = Console(stderr=True)
    for p in report.settlement.platform:
        rate = "-" if p.take_rate is None else f"{p.take_rate:.2%}"
        err.print(f"{p.currency}: GMV {p.gmv_minor}, net revenue {p.net_revenue_minor} "
                  f"(minor units), take rate {rate}", highlight=False)
    if plot is not None:
        from lastmile.report_plots import write_earnings_plot

        write_earnings_plot(report, plot)
        err.print(f"wrote {plot}", highlight=False)
