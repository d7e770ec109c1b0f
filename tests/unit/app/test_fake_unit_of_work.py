"""The fake unit of work's own rules: commit flag, staging, and the compare-and-set of
versioned aggregates (HELPERS.md), on a stand-in value that has a version today."""

from dataclasses import dataclass

import pytest

from fake_repos import MemoryDb, cas_save
from fakes import FakeUnitOfWorkFactory, an_order
from lastmile.core.errors import Conflict


@dataclass(frozen=True, slots=True, kw_only=True)
class Versioned:
    id: str
    name: str
    version: int = 0


def test_committed_is_set_by_commit_only():
    factory = FakeUnitOfWorkFactory()
    with factory() as uow:
        uow.orders.add(an_order())
    assert factory.last.committed is False
    with factory() as uow:
        uow.orders.add(an_order())
        uow.commit()
    assert factory.last.committed is True


def test_a_versioned_save_moves_the_version_on_and_a_stale_one_is_a_conflict():
    db = MemoryDb()
    table = db.table("things")
    table.put("t1", Versioned(id="t1", name="a"))
    saved = cas_save(table, Versioned(id="t1", name="b"), "thing")
    assert saved == Versioned(id="t1", name="b", version=1) and table.get("t1") == saved
    with pytest.raises(Conflict) as err:
        cas_save(table, Versioned(id="t1", name="c"), "thing")
    assert err.value.code == "concurrent_update" and table.get("t1") == saved


def test_a_versioned_save_compares_with_what_another_unit_committed_meanwhile():
    db = MemoryDb()
    first, second = db.table("things"), db.table("things")
    first.put("t1", Versioned(id="t1", name="a"))
    first.commit()
    read_by_second = second.get("t1")
    cas_save(first, Versioned(id="t1", name="b"), "thing")
    first.commit()
    with pytest.raises(Conflict):
        cas_save(second, read_by_second, "thing")


def test_two_units_that_add_different_rows_both_keep_them():
    factory = FakeUnitOfWorkFactory()
    with factory() as a, factory() as b:
        a.orders.add(an_order(id="ord_a"))
        b.orders.add(an_order(id="ord_b"))
        a.commit()
        b.commit()
    with factory(read_only=True) as uow:
        assert sorted(uow.orders.get_many(["ord_a", "ord_b"])) == ["ord_a", "ord_b"]
