"""``lastmile testkit consumer|merchant|courier|order``: test parties in a test tenant,
through the local database (the same functions as ``/v1/testkit/...``, ``app.testkit``).

Each command prints what it made as one JSON object (with ``api_key`` when ``--with-key``),
so a script can act as the party next. A live tenant is refused (exit 2).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from lastmile.bootstrap import Container

testkit_app = typer.Typer(
    help="Test parties for end-to-end checks, in a TEST tenant only: consumers with a fake "
    "location, merchants from menu templates, couriers on shift (optionally accepting "
    "offers by themselves) and orders. docs/probe.md.", no_args_is_help=True)
errors = Console(stderr=True)

Tenant = Annotated[str, typer.Option(help="the TEST tenant, L0:L1 (env LASTMILE_TENANT)",
                                     envvar="LASTMILE_TENANT")]
Region = Annotated[str | None, typer.Option(
    help="region id (default: the tenant's first, created when it has none)")]
Lat = Annotated[float | None, typer.Option(help="latitude (default: random in the region)")]
Lng = Annotated[float | None, typer.Option(help="longitude (with --lat)")]
Name = Annotated[str | None, typer.Option(help="display name (default: Test <kind> <hex>)")]
WithKey = Annotated[bool, typer.Option("--with-key", help="also issue an API key for it")]
DataDir = Annotated[Path | None, typer.Option(
    help="Folder for the SQLite file (env LASTMILE_DATA_DIR; default ./data).")]
DbUrl = Annotated[str | None, typer.Option(
    help="Database URL (env LASTMILE_DATABASE_URL; default SQLite in the data dir).")]


@contextmanager
def _in_tenant(tenant: str, data_dir: Path | None, database_url: str | None
               ) -> Iterator[Container]:
    """A container acting as ``tenant`` (created when missing if its name is a test
    tenant's, ``core.tenancy.default_kind``); a domain error exits 2 with its message."""
    from dataclasses import replace

    from lastmile.app.tenancy import acting_as
    from lastmile.app.tenants import ensure_tenant
    from lastmile.bootstrap import build
    from lastmile.core.errors import DomainError
    from lastmile.core.tenancy import TenantKind, default_kind, parse_tenant
    from lastmile.settings import Settings

    base = Settings.from_env()
    settings = replace(base, data_dir=data_dir or base.data_dir,
                       database_url=database_url or base.database_url)
    try:
        tid = parse_tenant(tenant, field="--tenant")
        container = build(settings)
    except DomainError as exc:
        errors.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(2) from exc
    try:
        if default_kind(tid) is TenantKind.TEST:
            ensure_tenant(container.services, tid)
        with acting_as(tid):
            yield container
    except DomainError as exc:
        errors.print(f"[red]{exc.code}: {exc.message}[/red]")
        raise typer.Exit(2) from exc
    finally:
        container.close()


def _emit(out: dict[str, Any]) -> None:
    typer.echo(json.dumps(out, default=str))


def _run(tenant: str, data_dir: Path | None, database_url: str | None,
         make: Callable[[Container], dict[str, Any]]) -> None:
    with _in_tenant(tenant, data_dir, database_url) as container:
        out = make(container)
    _emit(out)


@testkit_app.command("consumer")
def consumer(tenant: Tenant, region_id: Region = None, lat: Lat = None, lng: Lng = None,
             name: Name = None, with_key: WithKey = False, data_dir: DataDir = None,
             database_url: DbUrl = None) -> None:
    """A test consumer living at --lat/--lng (or a random point of the region)."""
    from lastmile.app import testkit

    def make(c: Container) -> dict[str, Any]:
        made = testkit.create_consumer(c.services, region_id=region_id, lat=lat, lng=lng,
                                       name=name, with_key=with_key)
        home = made.party.addresses[0].location
        return {"id": made.party.id, "region_id": made.party.region_id,
                "lat": home.lat, "lng": home.lng, "api_key": made.api_key}

    _run(tenant, data_dir, database_url, make)


@testkit_app.command("merchant")
def merchant(tenant: Tenant, template: Annotated[str, typer.Option(
                 help="menu template: pizza, sushi, burgers or salads")] = "pizza",
             region_id: Region = None, lat: Lat = None, lng: Lng = None, name: Name = None,
             with_key: WithKey = False, data_dir: DataDir = None,
             database_url: DbUrl = None) -> None:
    """A test merchant with a template's menu."""
    from lastmile.app import testkit

    def make(c: Container) -> dict[str, Any]:
        made = testkit.create_merchant(c.services, template=template, region_id=region_id,
                                       lat=lat, lng=lng, name=name, with_key=with_key)
        m = made.party
        return {"id": m.id, "region_id": m.region_id, "lat": m.location.lat,
                "lng": m.location.lng, "items": [{"id": i.id, "name": i.name,
                                                  "price_minor": i.price.amount_minor}
                                                 for i in m.menu],
                "api_key": made.api_key}

    _run(tenant, data_dir, database_url, make)


@testkit_app.command("courier")
def courier(tenant: Tenant, region_id: Region = None, lat: Lat = None, lng: Lng = None,
            name: Name = None, shift_s: Annotated[int, typer.Option(
                min=600, max=57600, help="shift length in seconds")] = 3600,
            auto_accept: Annotated[bool, typer.Option(
                "--auto-accept", help="its offers are accepted by themselves")] = False,
            with_key: WithKey = False, data_dir: DataDir = None,
            database_url: DbUrl = None) -> None:
    """A test courier on shift at --lat/--lng (or a random point of the region). Its
    position reaches a running server's dispatcher with its first ping (or, in the first
    minutes of the shift, from the stored location)."""
    from lastmile.app import testkit

    def make(c: Container) -> dict[str, Any]:
        made = testkit.create_courier(c.services, region_id=region_id, lat=lat, lng=lng,
                                      name=name, shift_s=shift_s, auto_accept=auto_accept,
                                      with_key=with_key)
        k = made.party
        return {"id": k.id, "region_id": k.region_id, "shift_id": k.shift_id,
                "device_id": k.device_id, "auto_accept": auto_accept, "api_key": made.api_key}

    _run(tenant, data_dir, database_url, make)


@testkit_app.command("order")
def order(tenant: Tenant,
          consumer_id: Annotated[str, typer.Option("--consumer", help="test consumer id")],
          merchant_id: Annotated[str, typer.Option("--merchant", help="test merchant id")],
          item: Annotated[list[str] | None, typer.Option(
              help="item id, one of each (repeat); default the first on the menu")] = None,
          tip_minor: Annotated[int, typer.Option(min=0)] = 0,
          require_pin: Annotated[bool, typer.Option("--require-pin")] = False,
          data_dir: DataDir = None, database_url: DbUrl = None) -> None:
    """Quote and place an order for a test consumer from a test merchant."""
    from lastmile.app import testkit

    def make(c: Container) -> dict[str, Any]:
        placed = testkit.place_order(c.services, consumer_id=consumer_id,
                                     merchant_id=merchant_id, item_ids=item or (),
                                     tip_minor=tip_minor, require_pin=require_pin)
        o = placed.order
        return {"id": o.id, "status": o.status.value, "total_minor": o.prices.total.amount_minor,
                "quote_total_minor": placed.quote.prices.total.amount_minor,
                "dropoff_pin": o.dropoff_pin}

    _run(tenant, data_dir, database_url, make)
