"""Demo data: deterministic for a seed, and it reports progress."""

import random

from lastmile.adapters.clock import ManualClock, SequentialIds
from lastmile.app import queries
from lastmile.bootstrap import build
from lastmile.settings import Settings
from lastmile.sim.seed import seed_demo


def _seeded(tmp_path, name, seed):
    container = build(Settings(data_dir=tmp_path / name), clock=ManualClock(),
                      ids=SequentialIds(), rng=random.Random(0))
    ticks = []
    summary = seed_demo(container.services, seed=seed, merchants=5, consumers=7, couriers=3,
                        progress=ticks.append)
    menus = [queries.get_merchant(container.services, m) for m in summary.merchant_ids]
    container.close()
    return summary, menus, ticks


def test_same_seed_same_city(tmp_path):
    a, menus_a, _ = _seeded(tmp_path, "a", 11)
    b, menus_b, _ = _seeded(tmp_path, "b", 11)
    c, menus_c, _ = _seeded(tmp_path, "c", 12)
    assert a == b and menus_a == menus_b
    assert [m.location for m in menus_a] != [m.location for m in menus_c]


def test_progress_counts_every_merchant_consumer_and_courier(tmp_path):
    _, _, ticks = _seeded(tmp_path, "p", 1)
    assert sum(ticks) == 5 + 7 + 3
