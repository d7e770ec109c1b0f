"""Interleaving against A/B on the same ranker change, over simulated consumers with
preferences (issue 13, item 4; seed 004 reports ~100-500x fewer exposures). lastmile has
no feed yet, so the ranker change is synthetic; the interleaving is the platform's own
``team_draft`` (``core.experiments.assignment``) and the analyses are the platform's
(``stats.analyze`` for the A/B test, ``stats.analyze_interleaving`` for the paired test).

The model, per session (one consumer opening the feed):

- ``items`` restaurants, each of quality ``q ~ N(0, 1)``; the consumer's utility of one is
  ``q + N(0, taste_sd)``.
- Ranker A sorts by ``q + e`` (``e ~ N(0, noise_sd)``, its error); ranker B by
  ``q + (1 - improvement) * e``: the same ranker with its error shrunk, so the two lists are
  nearly identical, as a real ranker change is.
- The consumer sees the top ``shown``, examines position ``p`` (0-based) with probability
  ``examine ** p`` and orders an examined restaurant with probability
  ``sigmoid(bias + slope * utility)``; the first order ends the session (a cascade).

A/B: a session sees A's list or B's; the metric is whether it ordered. Interleaving: it
sees ``team_draft([A, B])``; an order on a competitive item credits its ranker (dilution
removal keeps the sessions with a credit). Both are computed exactly per session (the
cascade's probabilities, not draws), so the exposures each needs for the same power are
not themselves noisy; ``sample`` also draws sessions and runs the platform's tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from lastmile.core.experiments.assignment import team_draft
from lastmile.core.experiments.observations import Observation
from lastmile.core.experiments.paired import InterleavingCredit


@dataclass(frozen=True, slots=True, kw_only=True)
class Feed:
    items: int = 40
    shown: int = 10
    taste_sd: float = 1.0
    noise_sd: float = 1.0
    improvement: float = 0.2
    examine: float = 0.8
    bias: float = -3.5
    slope: float = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Session:
    p_order_a: float
    p_order_b: float
    p_credit_a: float
    """Interleaved list: the probability the order lands on A's competitive item."""
    p_credit_b: float


def _order_probs(utility: np.ndarray, order: list[int], feed: Feed) -> np.ndarray:
    """Per position of ``order``: the probability that the session orders it (cascade)."""
    u = utility[order]
    click = 1.0 / (1.0 + np.exp(-(feed.bias + feed.slope * u)))
    look = feed.examine ** np.arange(len(order))
    hit = look * click
    survive = np.concatenate(([1.0], np.cumprod(1.0 - hit)[:-1]))
    return np.asarray(survive * hit)


def session(rng: np.random.Generator, feed: Feed, seed: str) -> Session:
    q = rng.normal(size=feed.items)
    utility = q + rng.normal(scale=feed.taste_sd, size=feed.items)
    err = rng.normal(scale=feed.noise_sd, size=feed.items)
    rank_a = [int(i) for i in np.argsort(-(q + err))]
    rank_b = [int(i) for i in np.argsort(-(q + (1.0 - feed.improvement) * err))]
    pa = _order_probs(utility, rank_a[:feed.shown], feed).sum()
    pb = _order_probs(utility, rank_b[:feed.shown], feed).sum()
    drafted = team_draft([[str(i) for i in rank_a], [str(i) for i in rank_b]], seed,
                         limit=feed.shown)
    probs = _order_probs(utility, [int(d.item) for d in drafted], feed)
    ca = float(sum(p for p, d in zip(probs, drafted, strict=True) if d.competitive and d.ranker == 0))
    cb = float(sum(p for p, d in zip(probs, drafted, strict=True) if d.competitive and d.ranker == 1))
    return Session(p_order_a=float(pa), p_order_b=float(pb), p_credit_a=ca, p_credit_b=cb)


@dataclass(frozen=True, slots=True, kw_only=True)
class Sensitivity:
    sessions: int
    ab_effect: float
    """Orders per session, B minus A."""
    ab_exposures: float
    """Sessions an A/B test needs (both arms) for the power at the level."""
    engaged_share: float
    """Share of interleaved sessions that credit a ranker (dilution removal keeps them)."""
    preference: float
    """Mean of (credit B - credit A) over the engaged sessions."""
    interleaving_exposures: float
    """Interleaved sessions needed (engaged ones divided by the engaged share)."""
    ratio: float
    """``ab_exposures / interleaving_exposures``."""


def sensitivity(*, sessions: int, seed: int, feed: Feed = Feed(), alpha: float = 0.05,
                power: float = 0.8) -> Sensitivity:
    """Exposures each design needs to detect B's improvement with ``power`` at ``alpha``
    (two-sided), from ``sessions`` simulated sessions' exact probabilities."""
    rng = np.random.default_rng(seed)
    got = [session(rng, feed, f"{seed}:{i}") for i in range(sessions)]
    pa = np.array([s.p_order_a for s in got])
    pb = np.array([s.p_order_b for s in got])
    z = float(norm.ppf(1 - alpha / 2) + norm.ppf(power))
    ma, mb = pa.mean(), pb.mean()
    effect = float(mb - ma)
    # A session's outcome is Bernoulli(p): its variance over sessions is mean(p) (1 - mean(p)).
    per_arm = (z ** 2 * (ma * (1 - ma) + mb * (1 - mb)) / effect ** 2 if effect
               else math.inf)
    ca = np.array([s.p_credit_a for s in got])
    cb = np.array([s.p_credit_b for s in got])
    engaged = float((ca + cb).mean())
    mu = float((cb - ca).mean()) / engaged if engaged else 0.0
    # Engaged sessions' d is +1 or -1: variance 1 - mu^2.
    il = z ** 2 * (1 - mu ** 2) / mu ** 2 / engaged if mu else math.inf
    ratio = 2 * per_arm / il if math.isfinite(il) else math.nan
    return Sensitivity(sessions=sessions, ab_effect=effect, ab_exposures=float(2 * per_arm),
                       engaged_share=engaged, preference=mu, interleaving_exposures=il,
                       ratio=float(ratio))


def sample(*, sessions: int, seed: int, feed: Feed = Feed()
           ) -> tuple[tuple[Observation, ...], tuple[InterleavingCredit, ...]]:
    """Drawn outcomes: an A/B test's observations (each session in A or B by a coin) and
    an interleaving test's credits, over ``sessions`` sessions each, for the platform's
    analyses."""
    rng = np.random.default_rng(seed)
    obs, credits = [], []
    for i in range(sessions):
        s = session(rng, feed, f"{seed}:{i}")
        arm = "treatment" if rng.random() < 0.5 else "control"
        p = s.p_order_b if arm == "treatment" else s.p_order_a
        obs.append(Observation(unit=f"s{i}", variant=arm, value=float(rng.random() < p)))
        r = rng.random()
        credits.append(InterleavingCredit(
            unit=f"s{i}", credit_a=float(r < s.p_credit_a),
            credit_b=float(s.p_credit_a <= r < s.p_credit_a + s.p_credit_b)))
    return tuple(obs), tuple(credits)

