"""``each_as_its_tenant``: the loop body runs as each item's tenant, and the caller's tenant
is back afterwards however the loop ends."""

from dataclasses import dataclass

import pytest

from lastmile.app.every_tenant import each_as_its_tenant
from lastmile.app.tenancy import acting_as, current_tenant


@dataclass(frozen=True)
class Item:
    id: str
    tenant: str


ITEMS = [Item(id="a", tenant="acme:city"), Item(id="b", tenant="doortest:sandbox")]


def test_the_body_runs_as_each_items_tenant_and_the_callers_comes_back():
    with acting_as("lastmile:default"):
        seen = [(item.id, current_tenant()) for item in each_as_its_tenant(ITEMS)]
        assert current_tenant() == "lastmile:default"
    assert seen == [("a", "acme:city"), ("b", "doortest:sandbox")]


def test_the_callers_tenant_comes_back_after_a_break():
    with acting_as("lastmile:default"):
        for item in each_as_its_tenant(ITEMS):
            assert current_tenant() == item.tenant
            break
        assert current_tenant() == "lastmile:default"


def test_the_callers_tenant_comes_back_after_an_error():
    def run() -> None:
        for _ in each_as_its_tenant(ITEMS):
            raise RuntimeError("send failed")

    with acting_as("lastmile:default"):
        with pytest.raises(RuntimeError):
            run()
        assert current_tenant() == "lastmile:default"
