"""The probe's own key (probe.run.local_key): issued in a test tenant through the local
database, revoked afterwards; live tenants and missing databases refused, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from lastmile.app.auth import authenticate
from lastmile.app.tenants import create_tenant, get_tenant, list_tenants
from lastmile.bootstrap import build
from lastmile.core.errors import Unauthorized
from lastmile.core.tenancy import TenantKind
from lastmile.probe.journey import ProbeRefused
from lastmile.probe.run import local_key
from lastmile.settings import Settings


@pytest.fixture
def database(tmp_path: Path):  # type: ignore[no-untyped-def]
    container = build(Settings(data_dir=tmp_path))  # a migrated deployment database
    yield container
    container.close()


def test_the_key_acts_in_a_new_test_tenant_and_is_revoked_afterwards(database, tmp_path):
    svc = database.services
    with local_key("doortest:fresh", Settings(data_dir=tmp_path)) as key:
        who = authenticate(svc, key)
        assert (who.role, who.tenant) == ("ops", "doortest:fresh")
    assert get_tenant(svc, "doortest:fresh").kind is TenantKind.TEST
    fresh = build(Settings(data_dir=tmp_path))  # another process: no cached key
    try:
        with pytest.raises(Unauthorized):
            authenticate(fresh.services, key)
    finally:
        fresh.close()


def test_live_tenants_and_live_names_are_refused_without_a_trace(database, tmp_path):
    svc = database.services
    create_tenant(svc, "acme:eats", kind=TenantKind.LIVE)
    before = [t.id for t in list_tenants(svc)]
    with pytest.raises(ProbeRefused, match="acme:eats is a live tenant"):
        with local_key("acme:eats", Settings(data_dir=tmp_path)):
            pass
    with pytest.raises(ProbeRefused, match="not a test tenant's name"):
        with local_key("acme:drive", Settings(data_dir=tmp_path)):
            pass
    assert [t.id for t in list_tenants(svc)] == before
    with pytest.raises(ProbeRefused, match="live tenant"):
        with local_key("lastmile:default", Settings(data_dir=tmp_path)):
            pass


def test_no_database_here_is_refused_and_none_is_created(tmp_path: Path):
    empty = tmp_path / "nothing"
    with pytest.raises(ProbeRefused, match="does not exist"):
        with local_key("doortest:probe", Settings(data_dir=empty)):
            pass
    assert not empty.exists()
