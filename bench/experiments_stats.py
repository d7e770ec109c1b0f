"""The experiment statistics on seeded synthetic data (core/experiments/synthetic.py): the
A/A false-positive rate and the interval coverage of an injected effect for every design,
the network-effect case (orders of a switchback window share the fleet state: naive Welch
against the cluster-robust test), a synthetic interleaving-vs-A/B sensitivity, and power
by simulation on local processes and on a local Dask cluster (CPU seconds).

This is the statistical half of issue 13's validation: the data are synthetic with a known
truth, not the city simulator (bench/experiments.py, issue 13 item 4, runs the simulator).
The last line is one JSON object.

    nice -n 5 python bench/experiments_stats.py [--reps 1000] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lastmile.adapters.power_runner import simulate_power  # noqa: E402
from lastmile.core.experiments import synthetic as sy  # noqa: E402
from lastmile.core.experiments.stats import analyze  # noqa: E402
from lastmile.core.experiments.synthetic import simulated_p_value  # noqa: E402

ALPHA = 0.05
DESIGNS = {
    "ab": (lambda r, e: sy.ab(r, n=400, effect=e), 0.25),
    "courier_ab": (lambda r, e: sy.clustered(r, clusters=60, cluster_size=6, icc=0.2, effect=e), 0.4),
    "switchback": (lambda r, e: sy.switchback(r, regions=4, windows=24, orders_per_window=5,
                                              icc=0.3, effect=e), 0.4),
    "market_ab": (lambda r, e: sy.market(r, markets=48, pre=3, post=2, effect=e), 1.0),
}


def aa_and_coverage(reps: int, seed: int) -> tuple[dict[str, float], dict[str, float]]:
    fpr: dict[str, float] = {}
    cov: dict[str, float] = {}
    for k, (name, (gen, effect)) in enumerate(DESIGNS.items()):
        rng = np.random.default_rng([seed, k])
        rejected = covered = 0
        for _ in range(reps):
            (e,) = analyze(gen(rng, 0.0), design=name).effects  # type: ignore[arg-type]
            rejected += e.p_value < ALPHA
            (f,) = analyze(gen(rng, effect), design=name).effects  # type: ignore[arg-type]
            covered += f.ci[0] <= effect <= f.ci[1]
        fpr[name], cov[name] = rejected / reps, covered / reps
    return fpr, cov


def network_aa(reps: int, seed: int) -> dict[str, float]:
    from scipy import stats as st

    rng = np.random.default_rng([seed, 99])
    naive = robust = 0
    for _ in range(reps):
        obs = sy.switchback(rng, regions=4, windows=24, orders_per_window=8, icc=0.3)
        robust += analyze(obs, design="switchback").effects[0].p_value < ALPHA
        c = [o.value for o in obs if o.variant == "control"]
        t = [o.value for o in obs if o.variant == "treatment"]
        naive += st.ttest_ind(t, c, equal_var=False).pvalue < ALPHA
    return {"naive_welch_fpr": naive / reps, "cluster_robust_fpr": robust / reps,
            "icc": 0.3, "orders_per_window": 8}


def interleaving_sensitivity(seed: int, users: int = 400_000, lift: float = 0.05,
                             engaged: float = 0.3, shape: float = 0.5,
                             competitive: float = 0.4) -> dict[str, float]:
    """z^2 per exposed user (the inverse of the users needed for a given power) of
    interleaving over A/B on one ranker change. Users click Poisson(lambda_u) items,
    lambda_u ~ Gamma(shape) with mean 2 for the ``engaged`` share and 0 for the rest; ranker
    B's items are (1 + lift) times as attractive. A/B: B's users click (1 + lift) times
    more. Interleaving: each user sees both lists; a ``competitive`` share of the clicks land
    on competitive items and go to B with probability (1 + lift) / (2 + lift); the rest land
    on items both rankers placed alike and go to either team at random (vanilla credits
    them, dilution removal drops them and the users with no competitive click)."""
    rng = np.random.default_rng([seed, 7])
    lam = np.where(rng.random(users) < engaged, rng.gamma(shape, 2.0 / shape, users), 0.0)
    # noncentrality per user: the true mean difference (known from lambda) squared over the
    # sampled per-user variance, so the ratio is not at the mercy of one noisy estimate
    arm_b = rng.random(users) < 0.5
    clicks = rng.poisson(lam * np.where(arm_b, 1 + lift, 1.0))
    true_ab = lift * lam.mean()
    per_user_ab = true_ab**2 / (2 * (clicks[~arm_b].var(ddof=1) + clicks[arm_b].var(ddof=1)))
    p_b = (1 + lift) / (2 + lift)
    rate = lam * (1 + competitive * lift / 2)
    total = rng.poisson(rate)
    comp = rng.binomial(total, competitive)
    comp_b = rng.binomial(comp, p_b)
    other_b = rng.binomial(total - comp, 0.5)
    d_vanilla = (comp_b + other_b) - (total - comp_b - other_b)
    kept = comp > 0
    d_comp = (comp_b - (comp - comp_b))[kept]
    true_mean = float((rate * competitive * (2 * p_b - 1)).mean())
    per_user_vanilla = true_mean**2 / d_vanilla.var(ddof=1)
    # dropping non-engaged users leaves the sum of d unchanged: per exposed user, the mean
    # over the kept users is scaled by their share
    share = kept.mean()
    per_user_kept = share * (true_mean / share) ** 2 / d_comp.var(ddof=1)
    return {"vanilla_vs_ab": round(float(per_user_vanilla / per_user_ab), 2),
            "dilution_removed_vs_ab": round(float(per_user_kept / per_user_ab), 2),
            "users": users, "lift": lift, "engaged_share": engaged, "gamma_shape": shape,
            "competitive_click_share": competitive}


def power_backends(seed: int, simulations: int) -> dict[str, object]:
    from distributed import LocalCluster

    sim = partial(simulated_p_value, design="courier_ab", effect=0.3, units=360,
                  cluster_size=6, icc=0.2)
    t0 = time.process_time()
    local = simulate_power(sim, simulations=simulations, seed=seed, processes=2)
    t1 = time.process_time()
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster:
        dask = simulate_power(sim, simulations=simulations, seed=seed,
                              dask_address=cluster.scheduler_address)
    t2 = time.process_time()
    return {"simulations": simulations, "power": local.power,
            "power_ci": [round(local.ci[0], 4), round(local.ci[1], 4)],
            "dask_equals_processes": dask == local,
            "processes_parent_cpu_s": round(t1 - t0, 2), "dask_inprocess_cpu_s": round(t2 - t1, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reps", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--simulations", type=int, default=200)
    args = ap.parse_args()
    t0 = time.process_time()
    fpr, cov = aa_and_coverage(args.reps, args.seed)
    band = 1.96 * math.sqrt(ALPHA * (1 - ALPHA) / args.reps)
    out = {"aa_false_positive": fpr, "ci_coverage": cov, "reps": args.reps,
           "binomial_95_band": [round(ALPHA - band, 4), round(ALPHA + band, 4)],
           "network_effect_aa": network_aa(args.reps // 2, args.seed),
           "interleaving_synthetic": interleaving_sensitivity(args.seed),
           "power_by_simulation": power_backends(args.seed, args.simulations)}
    out["cpu_s"] = round(time.process_time() - t0, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
