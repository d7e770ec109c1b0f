"""Experiments on the city simulator (sim.experiments): bounded A/A and recovery checks on
one seeded day of the real platform (experiments in its database, served by its fee lever
and the courier lever through ``variant``, observed by ``app.experiments_data``), and days
run alike on local processes and a Dask cluster. The full-size figures are
bench/experiments.py's."""

from __future__ import annotations

import pytest

from lastmile.core.experiments.stats import analyze
from lastmile.sim.experiments import (
    BASE_FEE_MINOR,
    Day,
    Trial,
    pooled,
    run_day,
    run_days,
    validation_city,
)

pytestmark = pytest.mark.slow
FEE = (("base_delivery_fee_minor", BASE_FEE_MINOR + 100),)


def test_aa_tests_rarely_reject_and_a_known_fee_effect_is_recovered_on_a_simulated_day():
    city = validation_city(regions=6, per_h=8.0, hours=2.5)
    aa = [Trial(name=f"aa-{d.replace('_', '-')}-{k}", design=d,  # type: ignore[arg-type]
                lever="other" if d == "courier_ab" else "fees")
          for d in ("ab", "courier_ab", "switchback") for k in range(3)]
    fee = [Trial(name=f"fee-{k}", design="ab", treatment=FEE, metric="delivery_fee_minor",
                 layer="fees", share=1 / 3) for k in range(3)]
    day = run_day(Day(seed=11, scenario=city, trials=(*aa, *fee), pre_h=0.5))
    assert day.orders > 50
    rejected = 0
    for t in aa:
        obs = day.observations[t.name]
        assert {o.variant for o in obs} == {"control", "treatment"}, t.name
        (e,) = analyze(obs, design=t.design).effects
        rejected += e.p_value < 0.05
    # 9 A/A tests at 5 %: 4 or more rejections has probability < 0.001.
    assert rejected <= 3
    covered, estimates = 0, []
    for t in fee:
        (e,) = analyze(day.observations[t.name], design="ab").effects
        covered += e.ci[0] <= 100 <= e.ci[1]
        estimates.append(e.effect)
    # Every order's delivery fee moves by exactly +100 (the validation city's pricing).
    assert covered >= 2
    assert abs(sum(estimates) / len(estimates) - 100) < 25
    # The three fee experiments share a layer: no consumer is in two of them.
    units = [o.unit for t in fee for o in day.observations[t.name]]
    assert len(units) == len(set(units))


def test_days_give_the_same_results_on_processes_and_on_a_dask_cluster():
    from distributed import LocalCluster

    city = validation_city(regions=1, per_h=10.0, hours=1.0, couriers=(3,))
    days = [Day(seed=s, scenario=city, pre_h=0.25, trials=(
        Trial(name="aa", design="ab"),)) for s in (1, 2)]
    here = run_days(days, processes=1)
    seen: list[int] = []
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster:
        there = run_days(days, dask_address=cluster.scheduler_address,
                         on_progress=lambda done, total: seen.append(done))
    assert seen[-1] == 2
    assert [r.observations for r in here] == [r.observations for r in there]
    assert [r.city for r in here] == [r.city for r in there]
    assert pooled(here, "aa") == here[0].observations["aa"] + here[1].observations["aa"]
    assert here[0].observations["aa"] != here[1].observations["aa"]  # two seeds, two days
