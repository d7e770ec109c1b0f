"""Overload settings come from the environment; bad values are refused naming the variable."""

from __future__ import annotations

import asyncio
import time

import pytest

from lastmile.adapters.ratelimit import RateLimits, parse_limits
from lastmile.api.overload import overload_state
from lastmile.core.overload import Priority
from lastmile.settings import Settings


def test_the_environment_sets_limits_ceilings_and_breakers():
    s = Settings.from_env({"LASTMILE_RATE_LIMIT_BROWSE": "5/second",
                           "LASTMILE_RATE_LIMIT_CRITICAL": "", "LASTMILE_SHED_BROWSE_INFLIGHT": "8",
                           "LASTMILE_RATE_LIMIT_STRATEGY": "sliding-window",
                           "LASTMILE_BREAKER_FAIL_MAX": "3", "LASTMILE_BREAKER_RESET_S": "2.5"})
    assert (s.rate_limit_browse, s.rate_limit_critical, s.rate_limit_normal) == (
        "5/second", "", "30/second")
    assert (s.shed_browse_inflight, s.shed_normal_inflight) == (8, 64)
    assert (s.breaker_fail_max, s.breaker_reset_s) == (3, 2.5)
    state = overload_state(s)
    assert state.policy.ceiling(Priority.BROWSE) == 8
    assert state.limits is not None
    assert state.limits.describe() == {"normal": "30 per 1 second", "browse": "5 per 1 second"}


def test_a_malformed_number_names_its_variable():
    with pytest.raises(ValueError, match="LASTMILE_SHED_NORMAL_INFLIGHT must be an integer"):
        Settings.from_env({"LASTMILE_SHED_NORMAL_INFLIGHT": "lots"})


def test_a_malformed_limit_or_strategy_is_refused_at_start_up():
    with pytest.raises(ValueError, match="rate limit for browse must look like '10/second'"):
        parse_limits({Priority.BROWSE: "ten a second"})
    with pytest.raises(ValueError, match="strategy must be one of moving-window, sliding-window"):
        RateLimits({}, now=time.time, strategy="token-bucket")
    with pytest.raises(ValueError, match="browse_max <= normal_max"):
        overload_state(Settings(shed_browse_inflight=100, shed_normal_inflight=10))


def test_no_limits_at_all_means_no_limiter():
    s = Settings(rate_limit_critical="", rate_limit_normal="", rate_limit_browse="")
    assert overload_state(s).limits is None


@pytest.mark.parametrize("strategy", ["moving-window", "sliding-window"])
def test_both_strategies_refuse_past_the_limit_and_say_when_a_slot_frees(strategy):
    async def hits() -> list[tuple[bool, int]]:
        limits = RateLimits(parse_limits({Priority.BROWSE: "2/minute"}), now=time.time,
                            strategy=strategy)
        out = [await limits.check(Priority.BROWSE, "ip:1") for _ in range(3)]
        return [(v.allowed, v.retry_after_s) for v in out]

    (a, _), (b, _), (refused, wait) = asyncio.run(hits())
    assert (a, b, refused) == (True, True, False) and 1 <= wait <= 60
