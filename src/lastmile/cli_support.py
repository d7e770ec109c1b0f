"""What the ``lastmile`` sub-commands that act on a platform's database share: its options
(data dir, database URL, tenant), the services built from them, and running a step as a
tenant with a domain error turned into exit code 2."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console

if TYPE_CHECKING:
    from lastmile.app.context import Services

T = TypeVar("T")

DataDir = Annotated[Path | None, typer.Option(
    help="Folder for the SQLite file (env LASTMILE_DATA_DIR; default ./data).")]
DbUrl = Annotated[str | None, typer.Option(
    help="Database URL (env LASTMILE_DATABASE_URL; default SQLite in the data dir).")]
TenantOpt = Annotated[str | None, typer.Option(
    help="The tenant, L0:L1 (env LASTMILE_TENANT; default lastmile:default)",
    envvar="LASTMILE_TENANT")]


@contextmanager
def platform_services(data_dir: Path | None, database_url: str | None) -> Iterator[Services]:
    """The platform's services on the settings from the environment, with these overrides."""
    from lastmile.bootstrap import build
    from lastmile.settings import Settings

    base = Settings.from_env()
    container = build(replace(base, data_dir=data_dir or base.data_dir,
                              database_url=database_url or base.database_url))
    try:
        yield container.services
    finally:
        container.close()


def as_tenant(console: Console, tenant: str | None, step: Callable[[], T]) -> T:
    """``step()`` as ``tenant`` (default: the default tenant); a domain error is printed
    with its code and field and exits 2."""
    from lastmile.app.tenancy import acting_as
    from lastmile.core.errors import DomainError
    from lastmile.core.tenancy import DEFAULT_TENANT, parse_tenant

    try:
        with acting_as(parse_tenant(tenant or DEFAULT_TENANT, field="--tenant")):
            return step()
    except DomainError as exc:
        where = f" ({exc.field})" if exc.field else ""
        console.print(f"[red]{exc.code}{where}: {exc.message}[/red]")
        raise typer.Exit(2) from exc
