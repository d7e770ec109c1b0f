"""Shared fixtures: platforms on SQLite (always) and PostgreSQL (marked, real server)."""

from __future__ import annotations

import random
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from databases import PG_URL, drop_schema, pg_schema_url, postgres_available  # noqa: E402, F401
from fakes import FakeUnitOfWorkFactory  # noqa: E402
from lastmile.adapters.bus.memory import InProcessBus  # noqa: E402
from lastmile.adapters.clock import ManualClock, SequentialIds  # noqa: E402
from lastmile.adapters.db.engine import make_engine, migrate, sqlite_url  # noqa: E402
from lastmile.adapters.live.memory import MemoryLiveStore  # noqa: E402
from lastmile.app.auth import issue_api_key  # noqa: E402
from lastmile.app.context import Services  # noqa: E402
from lastmile.app.tracking import MemoryTrackStates, Tracking  # noqa: E402
from lastmile.bootstrap import Container, build  # noqa: E402
from lastmile.settings import Settings  # noqa: E402
from lastmile.sim.seed import SeedSummary, seed_demo  # noqa: E402


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Make ``--dist loadgroup`` (scripts/test) keep an ``xdist_group`` on one worker again.

    pytest-xdist 3.8 tells its scheduler a test's group by appending ``@<group>`` to the node
    id it sends from the worker, through the ``_nodeid`` attribute that pytest 9.2 no longer
    reads (its node ids are structured: pytest-dev/pytest-xdist#1386, fix pending), so the
    groups were silently spread over all workers. This appends the suffix to the structured
    id the same way, in workers only, once xdist's own hook has run.
    """
    if not getattr(config.option, "loadgroup", False):
        return
    for item in items:
        groups = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                         for m in item.iter_markers("xdist_group")})
        suffix = "@" + "_".join(groups)
        if groups and not item.nodeid.endswith(suffix) and hasattr(item, "_id"):
            if item.nodeid.endswith("]"):  # pytest would print it as "name[param]@group]"
                raise pytest.UsageError(f"{item.nodeid}: an xdist_group on a parametrized "
                                        "test is not supported by tests/conftest.py")
            item._id = type(item._id).parse(item.nodeid + suffix)


@dataclass
class Platform:
    container: Container
    clock: ManualClock
    seed: SeedSummary

    @property
    def services(self):  # type: ignore[no-untyped-def]
        return self.container.services

    def key(self, role: str, subject_id: str) -> str:
        return issue_api_key(self.services, role=role, subject_id=subject_id)[1]


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated to head, once per test process. The SQLite platforms start
    from a copy (under a millisecond, where migrating costs ~0.1 s of CPU for each of some 600
    tests) and ``build`` finds it at head; tests/service/test_migrations.py still runs every
    migration down and up on each database."""
    folder = tmp_path_factory.mktemp("migrated-sqlite")
    engine = make_engine(sqlite_url(folder))
    migrate(engine)
    engine.dispose()  # the last connection checkpoints the WAL into the file
    return folder / "lastmile.sqlite"


def _copy_migrated(template: Path, data_dir: Path) -> None:
    shutil.copyfile(template, Path(sqlite_url(data_dir).removeprefix("sqlite:///")))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def platform(request: pytest.FixtureRequest, tmp_path: Path, migrated_sqlite: Path
             ) -> Iterator[Platform | FakePlatform]:
    """A migrated, seeded platform with a manual clock, on each database; a test marked
    ``@in_memory`` (tests/fakes.py) gets the same seed on a fake unit of work instead."""
    if request.param == "fake":
        yield fake_platform()
        return
    schema = None
    if request.param == "postgresql":
        reason = postgres_available()
        if reason:
            pytest.skip(reason)
        url, schema = pg_schema_url()
        settings = Settings(data_dir=tmp_path, database_url=url)
    else:
        _copy_migrated(migrated_sqlite, tmp_path)
        settings = Settings(data_dir=tmp_path)
    clock = ManualClock()
    container = build(settings, clock=clock, ids=SequentialIds(), rng=random.Random(3))
    summary = seed_demo(container.services, seed=5, merchants=6, consumers=4, couriers=3)
    try:
        yield Platform(container=container, clock=clock, seed=summary)
    finally:
        container.close()
        if schema:
            drop_schema(schema)


@pytest.fixture
def sqlite_platform(request: pytest.FixtureRequest, tmp_path: Path, migrated_sqlite: Path
                    ) -> Iterator[Platform | FakePlatform]:
    if getattr(request, "param", "sqlite") == "fake":  # @in_memory("sqlite_platform")
        yield fake_platform()
        return
    _copy_migrated(migrated_sqlite, tmp_path)
    clock = ManualClock()
    container = build(Settings(data_dir=tmp_path), clock=clock, ids=SequentialIds(),
                      rng=random.Random(3))
    summary = seed_demo(container.services, seed=5, merchants=6, consumers=4, couriers=3)
    try:
        yield Platform(container=container, clock=clock, seed=summary)
    finally:
        container.close()


@dataclass
class FakeContainer:
    """What use-case tests take from a container, with the database in memory."""

    services: Services
    bus: InProcessBus = field(default_factory=InProcessBus)
    live: MemoryLiveStore = field(default_factory=MemoryLiveStore)
    extras: dict[str, object] = field(default_factory=dict)
    tracking: Tracking = field(init=False)

    def __post_init__(self) -> None:
        self.tracking = Tracking(services=self.services, live=self.live,
                                 states=MemoryTrackStates(), publisher=self.bus)


@dataclass
class FakePlatform:
    container: FakeContainer
    clock: ManualClock
    seed: SeedSummary

    @property
    def services(self) -> Services:
        return self.container.services

    @property
    def uow(self) -> FakeUnitOfWorkFactory:
        return self.container.services.uow  # type: ignore[return-value]

    def key(self, role: str, subject_id: str) -> str:
        return issue_api_key(self.services, role=role, subject_id=subject_id)[1]


def fake_platform() -> FakePlatform:
    """The ``platform`` seed on a fake unit of work: for use-case rules where a database
    adds nothing (the repositories are held to SQL by tests/service/test_repository_contract)."""
    clock = ManualClock()
    services = Services(uow=FakeUnitOfWorkFactory(), clock=clock, ids=SequentialIds(),
                        rng=random.Random(3))
    summary = seed_demo(services, seed=5, merchants=6, consumers=4, couriers=3)
    return FakePlatform(container=FakeContainer(services=services), clock=clock, seed=summary)
